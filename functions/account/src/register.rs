//! `POST /api/accounts`: registration. Nothing is created until the address is proven: the registration
//! waits, sealed, behind a single-use link mailed to the address ([`crate::verify`] creates the account
//! when it is used). The answer is the same whether or not the address already has an account.

use qchat_shared::accounts::{self, REGISTRATIONS_KEY_OWNER, purpose};
use qchat_shared::app::App;
use qchat_shared::crypto::{CryptoError, FieldCipher};
use qchat_shared::domain::{EmailAddress, LinkToken, Password};
use qchat_shared::http::{ApiError, Request, Response, StatusCode, json, parse_json};
use qchat_shared::inventory::{EMAIL_VERIFICATION, MAIL_THROTTLE};
use qchat_shared::outbox::{Notice, notice_op, outbox_op};
use qchat_shared::password;
use qchat_shared::store::{Condition, Item, ItemKey, StoreError, Value, WriteOp};

use crate::policies::{PolicyKind, current_policy};

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

/// How long a registration or address-change link stays usable.
pub const LINK_HOURS: i64 = 24;

/// The same answer to every well-formed registration, whether the address is free or has an account.
fn verification_sent() -> Response {
    json(
        StatusCode::ACCEPTED,
        &serde_json::json!({
            "status": "verification_sent",
            "message": "check your inbox: the link we sent finishes the registration within 24 hours",
        }),
    )
}

/// `POST /api/accounts`: nothing is created until the address is proven. A free address gets a
/// single-use link that creates the account ([`crate::verify`]); an address that already has an account
/// gets a notice saying so. Both answer 202 with the same body after the same work (an argon2id hash, a
/// blind index, a lookup, the throttle's write and one transaction), so the answer tells nobody whether
/// an address is registered. One mail per address per quarter hour ([`mail_allowed`]): a repeat within
/// that time is answered the same and sends nothing.
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

    // The hash is made whether or not the address is free: the same work, the same time.
    let hash = hash_password(pw).await?;
    let indexer = app.keys.blind_indexer().await?;
    let email_index = indexer.index(purpose::EMAIL, email.expose().as_bytes());
    let now = app.clock.now();
    let existing = accounts::account_with_email(app, &email_index).await?;
    if !mail_allowed(app, MailPurpose::Registration, &email_index, now).await? {
        // A mail went to this address within the quarter hour: the same answer, no second mail.
        tracing::info!("registration answered; the address was mailed recently");
        return Ok(verification_sent());
    }
    let outbox_id = app.ids.new_id();
    let ops = match &existing {
        Some(account) => vec![notice_op(
            &outbox_id,
            account,
            &Notice::RegistrationAddressTaken,
            now,
            None,
        )?],
        None => {
            let cipher = registrations_cipher(app).await?;
            let token = LinkToken::generate();
            let key = verification_key(&token);
            let sealed_email = cipher.seal(&key, "email", email.expose().as_bytes())?;
            let mut pending = Item::new(&EMAIL_VERIFICATION, key.clone())
                .plain("purpose", Value::S(REGISTRATION.to_owned()))
                .and_then(|i| i.sealed("email", sealed_email))
                .and_then(|i| i.hashed("password_hash", &hash))
                .and_then(|i| i.plain("privacy_version", Value::S(privacy.version.clone())))
                .and_then(|i| i.plain("terms_version", Value::S(terms.version.clone())))
                .and_then(|i| i.plain("created", Value::N(now.millis())))
                .map_err(|_| ApiError::internal())?
                .expires_at(now.plus_hours(LINK_HOURS));
            if let Some(n) = &name {
                pending = pending
                    .sealed("name", cipher.seal(&key, "name", n.as_bytes())?)
                    .map_err(|_| ApiError::internal())?;
            }
            let mail_key = qchat_shared::outbox::outbox_key(&outbox_id);
            let recipient = cipher.seal(&mail_key, "recipient", email.expose().as_bytes())?;
            let secret = cipher.seal(&mail_key, "secret", token.expose().as_bytes())?;
            vec![
                WriteOp::Put {
                    item: pending,
                    condition: Condition::NotExists,
                },
                outbox_op(
                    &outbox_id,
                    None,
                    &Notice::ConfirmRegistration,
                    now,
                    Some(recipient),
                    Some(secret),
                )?,
            ]
        }
    };
    app.store.transact(ops).await?;
    tracing::info!("registration answered; a link or notice is queued");
    Ok(verification_sent())
}

/// The cipher of the registrations key, made on first use (a cached key costs no keyring call).
pub async fn registrations_cipher(app: &App) -> Result<FieldCipher, ApiError> {
    match app.keys.cipher(REGISTRATIONS_KEY_OWNER).await {
        Ok(cipher) => Ok(cipher),
        Err(CryptoError::NoKey) => {
            app.keys.create(REGISTRATIONS_KEY_OWNER).await?;
            Ok(app.keys.cipher(REGISTRATIONS_KEY_OWNER).await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// What a throttled mail is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailPurpose {
    Registration,
    PasswordReset,
}

/// Writes the marker that lets one registration or reset mail go to an address per quarter hour, in
/// the key store (its key is the address's blind index, which must not be in the backed-up store); false
/// while an earlier one lives. Written before the mail is queued: a failure in between costs that
/// address one quarter hour, never a second mail.
///
/// # Errors
/// The key store's failure.
pub async fn mail_allowed(
    app: &App,
    purpose: MailPurpose,
    email_index: &qchat_shared::crypto::BlindIndex,
    now: qchat_shared::clock::Timestamp,
) -> Result<bool, ApiError> {
    let name = match purpose {
        MailPurpose::Registration => "REGISTER",
        MailPurpose::PasswordReset => "RESET",
    };
    let item = Item::new(
        &MAIL_THROTTLE,
        ItemKey::new(format!("MAILED#{name}#{}", email_index.as_str()), "MAILED"),
    )
    .plain("created", Value::N(now.millis()))
    .map_err(|_| ApiError::internal())?
    .expires_at(now.plus_secs(15 * 60));
    match app.key_store.put(item, Condition::NotExists).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The `purpose` of a pending registration.
pub const REGISTRATION: &str = "registration";
/// The `purpose` of a pending change of address.
pub const EMAIL_CHANGE: &str = "email_change";

/// Where a pending verification lives: the link token is stored only as its SHA-256.
pub fn verification_key(token: &LinkToken) -> ItemKey {
    ItemKey::new(format!("VERIFY#{}", token.hash().as_str()), "VERIFY")
}
