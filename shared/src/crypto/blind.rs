//! Blind indexes: keyed HMAC-SHA256 of a normalised personal value, for equality lookups without it.

/// A blind index value (base64url of an HMAC-SHA256). Reveals nothing without the index key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlindIndex(String);

impl BlindIndex {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
