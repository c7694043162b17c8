//! `POST /api/accounts`: registration. The email is sealed and claimed through its blind index (so no two
//! accounts share it), the password hashed with argon2id, the account's data key created, and the
//! "account created" notice written in the same transaction.

use qchat_shared::accounts::{self, ALL_ACCOUNTS_PARTITION, profile_key, purpose};
use qchat_shared::app::{App, account_key_owner};
use qchat_shared::domain::{AccountId, EmailAddress, Password};
use qchat_shared::http::{ApiError, Request, Response, StatusCode, json, parse_json};
use qchat_shared::inventory::{ACCOUNT, EMAIL_CLAIM};
use qchat_shared::outbox::{Notice, notice_op};
use qchat_shared::password;
use qchat_shared::store::{Condition, Item, StoreError, Value, WriteOp};

use crate::policies::{PolicyKind, current_policy};
use crate::{network, seclog};

#[derive(serde::Deserialize)]
struct RegisterRequest {
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
    accepted_policy_version: String,
}

/// A display name: 1 to 100 characters, trimmed, none of them control, format or invisible
/// ([`qchat_shared::text::display_name`]).
pub fn parse_name(raw: &str) -> Result<String, ApiError> {
    qchat_shared::text::display_name(raw, 100)
        .map_err(|e| ApiError::bad_request("invalid_name", format!("name {e}")))
}

pub fn parse_email(raw: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(raw).map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))
}

/// Checks a new password against the rules, with the account's own address and name as context.
pub fn check_new_password(
    pw: &Password,
    email: &EmailAddress,
    name: Option<&str>,
) -> Result<(), ApiError> {
    let local = email.expose().split('@').next().unwrap_or_default();
    let mut context = vec![email.expose(), local];
    if let Some(n) = name {
        context.push(n);
    }
    password::check_new(pw, &context)
        .map_err(|w| ApiError::bad_request("weak_password", w.to_string()))
}

/// Hashes off the async workers: argon2id with 19 MiB takes tens of milliseconds.
pub async fn hash_password(pw: Password) -> Result<qchat_shared::crypto::OneWayHash, ApiError> {
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|_| ApiError::internal())
}

pub async fn register(app: &App, req: &Request) -> Result<Response, ApiError> {
    let body: RegisterRequest = parse_json(req)?;
    let email = parse_email(&body.email)?;
    let name = body.name.as_deref().map(parse_name).transpose()?;
    let pw = Password::parse(&body.password)
        .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?;
    let privacy = current_policy(app, PolicyKind::Privacy).await?;
    if body.accepted_policy_version != privacy.version {
        return Err(ApiError::bad_request(
            "policy_version_mismatch",
            format!(
                "accept the current privacy policy (version {}) to register",
                privacy.version
            ),
        ));
    }
    let terms = current_policy(app, PolicyKind::Terms).await?;
    check_new_password(&pw, &email, name.as_deref())?;

    let indexer = app.keys.blind_indexer().await?;
    let email_index = indexer.index(purpose::EMAIL, email.expose().as_bytes());
    // A quick look first, so a taken address does not cost a data key and a password hash.
    if app
        .store
        .get(&accounts::email_claim_key(&email_index))
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            "email_taken",
            "an account with this email already exists",
        ));
    }
    let hash = hash_password(pw).await?;

    let id = AccountId::generate(app.ids.as_ref());
    let owner = account_key_owner(&id);
    app.keys.create(&owner).await?;
    let cipher = app.keys.cipher(&owner).await?;
    let key = profile_key(&id);
    let now = app.clock.now();
    let mut profile = Item::new(&ACCOUNT, key.clone())
        .sealed(
            "email",
            cipher.seal(&key, "email", email.expose().as_bytes())?,
        )
        .and_then(|i| i.blind_index("email_index", &email_index))
        .and_then(|i| i.hashed("password_hash", &hash))
        .and_then(|i| i.plain("created", Value::N(now.millis())))
        .and_then(|i| i.plain("privacy_version", Value::S(privacy.version.clone())))
        .and_then(|i| i.plain("privacy_accepted_at", Value::N(now.millis())))
        .and_then(|i| i.plain("terms_version", Value::S(terms.version.clone())))
        .and_then(|i| i.plain("terms_accepted_at", Value::N(now.millis())))
        .map_err(|_| ApiError::internal())?
        .with_version(1)
        .with_gsi1(ALL_ACCOUNTS_PARTITION, id.as_str());
    if let Some(n) = &name {
        profile = profile
            .sealed("name", cipher.seal(&key, "name", n.as_bytes())?)
            .map_err(|_| ApiError::internal())?;
    }
    let claim = Item::new(&EMAIL_CLAIM, accounts::email_claim_key(&email_index))
        .plain("account_id", Value::S(id.as_str().to_owned()))
        .map_err(|_| ApiError::internal())?;
    let addr = network::client_addr(req);
    let ops = vec![
        WriteOp::Put {
            item: claim,
            condition: Condition::NotExists,
        },
        WriteOp::Put {
            item: profile,
            condition: Condition::NotExists,
        },
        seclog::entry_op(app, &id, &cipher, &indexer, seclog::Event::Registered, addr)?,
        notice_op(&app.ids.new_id(), &id, &Notice::AccountCreated, now, None)?,
    ];
    match app.store.transact(ops).await {
        Ok(()) => {}
        Err(e) => {
            // Nothing was written; the fresh data key protects nothing, so remove it.
            let _ = app.keys.destroy(&owner).await;
            return Err(match e {
                StoreError::TransactionConditionFailed { index: 0 } => {
                    ApiError::conflict("email_taken", "an account with this email already exists")
                }
                other => other.into(),
            });
        }
    }
    tracing::info!(account = %id, "account registered");
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({
            "id": id,
            "email": email.expose(),
            "name": name,
            "created_at": now.to_rfc3339(),
        }),
    ))
}
