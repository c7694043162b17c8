//! One-click unsubscribe tokens for `/u/{token}` links: the time the token was made, then 256 random
//! bits (or, for links made since broadcasts, 256 bits of a keyed HMAC: see [`UnsubscribeToken::derive`]); stored only as its stamped SHA-256. The token names nothing personal; its item points to the
//! page and lead.
//!
//! Why the time comes first: the link item's key is made from the stamped hash, so new links sort by
//! the time they were made and a webhook batch's links share the last index page rather than landing on
//! a random page each (a hash alone is random), measured by the webhook benchmark. The stamp says only
//! when the link was made, to whoever holds it. Tokens made before the stamp (43 characters) still work.

use secrecy::{ExposeSecret, SecretString};

use crate::clock::Timestamp;
use crate::crypto::{BlindIndexer, OneWayHash};
use crate::domain::{LeadId, PageId};
use crate::store::ItemKey;

/// Blind-index purpose of derived unsubscribe tokens.
const DERIVE_PURPOSE: &str = "unsubscribe_link";
/// Lowercase hex digits of the time stamp (epoch milliseconds; enough until the year 10889).
const STAMP_LEN: usize = 12;
/// Base64url characters of 256 random bits.
const RANDOM_LEN: usize = 43;

/// An unsubscribe token as it appears in a link: 12 hex digits of time, then 43 base64url characters.
#[derive(Debug, Clone)]
pub struct UnsubscribeToken(SecretString);

impl UnsubscribeToken {
    pub fn generate(now: Timestamp) -> Self {
        use base64::Engine as _;
        let bytes = crate::crypto::random_bytes::<32>();
        let random = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let stamp = u64::try_from(now.millis()).unwrap_or(0);
        Self(SecretString::from(format!("{stamp:012x}{random}")))
    }
    /// A token the sender can make again without storing it: the time stamp, then a keyed HMAC (under
    /// the system blind-index key) of the page, the lead and the stamp — 256 bits no one without the
    /// key can compute. The store keeps only its hash, as for any token; a broadcast message puts the
    /// lead's link in its footer by deriving it again ([`Self::rederive`]).
    ///
    /// `previous` is the lead's current `unsubscribe_hash`, if any: a new link is stamped after it, so
    /// a link made again in the same millisecond is still a new token (and a new key).
    pub fn derive(
        indexer: &BlindIndexer,
        page: &PageId,
        lead: &LeadId,
        now: Timestamp,
        previous: Option<&str>,
    ) -> Self {
        let after = previous
            .and_then(|h| h.split_once('.'))
            .and_then(|(stamp, _)| u64::from_str_radix(stamp, 16).ok())
            .map_or(0, |ms| ms + 1);
        let ms = u64::try_from(now.millis()).unwrap_or(0).max(after);
        let stamp = format!("{ms:012x}");
        Self::derived(indexer, page, lead, &stamp)
    }

    fn derived(indexer: &BlindIndexer, page: &PageId, lead: &LeadId, stamp: &str) -> Self {
        let input = format!("{}\u{0}{}\u{0}{stamp}", page.as_str(), lead.as_str());
        let mac = indexer.index(DERIVE_PURPOSE, input.as_bytes());
        Self(SecretString::from(format!("{stamp}{}", mac.as_str())))
    }

    /// The token whose stored hash (the lead's `unsubscribe_hash`) is `stored`, if it was made by
    /// [`Self::derive`] for this page and lead (a random token of older links cannot be made again).
    pub fn rederive(
        indexer: &BlindIndexer,
        page: &PageId,
        lead: &LeadId,
        stored: &str,
    ) -> Option<Self> {
        let (stamp, _) = stored.split_once('.')?;
        if stamp.len() != STAMP_LEN
            || !stamp
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        let token = Self::derived(indexer, page, lead, stamp);
        crate::crypto::constant_time_eq(token.hash().as_str().as_bytes(), stored.as_bytes())
            .then_some(token)
    }

