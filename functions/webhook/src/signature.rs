//! `X-Hub-Signature-256` verification: HMAC-SHA256 of the raw body bytes, keyed with the app secret,
//! compared in constant time.
//!
//! Invariant: the body is verified exactly as received, before anything parses it — Meta escapes
//! non-ASCII and some punctuation, so a parsed and re-serialised body would not verify (MESSENGER.md §2).
//! The old SHA-1 `X-Hub-Signature` is neither required nor accepted.

use aws_lc_rs::hmac;
use qchat_shared::crypto::constant_time_eq;

/// The header Meta signs with.
pub const HEADER: &str = "x-hub-signature-256";

/// Why a signature was refused. Never holds the header or the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is not sha256=<64 hex digits>")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Decodes 64 hex digits (either case) into 32 bytes.
fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

/// Checks `header` (the value of [`HEADER`], if present) against `body` under `secret`.
pub fn verify(secret: &[u8], header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let header = std::str::from_utf8(header).map_err(|_| SignatureError::Malformed)?;
    let hex = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let given = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let expected = hmac::sign(&key, body);
    if constant_time_eq(expected.as_ref(), &given) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header value Meta would send for `body` (for tests and local tooling).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body);
    format!("sha256={}", hex::encode(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"app-secret";

    #[test]
    fn a_signature_over_the_exact_bytes_verifies_in_either_hex_case() {
        let body = br#"{"object":"page","entry":[]}"#;
        let header = sign(SECRET, body);
        assert_eq!(verify(SECRET, Some(header.as_bytes()), body), Ok(()));
        let upper = format!("sha256={}", header["sha256=".len()..].to_uppercase());
        assert_eq!(verify(SECRET, Some(upper.as_bytes()), body), Ok(()));
    }

    #[test]
    fn missing_malformed_sha1_and_wrong_signatures_are_refused() {
        let body = b"{}";
        let good = sign(SECRET, body);
        assert_eq!(verify(SECRET, None, body), Err(SignatureError::Missing));
        assert_eq!(
            verify(
                SECRET,
                Some(b"sha1=0123456789abcdef0123456789abcdef01234567"),
                body
            ),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, Some(b"sha256=zz"), body),
            Err(SignatureError::Malformed)
        );
        // One digit short, one too many, and a non-hex digit at full length.
        let digits = &good["sha256=".len()..];
        for bad in [
            format!("sha256={}", &digits[1..]),
            format!("{good}0"),
            format!("sha256=g{}", &digits[1..]),
        ] {
            assert_eq!(
                verify(SECRET, Some(bad.as_bytes()), body),
                Err(SignatureError::Malformed)
            );
        }
        assert_eq!(
            verify(b"other", Some(good.as_bytes()), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, Some(good.as_bytes()), b"{} "),
            Err(SignatureError::Mismatch)
        );
    }
}
