//! Account records: where an account's items live and how its profile is read. Shared by the account
//! function (which writes them), notify (which reads the address to send to) and erase.

use crate::app::{App, account_key_owner};
use crate::clock::Timestamp;
use crate::crypto::{BlindIndex, CryptoError, OneWayHash};
use crate::domain::{AccountId, EmailAddress};
use crate::store::{Item, ItemKey, StoreError};

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

/// The account that holds the address whose blind index is `index`, if any (its email claim).
pub async fn account_with_email(
    store: &dyn crate::store::ItemStore,
    index: &BlindIndex,
) -> Result<Option<AccountId>, StoreError> {
    Ok(store.get(&email_claim_key(index)).await?.and_then(|claim| {
        claim
            .get_str("account_id")
            .and_then(|a| AccountId::parse(a).ok())
    }))
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
    pub email_index: BlindIndex,
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
        email_index: BlindIndex::from_stored(
            item.get_str("email_index")
                .ok_or(ProfileError::Malformed("no email index"))?,
        ),
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

/// The write that frees an account's email address at once (the start of its erasure): sign-in no longer
/// finds the account, and the address may register again. With [`destroy_account_keys`], the only place
/// an erasure touches where claims and keys are kept.
pub fn free_email_claim_op(index: &BlindIndex) -> crate::store::WriteOp {
    crate::store::WriteOp::Delete {
        key: email_claim_key(index),
        condition: crate::store::Condition::Always,
    }
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
