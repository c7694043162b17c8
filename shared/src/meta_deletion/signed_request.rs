//! Meta's `signed_request` (MESSENGER.md §4): `<base64url signature>.<base64url JSON payload>`, the
//! signature an HMAC-SHA256 of the payload part, still encoded, keyed with the app secret.
//!
//! Invariants: the signature is checked (in constant time) before the payload is parsed, over the payload
//! part exactly as received; nothing of the request reaches an error, a log or a `Debug` — an error names
//! the rule that failed, and the one value kept, the app-scoped user id, has a redacted `Debug`.
//!
//! Decisions:
//! - base64url with or without `=` padding: Meta sends none, but a proxy or a library that re-encodes may
//!   add it, and either decodes to the same bytes. The standard alphabet (`+`, `/`) is refused.
//! - [`MAX_LEN`]: Meta's requests are a few hundred characters; anything longer is refused before any
//!   decoding or HMAC work.
//! - `issued_at` no older than [`MAX_AGE_SECS`] (Meta calls at once when the person removes the app; the
//!   hour bounds how long a captured request can be replayed) and no more than [`MAX_SKEW_SECS`] ahead of
//!   our clock (clock skew between Meta and us); a non-zero `expires` already past is refused too.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::clock::Timestamp;
use crate::crypto::constant_time_eq;
use crate::domain::AppScopedUserId;

/// The longest `signed_request` looked at, in bytes.
pub const MAX_LEN: usize = 4096;
/// How old `issued_at` may be.
pub const MAX_AGE_SECS: i64 = 3600;
/// How far ahead of our clock `issued_at` may be.
pub const MAX_SKEW_SECS: i64 = 300;
/// The only algorithm Meta signs with, and the only one accepted.
pub const ALGORITHM: &str = "HMAC-SHA256";

/// base64url, padding optional.
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a `signed_request` was refused: the rule, never the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignedRequestError {
    #[error("the form field signed_request is missing")]
    Missing,
    #[error("the signed_request is longer than 4096 characters")]
    TooLong,
    #[error("the signed_request is not <signature>.<payload>")]
    Malformed,
    #[error("a part of the signed_request is not base64url")]
    BadBase64,
    #[error("the signature of the signed_request does not match its payload")]
    BadSignature,
    #[error("the payload of the signed_request is not a JSON object")]
    NotJson,
    #[error("the algorithm of the signed_request is not HMAC-SHA256")]
    WrongAlgorithm,
    #[error("the payload of the signed_request has no valid user_id")]
    MissingUserId,
    #[error("the payload of the signed_request has no valid issued_at")]
    MissingIssuedAt,
    #[error("the signed_request was issued more than an hour ago or has expired")]
    Expired,
    #[error("the signed_request was issued in the future")]
    IssuedInTheFuture,
}

impl SignedRequestError {
    /// A snake_case name of the rule, for metrics and logs.
    pub fn rule(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::TooLong => "too_long",
            Self::Malformed => "malformed",
            Self::BadBase64 => "bad_base64",
            Self::BadSignature => "bad_signature",
            Self::NotJson => "not_json",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::MissingUserId => "missing_user_id",
            Self::MissingIssuedAt => "missing_issued_at",
            Self::Expired => "expired",
            Self::IssuedInTheFuture => "issued_in_the_future",
        }
    }
}

/// A verified deletion request: who asks, and when Meta issued the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRequest {
    pub user: AppScopedUserId,
    pub issued_at: Timestamp,
}

/// Checks `raw` under `secret` at `now` (see the module documentation for the rules).
///
/// # Errors
/// The first rule `raw` breaks.
pub fn verify(
    secret: &[u8],
    raw: &str,
    now: Timestamp,
) -> Result<DeletionRequest, SignedRequestError> {
    if raw.len() > MAX_LEN {
        return Err(SignedRequestError::TooLong);
    }
    let (signature, payload) = raw
        .trim()
        .split_once('.')
        .filter(|(s, p)| !s.is_empty() && !p.is_empty())
        .ok_or(SignedRequestError::Malformed)?;
    let given = URL_SAFE_ANY_PADDING
        .decode(signature)
        .map_err(|_| SignedRequestError::BadBase64)?;
    let decoded = URL_SAFE_ANY_PADDING
        .decode(payload)
        .map_err(|_| SignedRequestError::BadBase64)?;
    let expected = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, secret),
        payload.as_bytes(),
    );
    if !constant_time_eq(expected.as_ref(), &given) {
        return Err(SignedRequestError::BadSignature);
    }
    let serde_json::Value::Object(fields) =
        serde_json::from_slice(&decoded).map_err(|_| SignedRequestError::NotJson)?
    else {
        return Err(SignedRequestError::NotJson);
    };
    if fields.get("algorithm").and_then(|a| a.as_str()) != Some(ALGORITHM) {
        return Err(SignedRequestError::WrongAlgorithm);
    }
    let user = number_or_digits(fields.get("user_id"))
        .and_then(|id| AppScopedUserId::parse(&id).ok())
        .ok_or(SignedRequestError::MissingUserId)?;
    let issued_at = number_or_digits(fields.get("issued_at"))
        .and_then(|s| s.parse::<i64>().ok())
        .map(Timestamp::from_secs)
        .ok_or(SignedRequestError::MissingIssuedAt)?;
    if issued_at.secs() < now.secs() - MAX_AGE_SECS {
        return Err(SignedRequestError::Expired);
    }
    if issued_at.secs() > now.secs() + MAX_SKEW_SECS {
        return Err(SignedRequestError::IssuedInTheFuture);
    }
    // 0 or absent: Meta sets no expiry.
    let expires = number_or_digits(fields.get("expires")).and_then(|s| s.parse::<i64>().ok());
    if expires.is_some_and(|e| e > 0 && e < now.secs()) {
        return Err(SignedRequestError::Expired);
    }
    Ok(DeletionRequest { user, issued_at })
}

