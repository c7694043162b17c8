//! `/verify-email/{token}`: the single-use link that proves someone controls an address. The GET only shows
//! a confirm button (mail scanners and link previews follow GETs, and must not confirm an address for
//! whoever typed it); the POST of that button uses the link once:
//! - a registration becomes an account: the address is claimed in the key store first, then its data key
//!   is made, and the profile (sealed address, naming the claim), the "account created" notice and the
//!   link's deletion are one transaction of the main store;
//! - an account's new address replaces the old one: claimed first, then the profile changed (and the old
//!   address told) in one transaction, then the old claim released.
//!
//! The claim and the profile are in two stores (see `qchat_shared::accounts`): a crash between the two
//! leaves a claim no account names, which finds nothing and is taken over by the address's next claim.
//!
//! Both answer HTML whatever happens: a person reads them in a browser. An address that has meanwhile been
//! taken by another account is refused and the link spent; a used, expired or unknown link is "not valid".

use qchat_shared::accounts::{
    self, ALL_ACCOUNTS_PARTITION, ClaimOutcome, REGISTRATIONS_KEY_OWNER, profile_key,
};
use qchat_shared::app::{App, account_key_owner};
use qchat_shared::crypto::OneWayHash;
use qchat_shared::domain::{AccountId, EmailAddress, LinkToken};
use qchat_shared::http::page::{self, escape};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode};
use qchat_shared::i18n::Lang;
use qchat_shared::inventory::ACCOUNT;
use qchat_shared::outbox::{Notice, notice_op, outbox_key};
use qchat_shared::store::{Condition, Item, StoreError, Value, WriteOp};

use crate::register::{EMAIL_CHANGE, REGISTRATION, verification_key};
use crate::{network, seclog};

/// The pending verification a link names; `None` for a malformed, unknown, used or expired link.
async fn resolve(app: &App, params: &PathParams) -> Result<Option<Item>, ApiError> {
    let Some(token) = params.get("token").and_then(|t| LinkToken::parse(t).ok()) else {
        return Ok(None);
    };
    Ok(app.store.get(&verification_key(&token)).await?)
}

fn failure(e: &ApiError) -> Response {
    page::failure(Lang::En, e.status)
}

/// `GET /verify-email/{token}`: a button that posts back to this very URL; changes nothing.
#[tracing::instrument(skip_all)]
pub async fn page(app: &App, params: &PathParams) -> Response {
    match resolve(app, params).await {
        Ok(Some(item)) => {
            let what = match item.get_str("purpose") {
                Some(EMAIL_CHANGE) => {
                    "Confirm this address to make it your qchat account's address."
                }
                _ => "Confirm this address to finish creating your qchat account.",
            };
            page::page(
                StatusCode::OK,
                "Confirm your email address",
                &format!(
                    "<p>{}</p><form method=\"post\"><button type=\"submit\">Confirm</button></form>\
                     <p>If you did not ask for this, close this page: nothing happens without the \
                     button.</p>",
                    escape(what)
                ),
            )
        }
        Ok(None) => page::invalid_link(Lang::En),
        Err(e) => failure(&e),
    }
}

/// `POST /verify-email/{token}`: uses the link.
#[tracing::instrument(skip_all)]
pub async fn confirm(app: &App, req: &Request, params: &PathParams) -> Response {
    let item = match resolve(app, params).await {
        Ok(Some(item)) => item,
        Ok(None) => return page::invalid_link(Lang::En),
        Err(e) => return failure(&e),
    };
    let outcome = match item.get_str("purpose") {
        Some(REGISTRATION) => create_account(app, req, &item).await,
        Some(EMAIL_CHANGE) => change_email(app, req, &item).await,
        _ => Err(ApiError::internal()),
    };
    outcome.unwrap_or_else(|e| failure(&e))
}

fn address_taken() -> Response {
    page::page(
        StatusCode::CONFLICT,
        "This address already has an account",
        "<p>Another qchat account uses this address, so nothing was changed. Sign in to that account, or \
         ask for a password reset if you forgot its password.</p>",
    )
}

/// Spends a link whose use failed for good (its address is taken), so it cannot be tried again.
async fn spend(app: &App, item: &Item) -> Result<(), ApiError> {
    Ok(app.store.delete(item.key(), Condition::Always).await?)
}

