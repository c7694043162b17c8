//! Blind indexes: keyed HMAC-SHA256 of a normalised personal value, for equality lookups without it.
//!
//! ```text
//! index = base64url_nopad(HMAC-SHA256(K, "qchat/blind-index/v1" || u32 BE len(purpose) || purpose || value))
//! ```
//!
//! - `K` is the system blind-index key (owner `system:blind-index`), a data key of its own that never
//!   encrypts anything, so an index reveals nothing about any encryption key and vice versa;
//! - the purpose (`"email"`, `"psid"` …) separates domains: the same bytes indexed for two purposes give
//!   unrelated indexes, so an index of one kind can never be matched against another;
//! - the caller normalises the value first (e.g. a lower-cased e-mail address), because the index only
//!   finds byte-equal inputs.
//!
//! The blind-index key is never rotated: changing it would change every index, and lookups would miss.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::hmac;
use base64::Engine as _;

use super::keyring::DataKey;

/// Domain label of this index construction, so a future construction cannot collide with it.
const LABEL: &[u8] = b"qchat/blind-index/v1";

/// A blind index value (base64url of an HMAC-SHA256). Reveals nothing without the index key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlindIndex(String);

impl BlindIndex {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As read back from the store (an attribute or a key part written from [`Self::as_str`]).
    pub fn from_stored(s: &str) -> Self {
        Self(s.to_owned())
    }

    /// Any string as an index, for store tests that need index-shaped values without a key.
    #[cfg(feature = "test-support")]
    pub fn from_test_str(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// The HMAC key behind a [`BlindIndexer`], with the use count the key cache reads.
pub(crate) struct IndexKey {
    key: hmac::Key,
    uses: AtomicU64,
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexKey")
            .field("uses", &self.uses.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl IndexKey {
    pub(crate) fn new(key: &DataKey) -> Self {
        Self {
            // aws-lc-rs keeps the key in an HMAC context that it cleanses when dropped.
            key: hmac::Key::new(hmac::HMAC_SHA256, key.expose()),
            uses: AtomicU64::new(0),
        }
    }
    pub(crate) fn uses(&self) -> u64 {
        self.uses.load(Ordering::Relaxed)
    }
}

/// Computes blind indexes under the system blind-index key. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlindIndexer {
    key: Arc<IndexKey>,
}

impl BlindIndexer {
    /// An indexer over one key, outside any cache (tests, benches, tools).
    /// Production code gets its indexer from [`super::KeyManager::blind_indexer`].
    pub fn new(key: &DataKey) -> Self {
        Self::from_key(Arc::new(IndexKey::new(key)))
    }

    pub(crate) fn from_key(key: Arc<IndexKey>) -> Self {
        Self { key }
    }

    /// The index of `normalised_value` for `purpose`. Deterministic: the same inputs give the same index.
    pub fn index(&self, purpose: &str, normalised_value: &[u8]) -> BlindIndex {
        self.key.uses.fetch_add(1, Ordering::Relaxed);
        let mut ctx = hmac::Context::with_key(&self.key.key);
        ctx.update(LABEL);
        // Purposes are short constants; the length prefix keeps ("ab", "c…") and ("a", "bc…") apart.
        let len = u32::try_from(purpose.len()).unwrap_or(u32::MAX);
        ctx.update(&len.to_be_bytes());
        ctx.update(purpose.as_bytes());
        ctx.update(normalised_value);
        BlindIndex(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.sign()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_separated_by_purpose_value_and_key() {
        let a = BlindIndexer::new(&DataKey::from_bytes([1; 32]));
        let b = BlindIndexer::new(&DataKey::from_bytes([2; 32]));
        let x = a.index("email", b"a@example.com");
        assert_eq!(x, a.index("email", b"a@example.com"));
        assert_eq!(x.as_str().len(), 43);
        assert_ne!(x, a.index("psid", b"a@example.com"));
        assert_ne!(x, a.index("email", b"b@example.com"));
        assert_ne!(x, b.index("email", b"a@example.com"));
        // The length prefix keeps the purpose/value boundary unambiguous.
        assert_ne!(a.index("ab", b"c"), a.index("a", b"bc"));
    }
}
