//! Identifier and randomness source as a port: random in production, predictable in tests.
//!
//! Ids are 128 random bits in lowercase base32 (26 characters), URL-safe and free of personal data.

use std::sync::atomic::{AtomicU64, Ordering};

/// Makes opaque identifiers.
pub trait IdGenerator: Send + Sync + std::fmt::Debug {
    /// A new unique identifier (26 lowercase base32 characters).
    fn new_id(&self) -> String;
}

/// 128 bits from the operating system's CSPRNG (through aws-lc-rs).
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_id(&self) -> String {
        base32_lower(&crate::crypto::random_bytes::<16>())
    }
}

/// `id-000001`, `id-000002`, … for tests that assert on ids.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn new_id(&self) -> String {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        format!("id{n:024}")
    }
}

/// RFC 4648 base32, lowercase, without padding.
pub fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32_lower(b""), "");
        assert_eq!(base32_lower(b"f"), "my");
        assert_eq!(base32_lower(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn random_ids_are_26_chars_and_distinct() {
        let a = RandomIds.new_id();
        let b = RandomIds.new_id();
        assert_eq!(a.len(), 26);
        assert_ne!(a, b);
    }
}
