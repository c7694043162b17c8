//! Password reset by email.
//!
//! - `POST /api/password-resets` {email}: if the address has an account, a single-use link (token stored
//!   only as its SHA-256, usable for one hour) is mailed to it. The answer is the same 202 whether or not
//!   the address has an account (a lookup, and the per-address mail throttle written for unknown
//!   addresses too; the link and its mail are one more transaction). One mail per address per quarter
//!   hour.
//! - `GET /reset-password/{token}`: a form for the new password (a GET changes nothing).
//! - `POST /reset-password/{token}` (the form): checks the new password against the rules, sets it, spends
//!   the link, ends every session of the account, records it in the security log and queues the
//!   "password changed" notice — in one transaction — then clears the address's sign-in lockout (in the
//!   key store, with the other address-keyed items). Answers HTML whatever happens.
//!
//! A reset also proves the address, so an account whose address was never confirmed (one made before
//! confirmation was required) counts as confirmed afterwards.

use qchat_shared::accounts::{self, purpose};
use qchat_shared::app::{App, account_key_owner};
use qchat_shared::domain::{AccountId, LinkToken, Password};
use qchat_shared::http::page::{self, escape};
use qchat_shared::http::{
    ApiError, PathParams, Request, Response, StatusCode, form_field, json, parse_json,
};
use qchat_shared::i18n::Lang;
use qchat_shared::inventory::PASSWORD_RESET;
use qchat_shared::outbox::{Notice, notice_op, outbox_key, outbox_op};
use qchat_shared::store::{Condition, Item, ItemKey, StoreError, Value, WriteOp};

use crate::register::{MailPurpose, check_new_password, hash_password, mail_allowed, parse_email};
use crate::sessions::{EMAIL_LIMIT, all_sessions};
use crate::{network, seclog};

/// How long a reset link stays usable.
pub const LINK_MINUTES: i64 = 60;

#[derive(serde::Deserialize)]
struct ResetRequest {
    email: String,
}

fn reset_key(token: &LinkToken) -> ItemKey {
    ItemKey::new(format!("RESET#{}", token.hash().as_str()), "RESET")
}

/// `POST /api/password-resets`.
pub async fn request(app: &App, req: &Request) -> Result<Response, ApiError> {
    let body: ResetRequest = parse_json(req)?;
    let email = parse_email(&body.email)?;
    let indexer = app.keys.blind_indexer().await?;
    let email_index = indexer.index(purpose::EMAIL, email.expose().as_bytes());
    let account = accounts::account_with_email(app, &email_index).await?;
    let now = app.clock.now();
    let allowed = mail_allowed(app, MailPurpose::PasswordReset, &email_index, now).await?;
    let mut ops = Vec::new();
    if let Some(account) = account.as_ref().filter(|_| allowed) {
        let token = LinkToken::generate();
        let item = Item::new(&PASSWORD_RESET, reset_key(&token))
            .plain("account_id", Value::S(account.as_str().to_owned()))
            .and_then(|i| i.plain("created", Value::N(now.millis())))
            .map_err(|_| ApiError::internal())?
            .expires_at(now.plus_secs(LINK_MINUTES * 60));
        // Filed under the account so its export and erasure find it without a scan.
        let sort = item.key().pk.clone();
        let item = item.with_gsi1(accounts::links_partition(account), sort);
        let cipher = app.keys.cipher(&account_key_owner(account)).await?;
        let outbox_id = app.ids.new_id();
        let secret = cipher.seal(&outbox_key(&outbox_id), "secret", token.expose().as_bytes())?;
        ops.push(WriteOp::Put {
            item,
            condition: Condition::NotExists,
        });
        ops.push(outbox_op(
            &outbox_id,
            Some(account),
            &Notice::PasswordReset,
            now,
            None,
            Some(secret),
        )?);
    }
    if !allowed {
        tracing::info!("password reset answered; the address was mailed recently");
    } else if !ops.is_empty() {
        app.store.transact(ops).await?;
        tracing::info!("password reset answered");
    }
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({
            "status": "reset_sent_if_registered",
            "message": "if this address has an account, a reset link is on its way; it works for one hour",
        }),
    ))
}

/// The account a link resets; `None` for a malformed, unknown, used or expired link.
async fn resolve(app: &App, params: &PathParams) -> Result<Option<(Item, AccountId)>, ApiError> {
    let Some(token) = params.get("token").and_then(|t| LinkToken::parse(t).ok()) else {
        return Ok(None);
    };
    let Some(item) = app.store.get(&reset_key(&token)).await? else {
        return Ok(None);
    };
    let account = item
        .get_str("account_id")
        .and_then(|a| AccountId::parse(a).ok())
        .ok_or_else(ApiError::internal)?;
    Ok(Some((item, account)))
}

