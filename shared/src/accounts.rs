//! Account records: where an account's items live and how its profile is read. Shared by the account
//! function (which writes them), notify (which reads the address to send to) and erase.
//!
//! # Email claims
//! The claim that maps an address's blind index to its account lives in the key store
//! ([`App::key_store`]), so a restored copy of the main store holds no value computable from an address
//! (README, "Erasure and backups"). A claim and its account's profile are in two stores, so no
//! transaction spans them: the claim is written first, then the profile in the main store's transaction,
//! naming the claim by its random `claim_id` (`email_claim` on the profile). A claim is *live* when the
//! account it names exists and names it back; only a live claim finds an account. A claim that is not
//! live (its request crashed before the profile was written, or the account has since changed address)
//! is an *orphan* once [`ORPHAN_CLAIM_GRACE_SECS`] old, and the next claim of the address takes it over;
//! a younger one may still be in flight, and is left alone.

use crate::app::{App, account_key_owner};
use crate::clock::Timestamp;
use crate::crypto::{BlindIndex, CryptoError, OneWayHash};
use crate::domain::{AccountId, EmailAddress};
use crate::inventory::EMAIL_CLAIM;
use crate::store::{Condition, Item, ItemKey, StoreError, Value};

/// Blind-index purpose names: one per kind of value, so equal values of different kinds never collide.
pub mod purpose {
    pub const EMAIL: &str = "email";
    pub const NETWORK: &str = "network";
}

pub fn profile_key(id: &AccountId) -> ItemKey {
    ItemKey::new(format!("ACCOUNT#{id}"), "PROFILE")
}

pub fn email_claim_key(index: &BlindIndex) -> ItemKey {
    ItemKey::new(format!("EMAIL#{}", index.as_str()), "EMAIL")
}

/// How long a claim that is not live is presumed in flight (its writer between the claim and the
/// profile). Far above the longest request (the functions' 29 s timeout).
pub const ORPHAN_CLAIM_GRACE_SECS: i64 = 120;

/// The blind index of an address, as claims and sign-in limits key it.
///
/// # Errors
/// The blind-index key's failure.
pub async fn email_index(app: &App, email: &EmailAddress) -> Result<BlindIndex, CryptoError> {
    Ok(app
        .keys
        .blind_indexer()
        .await?
        .index(purpose::EMAIL, email.expose().as_bytes()))
}

/// A stored email claim.
#[derive(Debug, Clone)]
pub struct EmailClaim {
    pub account: AccountId,
    /// Random; the profile of a live claim's account holds it as `email_claim`.
    pub claim_id: String,
    pub created: Timestamp,
    pub item: Item,
}

impl EmailClaim {
    fn from_item(item: Item) -> Option<Self> {
        Some(Self {
            account: AccountId::parse(item.get_str("account_id")?).ok()?,
            claim_id: item.get_str("claim_id")?.to_owned(),
            created: Timestamp::from_millis(item.get_i64("created")?),
            item,
        })
    }

    fn in_grace(&self, now: Timestamp) -> bool {
        now.millis().saturating_sub(self.created.millis()) < ORPHAN_CLAIM_GRACE_SECS * 1000
    }
}

/// The claim of the address whose blind index is `index`, live or not (one key-store read). A claim
/// that cannot be read counts as absent; its next claim replaces it.
///
/// # Errors
/// The key store's failure.
pub async fn email_claim(app: &App, index: &BlindIndex) -> Result<Option<EmailClaim>, StoreError> {
    Ok(app
        .key_store
        .get(&email_claim_key(index))
        .await?
        .and_then(EmailClaim::from_item))
}

/// Whether `profile` (an item of [`crate::inventory::ACCOUNT`]) names `claim` back.
pub fn names_claim(profile: &Item, claim: &EmailClaim) -> bool {
    profile.get_str("email_claim") == Some(claim.claim_id.as_str())
}