    /// Accepts a token from a URL; `None` if it cannot be one of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let random = match raw.len() {
            RANDOM_LEN => raw,
            len if len == STAMP_LEN + RANDOM_LEN => {
                let (stamp, random) = raw.split_at(STAMP_LEN);
                if !stamp
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return None;
                }
                random
            }
            _ => return None,
        };
        let ok = random
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(SecretString::from(raw)))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    /// SHA-256 of the whole token, after the token's time stamp (none on a token made before stamps).
    pub fn hash(&self) -> OneWayHash {
        let raw = self.expose();
        let hash = OneWayHash::sha256_of(raw.as_bytes());
        match raw.split_at_checked(STAMP_LEN) {
            Some((stamp, _)) if raw.len() == STAMP_LEN + RANDOM_LEN => hash.after_prefix(stamp),
            _ => hash,
        }
    }
}

pub fn unsubscribe_key(hash: &OneWayHash) -> ItemKey {
    ItemKey::new(format!("UNSUB#{}", hash.as_str()), "UNSUB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_from_its_link_with_the_same_hash() {
        let token = UnsubscribeToken::generate(Timestamp::from_millis(1_800_000_000_000));
        assert_eq!(token.expose().len(), STAMP_LEN + RANDOM_LEN);
        let parsed = UnsubscribeToken::parse(token.expose()).expect("parses");
        assert_eq!(parsed.hash().as_str(), token.hash().as_str());
    }

    #[test]
    fn link_keys_sort_by_the_time_their_tokens_were_made() {
        let keys: Vec<ItemKey> = [999, 1_800_000_000_000, 1_800_000_000_001, 1_900_000_000_000]
            .into_iter()
            .map(|ms| {
                unsubscribe_key(&UnsubscribeToken::generate(Timestamp::from_millis(ms)).hash())
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }

    #[test]
    fn a_token_made_before_stamps_keeps_its_plain_hash() {
        let legacy = "A".repeat(RANDOM_LEN);
        let token = UnsubscribeToken::parse(&legacy).expect("a 43-character token parses");
        assert_eq!(
            token.hash().as_str(),
            OneWayHash::sha256_of(legacy.as_bytes()).as_str()
        );
    }

    #[test]
    fn a_derived_token_is_made_again_from_its_hash_for_its_lead_only() {
        let indexer = BlindIndexer::new(&crate::crypto::DataKey::from_bytes([7; 32]));
        let page = PageId::parse("1234567890").expect("page");
        let lead = LeadId::parse("lead-a").expect("lead");
        let other = LeadId::parse("lead-b").expect("lead");
        let at = Timestamp::from_millis(1_800_000_000_000);
        let token = UnsubscribeToken::derive(&indexer, &page, &lead, at, None);
        let next =
            UnsubscribeToken::derive(&indexer, &page, &lead, at, Some(token.hash().as_str()));
        assert_ne!(
            next.expose(),
            token.expose(),
            "a link made again at once is a new one"
        );
        assert_eq!(token.expose().len(), STAMP_LEN + RANDOM_LEN);
        let parsed = UnsubscribeToken::parse(token.expose()).expect("parses as a link token");
        let stored = parsed.hash();
        let again = UnsubscribeToken::rederive(&indexer, &page, &lead, stored.as_str())
            .expect("derived again");
        assert_eq!(again.expose(), token.expose());
        assert!(UnsubscribeToken::rederive(&indexer, &page, &other, stored.as_str()).is_none());
        let random = UnsubscribeToken::generate(Timestamp::from_millis(1_800_000_000_000));
        assert!(
            UnsubscribeToken::rederive(&indexer, &page, &lead, random.hash().as_str()).is_none()
        );
    }

    #[test]
    fn anything_else_is_not_a_token() {
        let random = "A".repeat(RANDOM_LEN);
        for raw in [
            String::new(),
            "A".repeat(RANDOM_LEN - 1),
            format!("0000000000zz{random}"),
            format!("0000000000AB{random}"),
            format!("000000000000{}!", "A".repeat(RANDOM_LEN - 1)),
            format!("0000000000000{random}"),
        ] {
            assert!(UnsubscribeToken::parse(&raw).is_none(), "{raw:?}");
        }
    }
}