/// Another request is between claiming this address and writing its account (or crashed there, and the
/// claim becomes free after a grace time): the link stays valid.
fn busy() -> Response {
    page::page(
        StatusCode::CONFLICT,
        "Please try again",
        "<p>This address is being confirmed at this very moment. Open the link again in a few minutes.</p>",
    )
}

fn text(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::internal())
}

async fn create_account(app: &App, req: &Request, pending: &Item) -> Result<Response, ApiError> {
    let key = pending.key();
    let sealed = pending.get_sealed("email").ok_or_else(ApiError::internal)?;
    let email = app
        .keys
        .open(REGISTRATIONS_KEY_OWNER, key, "email", &sealed)
        .await?;
    let email = EmailAddress::parse(&text(&email)?).map_err(|_| ApiError::internal())?;
    let name = match pending.get_sealed("name") {
        Some(sealed) => Some(text(
            &app.keys
                .open(REGISTRATIONS_KEY_OWNER, key, "name", &sealed)
                .await?,
        )?),
        None => None,
    };
    let email_index = accounts::email_index(app, &email).await?;
    let hash = OneWayHash::from_stored(
        pending
            .get_str("password_hash")
            .ok_or_else(ApiError::internal)?,
    );
    let accepted_at = pending.get_i64("created").unwrap_or_default();

    let id = AccountId::generate(app.ids.as_ref());
    let claim_id = match accounts::claim_email(app, &email_index, &id).await? {
        ClaimOutcome::Claimed { claim_id } => claim_id,
        ClaimOutcome::Taken => {
            spend(app, pending).await?;
            tracing::info!("registration link used for an address that has an account");
            return Ok(address_taken());
        }
        ClaimOutcome::InFlight => return Ok(busy()),
    };
    let owner = account_key_owner(&id);
    app.keys.create(&owner).await?;
    let cipher = app.keys.cipher(&owner).await?;
    let profile_key = profile_key(&id);
    let now = app.clock.now();
    let mut profile = Item::new(&ACCOUNT, profile_key.clone())
        .sealed(
            "email",
            cipher.seal(&profile_key, "email", email.expose().as_bytes())?,
        )
        .and_then(|i| i.plain("email_claim", Value::S(claim_id)))
        .and_then(|i| i.hashed("password_hash", &hash))
        .and_then(|i| i.plain("created", Value::N(now.millis())))
        .and_then(|i| i.plain("email_verified_at", Value::N(now.millis())))
        .map_err(|_| ApiError::internal())?
        .with_version(1)
        .with_gsi1(ALL_ACCOUNTS_PARTITION, id.as_str());
    for (version, at) in [
        ("privacy_version", "privacy_accepted_at"),
        ("terms_version", "terms_accepted_at"),
    ] {
        if let Some(v) = pending.get_str(version) {
            profile = profile
                .plain(version, Value::S(v.to_owned()))
                .and_then(|i| i.plain(at, Value::N(accepted_at)))
                .map_err(|_| ApiError::internal())?;
        }
    }
    if let Some(n) = &name {
        profile = profile
            .sealed("name", cipher.seal(&profile_key, "name", n.as_bytes())?)
            .map_err(|_| ApiError::internal())?;
    }
    let indexer = app.keys.blind_indexer().await?;
    let ops = vec![
        WriteOp::Delete {
            key: key.clone(),
            condition: Condition::Exists,
        },
        WriteOp::Put {
            item: profile,
            condition: Condition::NotExists,
        },
        seclog::entry_op(
            app,
            &id,
            &cipher,
            &indexer,
            seclog::Event::Registered,
            network::client_addr(req),
        )?,
        notice_op(&app.ids.new_id(), &id, &Notice::AccountCreated, now, None)?,
    ];
    let result = app.store.transact(ops).await;
    if result.is_err() {
        // Nothing was written; the fresh data key protects nothing, so remove it. The claim names an
        // account that does not exist: it finds nothing, and is released for the next claim.
        let _ = app.keys.destroy(&owner).await;
        let _ = accounts::release_email(app, &email_index, &id).await;
    }
    match result {
        Ok(()) => {
            tracing::info!(account = %id, "address confirmed; account created");
            Ok(page::page(
                StatusCode::OK,
                "Your account is ready",
                "<p>Your address is confirmed and your qchat account is created. Sign in with your email \
                 address and the password you chose.</p>",
            ))
        }
        // Used meanwhile (another click won).
        Err(StoreError::TransactionConditionFailed { index: 0 }) => {
            Ok(page::invalid_link(Lang::En))
        }
        Err(e) => Err(e.into()),
    }
}

