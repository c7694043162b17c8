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

/// An id that begins with the time it was made: 10 characters of `millis` (50 bits, in base32 with the
/// alphabet `0-9a-v`, whose order is the characters' order, so ids of later milliseconds sort after),
/// then the last 16 characters of a fresh id from `ids` (80 random bits from [`RandomIds`]). 26
/// characters in the alphabet of every other id.
///
/// For keys that would otherwise land on random pages of the embedded store's indexes (a lead's items
/// are keyed by its id): ids made close together sort together, so one commit's new keys share a few
/// index pages instead of dirtying one page each. They say when they were made, which the items they
/// name hold anyway (a lead's creation time), and nothing about anyone.
pub fn time_ordered(ids: &dyn IdGenerator, millis: i64) -> String {
    const ORDERED: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let time = u64::try_from(millis).unwrap_or_default();
    let mut out: String = (0..10)
        .rev()
        .map(|digit| char::from(ORDERED[((time >> (digit * 5)) & 31) as usize]))
        .collect();
    let fresh = ids.new_id();
    out.push_str(
        fresh
            .get(fresh.len().saturating_sub(16)..)
            .unwrap_or(&fresh),
    );
    out
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
    fn time_ordered_ids_sort_by_their_millisecond_and_keep_the_random_tail() {
        let earlier = time_ordered(&RandomIds, 1_800_000_000_000);
        let later = time_ordered(&RandomIds, 1_800_000_000_001);
        let same = time_ordered(&RandomIds, 1_800_000_000_001);
        assert_eq!(earlier.len(), 26);
        assert!(earlier < later, "{earlier} < {later}");
        assert_eq!(later[..10], same[..10]);
        assert_ne!(later, same, "80 random bits after the time");
        assert!(
            later
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        let sequential = SequentialIds::default();
        assert_eq!(
            time_ordered(&sequential, 0),
            format!("{}{}", "0".repeat(10), "0000000000000001")
        );
    }

    #[test]
    fn random_ids_are_26_chars_and_distinct() {
        let a = RandomIds.new_id();
        let b = RandomIds.new_id();
        assert_eq!(a.len(), 26);
        assert_ne!(a, b);
    }
}