fn form(problem: Option<&str>) -> Response {
    let problem = problem
        .map(|p| format!("<p role=\"alert\"><strong>{}</strong></p>", escape(p)))
        .unwrap_or_default();
    page::page(
        if problem.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        },
        "Choose a new password",
        &format!(
            "{problem}<form method=\"post\"><p><label for=\"new_password\">New password (at least 12 \
             characters)</label><br><input id=\"new_password\" name=\"new_password\" type=\"password\" \
             autocomplete=\"new-password\" minlength=\"12\" maxlength=\"128\" required></p>\
             <button type=\"submit\">Set the new password</button></form>\
             <p>Setting it signs every device out of your account.</p>"
        ),
    )
}

/// `GET /reset-password/{token}`.
#[tracing::instrument(skip_all)]
pub async fn page(app: &App, params: &PathParams) -> Response {
    match resolve(app, params).await {
        Ok(Some(_)) => form(None),
        Ok(None) => page::invalid_link(Lang::En),
        Err(e) => page::failure(Lang::En, e.status),
    }
}

/// `POST /reset-password/{token}`.
#[tracing::instrument(skip_all)]
pub async fn reset(app: &App, req: &Request, params: &PathParams) -> Response {
    match set_password(app, req, params).await {
        Ok(response) => response,
        Err(e) => page::failure(Lang::En, e.status),
    }
}

async fn set_password(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let Some((link, account)) = resolve(app, params).await? else {
        return Ok(page::invalid_link(Lang::En));
    };
    let Some(profile) = accounts::load_profile(app, &account).await? else {
        return Ok(page::invalid_link(Lang::En));
    };
    let raw = form_field(req, "new_password").unwrap_or_default();
    let new = match Password::parse(&raw) {
        Ok(p) => p,
        Err(e) => return Ok(form(Some(&e.to_string()))),
    };
    if let Err(e) = check_new_password(&new, &profile.email, profile.name.as_deref()) {
        return Ok(form(Some(&e.message)));
    }
    let hash = hash_password(new).await?;
    let owner = account_key_owner(&account);
    let cipher = app.keys.cipher(&owner).await?;
    let indexer = app.keys.blind_indexer().await?;
    let now = app.clock.now();
    let version = profile.item.version().unwrap_or(0);
    let mut updated = profile
        .item
        .clone()
        .hashed("password_hash", &hash)
        .map_err(|_| ApiError::internal())?
        .with_version(version + 1);
    if profile.email_verified_at.is_none() {
        updated = updated
            .plain("email_verified_at", Value::N(now.millis()))
            .map_err(|_| ApiError::internal())?;
    }
    let ops = vec![
        WriteOp::Delete {
            key: link.key().clone(),
            condition: Condition::Exists,
        },
        WriteOp::Put {
            item: updated,
            condition: Condition::VersionIs(version),
        },
        seclog::entry_op(
            app,
            &account,
            &cipher,
            &indexer,
            seclog::Event::PasswordReset,
            network::client_addr(req),
        )?,
        notice_op(
            &app.ids.new_id(),
            &account,
            &Notice::PasswordChanged { at: now },
            now,
            None,
        )?,
    ];
    // Whoever reset the password proved the address: the failed sign-ins that locked it stop counting.
    let clear = EMAIL_LIMIT.clear_ops(&accounts::email_index(app, &profile.email).await?);
    match app.store.transact(ops).await {
        Ok(()) => {}
        Err(StoreError::TransactionConditionFailed { index: 0 }) => {
            return Ok(page::invalid_link(Lang::En));
        }
        Err(StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict) => {
            return Ok(page::page(
                StatusCode::CONFLICT,
                "Please try again",
                "<p>Your account changed at the same moment. Open the link again.</p>",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    app.key_store.transact(clear).await?;
    let sessions = all_sessions(app, &account).await?;
    app.store.delete_many(&sessions).await?;
    tracing::info!(account = %account, ended_sessions = sessions.len(), "password reset");
    Ok(page::page(
        StatusCode::OK,
        "Your password is changed",
        "<p>Your new password is set and every device was signed out. Sign in with the new password.</p>\
         <p><a href=\"/app#signin\">Sign in</a></p>",
    ))
}
