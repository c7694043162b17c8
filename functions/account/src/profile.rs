//! The account holder's own account: read it, change the name or email, change the password (which ends
//! every other session and sends a notice), and read the security log.

use qchat_shared::accounts::{self, purpose};
use qchat_shared::app::{App, account_key_owner};
use qchat_shared::domain::Password;
use qchat_shared::http::{ApiError, Request, Response, StatusCode, json, parse_json};
use qchat_shared::inventory::EMAIL_CLAIM;
use qchat_shared::outbox::{Notice, notice_op};
use qchat_shared::store::{Condition, Item, StoreError, Value, WriteOp};

use crate::policies::{PolicyKind, current_policy};
use crate::register::{check_new_password, hash_password, parse_email, parse_name};
use crate::sessions::all_sessions;
use crate::{auth, network, seclog};

/// `GET /api/account`.
pub async fn get(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let profile = auth::profile(app, &caller).await?;
    let operator = auth::is_operator(app, &profile).await?;
    let privacy = current_policy(app, PolicyKind::Privacy).await?;
    let terms = current_policy(app, PolicyKind::Terms).await?;
    let required = profile.privacy_version.as_deref() != Some(privacy.version.as_str())
        || profile.terms_version.as_deref() != Some(terms.version.as_str());
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "id": profile.id,
            "email": profile.email.expose(),
            "name": profile.name,
            "created_at": profile.created.to_rfc3339(),
            "role": if operator { "operator" } else { "account_holder" },
            "policies": {
                "privacy": { "accepted_version": profile.privacy_version, "current_version": privacy.version },
                "terms": { "accepted_version": profile.terms_version, "current_version": terms.version },
                "acceptance_required": required,
            },
        }),
    ))
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

/// `PATCH /api/account` {name?, email?}. A new email must be free; the old address is told of the change.
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
    let key = profile.item.key().clone();
    let version = profile.item.version().unwrap_or(0);
    let mut updated = profile.item.clone().with_version(version + 1);
    if let Some(n) = &name {
        updated = updated
            .sealed("name", cipher.seal(&key, "name", n.as_bytes())?)
            .map_err(|_| ApiError::internal())?;
    }
    let mut ops = Vec::new();
    let now = app.clock.now();
    let mut new_claim_index = None;
    if let Some(new_email) = email.as_ref().filter(|e| **e != profile.email) {
        let indexer = app.keys.blind_indexer().await?;
        let new_index = indexer.index(purpose::EMAIL, new_email.expose().as_bytes());
        updated = updated
            .sealed(
                "email",
                cipher.seal(&key, "email", new_email.expose().as_bytes())?,
            )
            .and_then(|i| i.blind_index("email_index", &new_index))
            .map_err(|_| ApiError::internal())?;
        let claim = Item::new(&EMAIL_CLAIM, accounts::email_claim_key(&new_index))
            .plain("account_id", Value::S(caller.account.as_str().to_owned()))
            .map_err(|_| ApiError::internal())?;
        ops.push(WriteOp::Put {
            item: claim,
            condition: Condition::NotExists,
        });
        ops.push(WriteOp::Delete {
            key: accounts::email_claim_key(&profile.email_index),
            condition: Condition::Always,
        });
        // The notice goes to the old address, sealed into the outbox item under the account's key.
        let outbox_id = app.ids.new_id();
        let old = cipher.seal(
            &qchat_shared::outbox::outbox_key(&outbox_id),
            "recipient",
            profile.email.expose().as_bytes(),
        )?;
        ops.push(notice_op(
            &outbox_id,
            &caller.account,
            &Notice::EmailChanged { at: now },
            now,
            Some(old),
        )?);
        ops.push(seclog::entry_op(
            app,
            &caller.account,
            &cipher,
            &indexer,
            seclog::Event::EmailChanged,
            network::client_addr(req),
        )?);
        new_claim_index = Some(0);
    }
    ops.push(WriteOp::Put {
        item: updated,
        condition: Condition::VersionIs(version),
    });
    match app.store.transact(ops).await {
        Ok(()) => {}
        Err(StoreError::TransactionConditionFailed { index }) if Some(index) == new_claim_index => {
            return Err(ApiError::conflict(
                "email_taken",
                "an account with this email already exists",
            ));
        }
        Err(e) => return Err(conflict_on_concurrent_update(e)),
    }
    tracing::info!(account = %caller.account, "account updated");
    get(app, req).await
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

/// `GET /api/account/security-log`: the last 30 days, newest first.
pub async fn security_log(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let entries = seclog::recent(app, &caller.account, 200).await?;
    let events = seclog::render(app, &caller.account, &entries).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "events": events }),
    ))
}
