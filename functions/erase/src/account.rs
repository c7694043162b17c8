//! `DELETE /api/account {password}`: the holder erases their own account.
//!
//! The password is checked again (argon2id), counted against the same per-address sign-in limit as a
//! sign-in (5 failures in 15 minutes lock both; a wrong password answers 401 `invalid_credentials` and
//! erases nothing). Then ONE transaction queues the erasure job and the receipt mail to the address on
//! file (sealed under a key that outlives the account, so it is sent even after the account's key is
//! destroyed); then the email claim in the key store is freed (sign-in no longer finds the account) and
//! every session of the account is deleted, so they stop working at once. The answer, 202, carries the receipt's confirmation
//! code and status page; the job ([`qchat_shared::erasure::account`]) erases the rest.
//!
//! The operator's account cannot erase itself (409 `operator_account`): the operator role is how policies
//! and breach notices are published, so it is handed to another proven address first (change
//! `QCHAT_OPERATOR_EMAIL`), after which the former operator's account is an ordinary one.

use qchat_shared::accounts::{self, Profile};
use qchat_shared::app::App;
use qchat_shared::auth;
use qchat_shared::domain::Password;
use qchat_shared::erasure::account::{
    RECEIPT_KEY_OWNER, enqueue_op, receipt_notice_op, receipt_outbox_id, session_keys,
};
use qchat_shared::http::{ApiError, Request, Response, StatusCode, json, parse_json};
use qchat_shared::jobs::Jobs;
use qchat_shared::limits::{self, Claim, Limit};
use qchat_shared::outbox::outbox_key;
use qchat_shared::password;
use qchat_shared::store::StoreError;

/// The sign-in limit per address: failures here and at sign-in count together (a flow test checks it).
const EMAIL_LIMIT: Limit = limits::SIGNIN_EMAIL_LIMIT;

#[derive(serde::Deserialize)]
struct EraseRequest {
    password: String,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "the password is wrong",
    )
}

fn is_operator(app: &App, profile: &Profile) -> bool {
    app.config
        .operator_email
        .as_ref()
        .is_some_and(|operator| operator == &profile.email && profile.email_verified_at.is_some())
}

fn jobs(app: &App) -> Jobs {
    // Only queues here, so the lease is never used.
    Jobs::new(app.store.clone(), app.clock.clone(), app.ids.clone(), 0)
}

/// `DELETE /api/account`.
pub async fn erase(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let body: EraseRequest = parse_json(req)?;
    let profile = accounts::load_profile(app, &caller.account)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if is_operator(app, &profile) {
        return Err(ApiError::conflict(
            "operator_account",
            "the operator's account cannot be erased; give the operator role to another address first",
        ));
    }
    let now = app.clock.now();
    let email_index = accounts::email_index(app, &profile.email).await?;
    let slots = match limits::claim(app.key_store.as_ref(), now, &[(&EMAIL_LIMIT, &email_index)])
        .await?
    {
        Claim::Granted(slots) => slots,
        Claim::Refused { retry_after_secs } => {
            tracing::info!(
                retry_after_secs,
                "account erasure refused: too many attempts"
            );
            let mut resp = ApiError::too_many_requests("too many wrong passwords; try again later")
                .into_response();
            if let Ok(v) = http::HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            return Ok(resp);
        }
    };
    let pw = Password::parse(&body.password).ok();
    let stored = profile.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || match pw {
        Some(pw) => password::verify(&pw, &stored),
        None => false,
    })
    .await
    .map_err(|_| ApiError::internal())?;
    if !ok {
        let failed = slots
            .into_iter()
            .map(|key| limits::failed_op(&EMAIL_LIMIT, key, now))
            .collect::<Result<Vec<_>, StoreError>>()?;
        app.key_store.transact(failed).await?;
        tracing::info!(account = %caller.account, "account erasure refused: wrong password");
        return Err(invalid_credentials());
    }

    let (job, queue) = enqueue_op(&jobs(app), &caller.account, now)?;
    let cipher = app.keys.cipher(RECEIPT_KEY_OWNER).await?;
    let recipient = cipher.seal(
        &outbox_key(&receipt_outbox_id(&job)),
        "recipient",
        profile.email.expose().as_bytes(),
    )?;
    app.store
        .transact(vec![queue, receipt_notice_op(&job, recipient, now)?])
        .await?;
    // The claim is in the key store, outside this transaction: a crash before its release leaves it to
    // the job's `claim` phase.
    accounts::release_email(app, &email_index, &caller.account).await?;
    app.key_store
        .transact(slots.into_iter().map(limits::release_op).collect())
        .await?;
    let sessions = session_keys(app.store.as_ref(), &caller.account).await?;
    app.store.delete_many(&sessions).await?;
    tracing::info!(account = %caller.account, job = %job, ended_sessions = sessions.len(), "account erasure queued");
    let mut resp = json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "erasure": {
            "confirmation_code": job,
            "status_url": format!("{}/deletion/{job}", app.config.public_url),
        } }),
    );
    if let Ok(v) = http::HeaderValue::from_str(&qchat_shared::http::clear_session_cookie()) {
        resp.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    Ok(resp)
}