/// Meta writes ids and times as numbers; some documents show them as strings. Either, as digits.
fn number_or_digits(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        serde_json::Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        _ => None,
    }
}

/// The `signed_request` Meta would send for `payload` (tests and local tooling): both parts base64url
/// without padding.
pub fn sign(secret: &[u8], payload: &serde_json::Value) -> String {
    let payload = URL_SAFE_ANY_PADDING.encode(payload.to_string());
    sign_encoded(secret, &payload)
}

/// The `signed_request` for an already encoded payload part (tests build odd encodings with it).
pub fn sign_encoded(secret: &[u8], payload_part: &str) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, secret),
        payload_part.as_bytes(),
    );
    format!("{}.{payload_part}", URL_SAFE_ANY_PADDING.encode(tag))
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"meta-app-secret";
    const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);
    const ASID: &str = "10158123456789012";

    fn payload() -> serde_json::Value {
        json!({ "algorithm": "HMAC-SHA256", "expires": 0, "issued_at": NOW.secs(), "user_id": ASID })
    }

    fn signed(payload: &serde_json::Value) -> String {
        sign(SECRET, payload)
    }

    fn err(raw: &str) -> SignedRequestError {
        match verify(SECRET, raw, NOW) {
            Ok(_) => panic!("must be refused"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_request_signed_like_meta_signs_it_verifies_and_names_the_user() {
        let request = verify(SECRET, &signed(&payload()), NOW).expect("verifies");
        assert_eq!(request.user.expose(), ASID);
        assert_eq!(request.issued_at, NOW);
        // Numbers or digit strings, as documents disagree.
        let mut p = payload();
        p["user_id"] = json!(10_158_123_456_789_012_u64);
        p["issued_at"] = json!(NOW.secs().to_string());
        assert!(verify(SECRET, &signed(&p), NOW).is_ok());
    }

    #[test]
    fn a_tampered_payload_or_signature_is_refused() {
        let good = signed(&payload());
        let (sig, body) = good.split_once('.').expect("two parts");
        let mut other = payload();
        other["user_id"] = json!("10158999999999999");
        let other_body = URL_SAFE_ANY_PADDING.encode(other.to_string());
        assert_eq!(
            err(&format!("{sig}.{other_body}")),
            SignedRequestError::BadSignature
        );
        // One signature byte flipped.
        let mut tag = URL_SAFE_ANY_PADDING.decode(sig).expect("base64");
        tag[0] ^= 1;
        let flipped = URL_SAFE_ANY_PADDING.encode(&tag);
        assert_eq!(
            err(&format!("{flipped}.{body}")),
            SignedRequestError::BadSignature
        );
        // A truncated signature, and a signature under another secret.
        assert_eq!(
            err(&format!("{}.{body}", &sig[..20])),
            SignedRequestError::BadSignature
        );
        assert_eq!(
            err(&sign(b"another-secret", &payload())),
            SignedRequestError::BadSignature
        );
    }

    #[test]
    fn another_algorithm_or_none_is_refused_even_when_correctly_signed() {
        for algorithm in [
            json!("HMAC-SHA1"),
            json!("none"),
            json!("hmac-sha256"),
            json!(null),
        ] {
            let mut p = payload();
            p["algorithm"] = algorithm;
            assert_eq!(err(&signed(&p)), SignedRequestError::WrongAlgorithm);
        }
        let mut p = payload();
        p.as_object_mut().expect("object").remove("algorithm");
        assert_eq!(err(&signed(&p)), SignedRequestError::WrongAlgorithm);
    }

    #[test]
    fn an_old_an_expired_or_a_future_request_is_refused_and_the_bounds_hold() {
        let at = |secs: i64| {
            let mut p = payload();
            p["issued_at"] = json!(secs);
            signed(&p)
        };
        assert!(verify(SECRET, &at(NOW.secs() - MAX_AGE_SECS), NOW).is_ok());
        assert_eq!(
            err(&at(NOW.secs() - MAX_AGE_SECS - 1)),
            SignedRequestError::Expired
        );
        assert!(verify(SECRET, &at(NOW.secs() + MAX_SKEW_SECS), NOW).is_ok());
        assert_eq!(
            err(&at(NOW.secs() + MAX_SKEW_SECS + 1)),
            SignedRequestError::IssuedInTheFuture
        );
        let mut p = payload();
        p["expires"] = json!(NOW.secs() - 1);
        assert_eq!(err(&signed(&p)), SignedRequestError::Expired);
        p["expires"] = json!(NOW.secs() + 60);
        assert!(verify(SECRET, &signed(&p), NOW).is_ok());
    }

    #[test]
    fn bad_base64_in_either_part_is_refused() {
        let good = signed(&payload());
        let (sig, body) = good.split_once('.').expect("two parts");
        assert_eq!(
            err(&format!("{sig}!.{body}")),
            SignedRequestError::BadBase64
        );
        assert_eq!(
            err(&format!("{sig}.{body}*")),
            SignedRequestError::BadBase64
        );
        // The standard alphabet is not base64url.
        let standard_sig = STANDARD.encode(URL_SAFE_ANY_PADDING.decode(sig).expect("b64"));
        if standard_sig.contains(['+', '/']) {
            assert_eq!(
                err(&format!("{standard_sig}.{body}")),
                SignedRequestError::BadBase64
            );
        }
        assert_eq!(
            err(&format!("{sig}.{body}=x")),
            SignedRequestError::BadBase64
        );
    }

    #[test]
    fn padding_is_optional_in_both_parts() {
        // A payload whose encoding needs padding (length not a multiple of 3).
        let mut p = payload();
        p["pad"] = json!("x");
        if p.to_string().len().is_multiple_of(3) {
            p["pad"] = json!("xx");
        }
        let json = p.to_string();
        assert!(!json.len().is_multiple_of(3), "the case needs padding");
        for body in [URL_SAFE_ANY_PADDING.encode(&json), URL_SAFE.encode(&json)] {
            let unpadded_sig = sign_encoded(SECRET, &body);
            assert!(
                verify(SECRET, &unpadded_sig, NOW).is_ok(),
                "unpadded signature"
            );
            let (sig, rest) = unpadded_sig.split_once('.').expect("two parts");
            let padded_sig = URL_SAFE.encode(URL_SAFE_ANY_PADDING.decode(sig).expect("b64"));
            assert!(padded_sig.ends_with('='));
            assert!(
                verify(SECRET, &format!("{padded_sig}.{rest}"), NOW).is_ok(),
                "padded signature"
            );
        }
    }

    #[test]
    fn an_oversized_or_shapeless_request_is_refused() {
        let mut p = payload();
        p["filler"] = json!("a".repeat(MAX_LEN));
        assert_eq!(err(&signed(&p)), SignedRequestError::TooLong);
        for shapeless in ["", ".", "abc", "abc.", ".abc"] {
            assert_eq!(
                err(shapeless),
                SignedRequestError::Malformed,
                "{shapeless:?}"
            );
        }
    }

    #[test]
    fn missing_fields_and_non_json_payloads_are_refused() {
        let mut p = payload();
        p.as_object_mut().expect("object").remove("user_id");
        assert_eq!(err(&signed(&p)), SignedRequestError::MissingUserId);
        for bad in [
            json!(""),
            json!("abc"),
            json!(-5),
            json!(1.5),
            json!({"id": 1}),
        ] {
            let mut p = payload();
            p["user_id"] = bad;
            assert_eq!(err(&signed(&p)), SignedRequestError::MissingUserId);
        }
        let mut p = payload();
        p.as_object_mut().expect("object").remove("issued_at");
        assert_eq!(err(&signed(&p)), SignedRequestError::MissingIssuedAt);
        for not_an_object in ["not json", "[1,2]", "\"HMAC-SHA256\"", "null"] {
            let body = URL_SAFE_ANY_PADDING.encode(not_an_object);
            assert_eq!(
                err(&sign_encoded(SECRET, &body)),
                SignedRequestError::NotJson,
                "{not_an_object}"
            );
        }
    }

    #[test]
    fn errors_name_the_rule_and_never_the_input() {
        let mut p = payload();
        p["algorithm"] = json!("HMAC-SHA1");
        let raw = signed(&p);
        let e = err(&raw);
        let shown = format!("{e} {e:?} {}", e.rule());
        assert!(!shown.contains(ASID));
        assert!(!shown.contains(&raw[..10]));
        let ok = verify(SECRET, &signed(&payload()), NOW).expect("verifies");
        assert!(!format!("{ok:?}").contains(ASID));
    }
}