async fn change_email(app: &App, req: &Request, pending: &Item) -> Result<Response, ApiError> {
    let Some(account) = pending
        .get_str("account_id")
        .and_then(|a| AccountId::parse(a).ok())
    else {
        return Err(ApiError::internal());
    };
    let Some(profile) = accounts::load_profile(app, &account).await? else {
        // The account is gone: so is the change.
        spend(app, pending).await?;
        return Ok(page::invalid_link(Lang::En));
    };
    let owner = account_key_owner(&account);
    let sealed = pending.get_sealed("email").ok_or_else(ApiError::internal)?;
    let new_email = app
        .keys
        .open(&owner, pending.key(), "email", &sealed)
        .await?;
    let new_email = EmailAddress::parse(&text(&new_email)?).map_err(|_| ApiError::internal())?;
    let new_index = accounts::email_index(app, &new_email).await?;
    let old_index = accounts::email_index(app, &profile.email).await?;
    if new_index == old_index {
        // Already this account's address: nothing to change.
        spend(app, pending).await?;
        return Ok(page::invalid_link(Lang::En));
    }
    let claim_id = match accounts::claim_email(app, &new_index, &account).await? {
        ClaimOutcome::Claimed { claim_id } => claim_id,
        ClaimOutcome::Taken => {
            spend(app, pending).await?;
            return Ok(address_taken());
        }
        ClaimOutcome::InFlight => return Ok(busy()),
    };
    let cipher = app.keys.cipher(&owner).await?;
    let indexer = app.keys.blind_indexer().await?;
    let now = app.clock.now();
    let key = profile.item.key().clone();
    let version = profile.item.version().unwrap_or(0);
    let updated = profile
        .item
        .clone()
        .sealed(
            "email",
            cipher.seal(&key, "email", new_email.expose().as_bytes())?,
        )
        .and_then(|i| i.plain("email_claim", Value::S(claim_id)))
        .and_then(|i| i.plain("email_verified_at", Value::N(now.millis())))
        .map_err(|_| ApiError::internal())?
        .with_version(version + 1);
    // The notice goes to the old address, sealed into the outbox item under the account's key.
    let outbox_id = app.ids.new_id();
    let old = cipher.seal(
        &outbox_key(&outbox_id),
        "recipient",
        profile.email.expose().as_bytes(),
    )?;
    let ops = vec![
        WriteOp::Delete {
            key: pending.key().clone(),
            condition: Condition::Exists,
        },
        WriteOp::Put {
            item: updated,
            condition: Condition::VersionIs(version),
        },
        notice_op(
            &outbox_id,
            &account,
            &Notice::EmailChanged { at: now },
            now,
            Some(old),
        )?,
        seclog::entry_op(
            app,
            &account,
            &cipher,
            &indexer,
            seclog::Event::EmailChanged,
            network::client_addr(req),
        )?,
    ];
    match app.store.transact(ops).await {
        Ok(()) => {
            // The old claim no longer finds the account (the profile names the new one); releasing it
            // frees the old address now rather than after the grace time.
            accounts::release_email(app, &old_index, &account).await?;
            tracing::info!(account = %account, "address change confirmed");
            Ok(page::page(
                StatusCode::OK,
                "Your address is changed",
                "<p>This address is now your qchat account's address. We told the previous address about \
                 the change.</p>",
            ))
        }
        Err(StoreError::TransactionConditionFailed { index: 0 }) => {
            Ok(page::invalid_link(Lang::En))
        }
        Err(StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict) => {
            Ok(page::page(
                StatusCode::CONFLICT,
                "Please try again",
                "<p>Your account changed at the same moment. Open the link again to confirm.</p>",
            ))
        }
        Err(e) => Err(e.into()),
    }
}
