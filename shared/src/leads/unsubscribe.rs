//! One-click unsubscribe tokens for `/u/{token}` links: 256 random bits, stored only as SHA-256. The
//! token names nothing personal; its item points to the page and lead.

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::OneWayHash;
use crate::store::ItemKey;

/// An unsubscribe token as it appears in a link (43 base64url characters).
#[derive(Debug, Clone)]
pub struct UnsubscribeToken(SecretString);

impl UnsubscribeToken {
    pub fn generate() -> Self {
        use base64::Engine as _;
        let bytes = crate::crypto::random_bytes::<32>();
        Self(SecretString::from(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }
    /// Accepts a token from a URL; `None` if it cannot be one of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.len() == 43
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(SecretString::from(raw)))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn hash(&self) -> OneWayHash {
        OneWayHash::sha256_of(self.expose().as_bytes())
    }
}

pub fn unsubscribe_key(hash: &OneWayHash) -> ItemKey {
    ItemKey::new(format!("UNSUB#{}", hash.as_str()), "UNSUB")
}
