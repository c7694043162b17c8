//! The errors of field encryption and data-key management. They never carry key material, plaintext or
//! ciphertext; backend causes are kept as sources.

use super::keyring::KeyringError;
use crate::store::StoreError;

/// What went wrong sealing, opening, or managing a data key.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The owner has no data key of the needed version: never created, or destroyed (crypto-shredded).
    /// The store keeps no trace of a destroyed key, so the two cannot be told apart, by design.
    #[error("no data key for this owner and version (never created, or destroyed)")]
    NoKey,
    /// The key behind a cipher handle was destroyed while the handle was held.
    #[error("the data key was destroyed")]
    KeyDestroyed,
    /// The cipher does not hold the key version the value names; `KeyManager::open` loads it.
    #[error("the cipher does not hold data-key version {version}")]
    KeyVersionNotLoaded { version: u32 },
    /// The value does not authenticate: tampered, truncated, moved to another item or attribute, or
    /// sealed under another key. One variant for every AEAD failure, on purpose.
    #[error("the value cannot be decrypted")]
    Undecryptable,
    /// The value is not in any ciphertext format this code knows.
    #[error("unknown ciphertext format")]
    UnknownFormat,
    /// An empty owner id, or one reserved for a system key (the blind-index key).
    #[error("the owner id is empty or reserved for a system key")]
    InvalidOwner,
    /// A primitive of the crypto library failed (out of memory, or no entropy from the OS).
    #[error("cryptographic primitive failed: {0}")]
    Primitive(&'static str),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
