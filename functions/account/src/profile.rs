//! The account holder's own account: read it, change the name or ask to change the address (by a link
//! mailed to the new address), change the password (which ends every other session and sends a notice),
//! and read the security log.

use qchat_shared::app::{App, account_key_owner};
use qchat_shared::domain::{LinkToken, Password};
use qchat_shared::http::{ApiError, Request, Response, StatusCode, json, parse_json, query_param};
use qchat_shared::inventory::EMAIL_VERIFICATION;
use qchat_shared::outbox::{Notice, notice_op, outbox_key, outbox_op};
use qchat_shared::store::{Condition, Cursor, Item, StoreError, Value, WriteOp};

use crate::policies::{PolicyKind, current_policy};
use crate::register::{
    EMAIL_CHANGE, LINK_HOURS, check_new_password, hash_password, parse_email, parse_name,
    verification_key,
};
use crate::sessions::all_sessions;
use crate::{auth, network, seclog};

/// `GET /api/account`.
pub async fn get(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    Ok(json(StatusCode::OK, &account_view(app, &caller).await?))
}

/// The caller's account as `GET /api/account` shows it.
async fn account_view(app: &App, caller: &auth::Caller) -> Result<serde_json::Value, ApiError> {
    let profile = auth::profile(app, caller).await?;
    let operator = auth::is_operator(app, &profile);
    let privacy = current_policy(app, PolicyKind::Privacy).await?;
    let terms = current_policy(app, PolicyKind::Terms).await?;
    let required = profile.privacy_version.as_deref() != Some(privacy.version.as_str())
        || profile.terms_version.as_deref() != Some(terms.version.as_str());
    Ok(serde_json::json!({
        "id": profile.id,
        "email": profile.email.expose(),
        "email_verified": profile.email_verified_at.is_some(),
        "name": profile.name,
        "created_at": profile.created.to_rfc3339(),
        "role": if operator { "operator" } else { "account_holder" },
        "policies": {
            "privacy": { "accepted_version": profile.privacy_version, "current_version": privacy.version },
            "terms": { "accepted_version": profile.terms_version, "current_version": terms.version },
            "acceptance_required": required,
        },
    }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

fn conflict_on_concurrent_update(e: StoreError) -> ApiError {
    match e {
        StoreError::ConditionFailed | StoreError::TransactionConditionFailed { .. } => {
            ApiError::conflict(
                "concurrent_update",
                "the account changed meanwhile; try again",
            )
        }
        other => other.into(),
    }
}

/// `PATCH /api/account` {name?, email?}. A name changes at once. A new address changes only when the link
/// mailed to it is used ([`crate::verify`]): the answer says a link was sent, whether or not the address
/// is free (a taken address is refused when the link is used, and only its owner can use it), so it
/// tells nobody which addresses have accounts.
pub async fn update(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let body: UpdateRequest = parse_json(req)?;
    if body.name.is_none() && body.email.is_none() {
        return Err(ApiError::bad_request(
            "nothing_to_change",
            "send name or email",
        ));
    }
    let name = body.name.as_deref().map(parse_name).transpose()?;
    let email = body.email.as_deref().map(parse_email).transpose()?;
    let profile = auth::profile(app, &caller).await?;
    let owner = account_key_owner(&caller.account);
    let cipher = app.keys.cipher(&owner).await?;
    let now = app.clock.now();
    let mut ops = Vec::new();
    if let Some(n) = &name {
        let key = profile.item.key().clone();
        let version = profile.item.version().unwrap_or(0);
        let updated = profile
            .item
            .clone()
            .sealed("name", cipher.seal(&key, "name", n.as_bytes())?)
            .map_err(|_| ApiError::internal())?
            .with_version(version + 1);
        ops.push(WriteOp::Put {
            item: updated,
            condition: Condition::VersionIs(version),
        });
    }
    let new_email = email.filter(|e| *e != profile.email);
    if let Some(new_email) = &new_email {
        let token = LinkToken::generate();
        let key = verification_key(&token);
        let sealed_email = cipher.seal(&key, "email", new_email.expose().as_bytes())?;
        let pending = Item::new(&EMAIL_VERIFICATION, key.clone())
            .plain("purpose", Value::S(EMAIL_CHANGE.to_owned()))
            .and_then(|i| i.plain("account_id", Value::S(caller.account.as_str().to_owned())))
            .and_then(|i| i.sealed("email", sealed_email))
            .and_then(|i| i.plain("created", Value::N(now.millis())))
            .map_err(|_| ApiError::internal())?
            .expires_at(now.plus_hours(LINK_HOURS))
            // Filed under the account so its export and erasure find it without a scan.
            .with_gsi1(
                qchat_shared::accounts::links_partition(&caller.account),
                key.pk.clone(),
            );
        let outbox_id = app.ids.new_id();
        let mail_key = outbox_key(&outbox_id);
        let recipient = cipher.seal(&mail_key, "recipient", new_email.expose().as_bytes())?;
        let secret = cipher.seal(&mail_key, "secret", token.expose().as_bytes())?;
        ops.push(WriteOp::Put {
            item: pending,
            condition: Condition::NotExists,
        });
        ops.push(outbox_op(
            &outbox_id,
            Some(&caller.account),
            &Notice::ConfirmEmailChange,
            now,
            Some(recipient),
            Some(secret),
        )?);
    }
    if !ops.is_empty() {
        app.store
            .transact(ops)
            .await
            .map_err(conflict_on_concurrent_update)?;
    }
    tracing::info!(account = %caller.account, email_change = new_email.is_some(), "account updated");
    let mut view = account_view(app, &caller).await?;
    if new_email.is_some() {
        view["email_change"] = serde_json::json!({
            "status": "verification_sent",
            "message": "the address changes when the link we sent to it is used (within 24 hours)",
        });
    }
    Ok(json(StatusCode::OK, &view))
}

#[derive(serde::Deserialize)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/account/password`: needs the current password; ends every other session; sends a notice.
pub async fn change_password(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let body: PasswordChange = parse_json(req)?;
    let profile = auth::profile(app, &caller).await?;
    let wrong_password = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "the current password is wrong",
        )
    };
    // An empty (unparseable) current password is just as wrong as any other: one answer for both.
    let current = Password::parse(&body.current_password).map_err(|_| wrong_password())?;
    let stored = profile.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || qchat_shared::password::verify(&current, &stored))
        .await
        .map_err(|_| ApiError::internal())?;
    if !ok {
        return Err(wrong_password());
    }
    let new = Password::parse(&body.new_password)
        .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?;
    check_new_password(&new, &profile.email, profile.name.as_deref())?;
    let hash = hash_password(new).await?;

    let owner = account_key_owner(&caller.account);
    let cipher = app.keys.cipher(&owner).await?;
    let indexer = app.keys.blind_indexer().await?;
    let version = profile.item.version().unwrap_or(0);
    let updated = profile
        .item
        .clone()
        .hashed("password_hash", &hash)
        .map_err(|_| ApiError::internal())?
        .with_version(version + 1);
    let now = app.clock.now();
    let ops = vec![
        WriteOp::Put {
            item: updated,
            condition: Condition::VersionIs(version),
        },
        seclog::entry_op(
            app,
            &caller.account,
            &cipher,
            &indexer,
            seclog::Event::PasswordChanged,
            network::client_addr(req),
        )?,
        notice_op(
            &app.ids.new_id(),
            &caller.account,
            &Notice::PasswordChanged { at: now },
            now,
            None,
        )?,
    ];
    app.store
        .transact(ops)
        .await
        .map_err(conflict_on_concurrent_update)?;

    let others: Vec<_> = all_sessions(app, &caller.account)
        .await?
        .into_iter()
        .filter(|k| *k != caller.session)
        .collect();
    app.store.delete_many(&others).await?;
    tracing::info!(account = %caller.account, ended_sessions = others.len(), "password changed");
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "password_changed": true, "other_sessions_ended": others.len() }),
    ))
}

/// Entries per page of the security log unless `?limit=` asks for fewer.
pub const SECURITY_LOG_PAGE: usize = 200;

/// `GET /api/account/security-log[?limit=&cursor=]`: the last 30 days, newest first, a page at a time.
pub async fn security_log(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let limit = match query_param(req, "limit").as_deref() {
        None | Some("") => SECURITY_LOG_PAGE,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=SECURITY_LOG_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    "limit must be a whole number from 1 to 200",
                )
            })?,
    };
    let cursor = match query_param(req, "cursor").filter(|c| !c.is_empty()) {
        Some(raw) => Some(Cursor::parse(&raw).map_err(|_| seclog::invalid_cursor())?),
        None => None,
    };
    let (entries, next) = seclog::page(app, &caller.account, limit, cursor).await?;
    let events = seclog::render(app, &caller.account, &entries).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "events": events, "next_cursor": next.as_ref().map(Cursor::as_str) }),
    ))
}