/// The account that holds the address whose blind index is `index`, if any: the account its live claim
/// names. Always one key-store read and one profile read (of a random absent account when there is no
/// claim), so a free and a taken address cost the same.
///
/// # Errors
/// The stores' failure.
pub async fn account_with_email(
    app: &App,
    index: &BlindIndex,
) -> Result<Option<AccountId>, StoreError> {
    let claim = email_claim(app, index).await?;
    let account = claim.as_ref().map_or_else(
        || AccountId::generate(app.ids.as_ref()),
        |c| c.account.clone(),
    );
    let profile = app.store.get(&profile_key(&account)).await?;
    Ok(match (claim, profile) {
        (Some(claim), Some(profile)) if names_claim(&profile, &claim) => Some(claim.account),
        _ => None,
    })
}

/// What [`claim_email`] did.
#[derive(Debug)]
pub enum ClaimOutcome {
    /// The address is claimed for the account; write its profile with `email_claim = claim_id`.
    Claimed { claim_id: String },
    /// Another account holds the address.
    Taken,
    /// Another claim of the address is younger than [`ORPHAN_CLAIM_GRACE_SECS`] and not live yet: its
    /// request may still be writing the account. Try again later.
    InFlight,
}

/// Claims the address whose blind index is `index` for `account`, in the key store: the first write of
/// a registration or a change of address (see the module doc). Replaces an orphan, and a claim of the
/// same account that is not live (an earlier attempt of the same change).
///
/// # Errors
/// The stores' failure.
pub async fn claim_email(
    app: &App,
    index: &BlindIndex,
    account: &AccountId,
) -> Result<ClaimOutcome, StoreError> {
    let key = email_claim_key(index);
    // Two attempts: a claim written or replaced between our read and our write is judged again.
    for _ in 0..2 {
        let now = app.clock.now();
        let stored = app.key_store.get(&key).await?;
        let stored_version = stored.as_ref().map(|i| i.version().unwrap_or(0));
        let condition = match (stored_version, stored.and_then(EmailClaim::from_item)) {
            (None, _) => Condition::NotExists,
            // Unreadable: replaced as an orphan would be.
            (Some(v), None) => Condition::VersionIs(v),
            (Some(v), Some(claim)) => {
                let live = match app.store.get(&profile_key(&claim.account)).await? {
                    Some(profile) => names_claim(&profile, &claim),
                    None => false,
                };
                if live {
                    return Ok(ClaimOutcome::Taken);
                }
                if claim.account != *account && claim.in_grace(now) {
                    return Ok(ClaimOutcome::InFlight);
                }
                Condition::VersionIs(v)
            }
        };
        let version = match condition {
            Condition::VersionIs(v) => v + 1,
            _ => 1,
        };
        let claim_id = app.ids.new_id();
        let item = Item::new(&EMAIL_CLAIM, key.clone())
            .plain("account_id", Value::S(account.as_str().to_owned()))
            .and_then(|i| i.plain("claim_id", Value::S(claim_id.clone())))
            .and_then(|i| i.plain("created", Value::N(now.millis())))?
            .with_version(version);
        match app.key_store.put(item, condition).await {
            Ok(()) => return Ok(ClaimOutcome::Claimed { claim_id }),
            Err(StoreError::ConditionFailed) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ClaimOutcome::InFlight)
}

/// Deletes the claim of the address whose blind index is `index` if it names `account` (releasing an
/// address: a change of address, an erased account). Idempotent.
///
/// # Errors
/// The key store's failure.
pub async fn release_email(
    app: &App,
    index: &BlindIndex,
    account: &AccountId,
) -> Result<(), StoreError> {
    let Some(claim) = email_claim(app, index).await? else {
        return Ok(());
    };
    if claim.account != *account {
        return Ok(());
    }
    let version = claim.item.version().unwrap_or(0);
    match app
        .key_store
        .delete(claim.item.key(), Condition::VersionIs(version))
        .await
    {
        // Replaced meanwhile by another account's claim: not ours to delete.
        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The key owner that seals a registration's address until the account exists (the account's own key is
/// made when the address is confirmed). Pending registrations expire after a day.
pub const REGISTRATIONS_KEY_OWNER: &str = "system:registrations";

/// The index partition listing every account (notice fan-out).
pub const ALL_ACCOUNTS_PARTITION: &str = "ACCOUNTS";

/// An account's profile, decrypted.
#[derive(Debug, Clone)]
pub struct Profile {
    pub id: AccountId,
    pub email: EmailAddress,
    /// The random id of the email claim that gives the account its address (see the module doc).
    pub email_claim: Option<String>,
    pub name: Option<String>,
    pub password_hash: OneWayHash,
    pub created: Timestamp,
    /// When the current address was proven by a link sent to it (every account made by registration has
    /// one; the operator role requires it).
    pub email_verified_at: Option<Timestamp>,
    pub privacy_version: Option<String>,
    pub terms_version: Option<String>,
    /// The stored item, for conditional updates (`VersionIs`).
    pub item: Item,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("stored account profile is malformed: {0}")]
    Malformed(&'static str),
}

fn open_text(bytes: &[u8]) -> Result<String, ProfileError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProfileError::Malformed("text is not UTF-8"))
}

/// Reads and decrypts an account's profile; `None` if the account does not exist.
pub async fn load_profile(app: &App, id: &AccountId) -> Result<Option<Profile>, ProfileError> {
    let key = profile_key(id);
    let Some(item) = app.store.get(&key).await? else {
        return Ok(None);
    };
    let owner = account_key_owner(id);
    let sealed_email = item
        .get_sealed("email")
        .ok_or(ProfileError::Malformed("no email"))?;
    let email_bytes = app.keys.open(&owner, &key, "email", &sealed_email).await?;
    let email = EmailAddress::parse(&open_text(&email_bytes)?)
        .map_err(|_| ProfileError::Malformed("email"))?;
    let name = match item.get_sealed("name") {
        Some(sealed) => Some(open_text(
            &app.keys.open(&owner, &key, "name", &sealed).await?,
        )?),
        None => None,
    };
    Ok(Some(Profile {
        id: id.clone(),
        email,
        email_claim: item.get_str("email_claim").map(str::to_owned),
        name,
        password_hash: OneWayHash::from_stored(
            item.get_str("password_hash")
                .ok_or(ProfileError::Malformed("no hash"))?,
        ),
        created: Timestamp::from_millis(item.get_i64("created").unwrap_or(0)),
        email_verified_at: item
            .get_i64("email_verified_at")
            .map(Timestamp::from_millis),
        privacy_version: item.get_str("privacy_version").map(str::to_owned),
        terms_version: item.get_str("terms_version").map(str::to_owned),
        item,
    }))
}

/// The index partition of an account's sessions (sign out everywhere, erasure).
pub fn sessions_partition(id: &AccountId) -> String {
    format!("ACCOUNT#{id}#SESSIONS")
}

/// The index partition of an account's connected pages.
pub fn pages_partition(id: &AccountId) -> String {
    format!("ACCOUNT#{id}#PAGES")
}

/// The index partition of an account's pending single-use links (a change of address waiting for its
/// confirmation, a password reset), so erasure and export find them without a scan.
pub fn links_partition(id: &AccountId) -> String {
    format!("ACCOUNT#{id}#LINKS")
}

/// Destroys every version of an account's data key (crypto-shredding: its ciphertexts, in the table and
/// in its backups, are unreadable from then on). Idempotent.
///
/// # Errors
/// The keyring's or the store's; call again to resume.
pub async fn destroy_account_keys(
    keys: &crate::crypto::KeyManager,
    id: &AccountId,
) -> Result<(), CryptoError> {
    keys.destroy(&crate::app::account_key_owner(id)).await
}
