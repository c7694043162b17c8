//! Cryptography: primitives from aws-lc-rs, the keyring port (KMS or a local master key), per-owner data
//! keys with a bounded cache, field encryption and blind indexes.
//!
//! See `field.rs` for the ciphertext format, `keys.rs` for key storage and the cache, `blind.rs` for the
//! blind-index construction, `local.rs` for the master key file and its wrap format.

pub mod blind;
#[cfg(feature = "test-support")]
pub mod conformance;
mod error;
pub mod field;
pub mod keyring;
pub mod keys;
pub mod kms;
#[cfg(feature = "local")]
pub mod local;

pub use blind::{BlindIndex, BlindIndexer};
pub use error::CryptoError;
pub use field::{FieldCipher, LeadSecret, Plaintext, Sealed};
pub use keyring::{DataKey, GeneratedKey, KeyContext, Keyring, KeyringError, WrappedKey};
pub use keys::{BLIND_INDEX_OWNER, KeyCachePolicy, KeyManager};
pub use kms::KmsKeyring;
#[cfg(feature = "local")]
pub use local::LocalKeyring;

use base64::Engine as _;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // aws-lc-rs's system RNG fails only if the OS has no entropy source, which a Lambda or a Linux host has.
    if aws_lc_rs::rand::fill(&mut out).is_err() {
        panic!("the operating system's random number generator failed");
    }
    out
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Equality in time independent of where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// A one-way hash for storage: `sha256:<base64url>` of a random token, or an argon2id PHC string.
#[derive(Clone, PartialEq, Eq)]
pub struct OneWayHash(String);

impl std::fmt::Debug for OneWayHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneWayHash(<redacted>)")
    }
}

impl OneWayHash {
    /// SHA-256 of a high-entropy secret (session or unsubscribe token). Not for passwords.
    pub fn sha256_of(secret: &[u8]) -> Self {
        Self(format!(
            "sha256:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(secret))
        ))
    }
    /// An argon2id PHC string produced by the password hasher.
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }
    /// The hash after a prefix that is no secret (e.g. a time, so that keys made from it sort by it).
    pub fn after_prefix(self, prefix: &str) -> Self {
        Self(format!("{prefix}.{}", self.0))
    }
    /// As read back from the store.
    pub fn from_stored(s: &str) -> Self {
        Self(s.to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
