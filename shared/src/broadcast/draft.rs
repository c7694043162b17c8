//! What an account holder composes: a broadcast's message, its send time and its audience, checked
//! against Meta's limits and qchat's rules when the compose request is parsed ([`parse_draft`]), so the
//! sender only ever sees a valid [`Draft`] — one the messenger port will accept once the sender has added
//! its footer. The limits are the messenger port's and the sender's ([`max_text_units`]), not copies.
//! Every refusal names the rule it broke and never repeats what was sent.

use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::http::{ApiError, StatusCode};

/// A URL button under the message (Meta: at most 3 buttons, title at most 20 characters, an `https` URL).
#[derive(Clone, PartialEq, Eq)]
pub struct UrlButton {
    pub title: String,
    pub url: String,
}

// The account's content: kept out of logs like every other value of the account.
impl std::fmt::Debug for UrlButton {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlButton(<redacted>)")
    }
}

/// Which of the page's leads a broadcast is for, before the per-lead rules of the sender apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    /// Only leads whose opt-in `ref` is one of these (empty: every lead).
    pub refs: Vec<String>,
    /// Only leads subscribed at or after this time.
    pub subscribed_since: Option<Timestamp>,
}

/// A broadcast as composed: valid text (room left for the unsubscribe footer), buttons, when, to whom.
#[derive(Clone, PartialEq, Eq)]
pub struct Draft {
    pub text: String,
    pub buttons: Vec<UrlButton>,
    pub send_at: Timestamp,
    pub audience: Audience,
}

impl std::fmt::Debug for Draft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Draft")
            .field("text", &"<redacted>")
            .field("buttons", &self.buttons.len())
            .field("send_at", &self.send_at)
            .field("audience", &self.audience)
            .finish()
    }
}

// ---- Limits -------------------------------------------------------------------------------------------

/// The longest text of a draft, in UTF-16 units as Meta counts them: the Send API's limit (the button
/// template's when there are buttons) less the room the sender keeps for its footer
/// ([`super::sender::FOOTER_RESERVE`]: how to stop, and the person's `/u/{token}` link where it fits).
/// The footer is defined once, by the sender that appends it; this limit follows from it.
pub fn max_text_units(with_buttons: bool) -> usize {
    super::sender::text_limit(with_buttons)
}
/// Meta's button template holds at most 3 buttons.
pub const MAX_BUTTONS: usize = crate::messenger::BUTTONS_MAX;
/// Meta's limit on a button's title (UTF-16 units).
pub const BUTTON_TITLE_MAX: usize = crate::messenger::TITLE_MAX;
/// The longest button URL the messenger port sends.
pub const BUTTON_URL_MAX: usize = crate::messenger::URL_MAX;
/// A `send_at` this far in the past still means "now" (clocks of callers drift).
pub const SEND_AT_SKEW_SECS: i64 = 60;
/// How far ahead a broadcast may be scheduled.
pub const SEND_AT_MAX_DAYS: i64 = 90;
/// The most opt-in refs an audience may name.
pub const MAX_REFS: usize = 50;
/// Meta's limit on an opt-in `ref` (m.me links, plugins).
pub const REF_MAX_CHARS: usize = 250;

/// The fields a compose request may hold.
const DRAFT_FIELDS: &[&str] = &["text", "buttons", "send_at", "audience"];
/// The fields of an audience.
const AUDIENCE_FIELDS: &[&str] = &["refs", "subscribed_since"];
/// The fields of a button.
const BUTTON_FIELDS: &[&str] = &["title", "url"];
/// The fields of a preview request.
const PREVIEW_FIELDS: &[&str] = &["audience"];

// ---- Errors -------------------------------------------------------------------------------------------

/// Why a compose (or preview) request was refused: the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DraftError {
    /// 400 when the request is not shaped as the route takes it; 422 when it is, but breaks a rule.
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl DraftError {
    fn shape(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }
    fn rule(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message: message.into(),
        }
    }
    fn wrong_type(field: &str, expected: &str) -> Self {
        Self::shape("invalid_field", format!("{field} must be {expected}"))
    }
    fn unknown_field(place: &str, allowed: &[&str]) -> Self {
        Self::shape(
            "unknown_field",
            format!("{place} may hold only {}", allowed.join(", ")),
        )
    }
}

impl From<DraftError> for ApiError {
    fn from(e: DraftError) -> Self {
        ApiError::new(e.status, e.code, e.message)
    }
}

// ---- Parsing ------------------------------------------------------------------------------------------

/// The body as a JSON object with only `allowed` fields.
fn object<'a>(
    value: &'a Value,
    place: &str,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, DraftError> {
    let map = value
        .as_object()
        .ok_or_else(|| DraftError::wrong_type(place, "a JSON object"))?;
    if map.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(DraftError::unknown_field(place, allowed));
    }
    Ok(map)
}

fn body_object(body: &[u8]) -> Result<Value, DraftError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| DraftError::shape("invalid_json", "the request body is not valid JSON"))?;
    if !value.is_object() {
        return Err(DraftError::shape(
            "invalid_json",
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// A present, non-null field of `map`.
fn field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).filter(|v| !v.is_null())
}

/// The UTF-16 length: Meta's Graph API counts text in UTF-16 code units, so an emoji outside the Basic
/// Multilingual Plane counts twice. Counting the same way keeps every accepted text inside Meta's limit.
fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

fn parse_text(value: Option<&Value>, max: usize, with_buttons: bool) -> Result<String, DraftError> {
    let raw = match value {
        None => {
            return Err(DraftError::shape(
                "missing_field",
                "the field text is required",
            ));
        }
        Some(Value::String(s)) => s,
        Some(_) => return Err(DraftError::wrong_type("text", "a string")),
    };
    let too_long = || {
        let why = if with_buttons {
            "with buttons (Meta's button template holds 640, less room for qchat's unsubscribe footer)"
        } else {
            "(Meta's limit of 2000, less room for qchat's unsubscribe footer)"
        };
        DraftError::rule(
            "text_too_long",
            format!("text must be at most {max} characters {why}; an emoji may count as two"),
        )
    };
    let text = crate::text::display_text(raw, max).map_err(|p| match p {
        crate::text::TextProblem::TooLong(_) => too_long(),
        other => DraftError::rule("invalid_text", format!("text {other}")),
    })?;
    if utf16_len(&text) > max {
        return Err(too_long());
    }
    Ok(text)
}

/// An absolute `https` URL with a host and no user name or password in it.
fn parse_button_url(raw: &str) -> Result<String, DraftError> {
    let refused = || {
        DraftError::rule(
            "invalid_button_url",
            format!(
                "each button's url must be an absolute https URL of at most {BUTTON_URL_MAX} characters, without user name or password (percent-encode anything outside ASCII)"
            ),
        )
    };
    if raw.len() > BUTTON_URL_MAX || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refused());
    }
    let uri: http::Uri = raw.parse().map_err(|_| refused())?;
    let authority = uri.authority().ok_or_else(refused)?;
    if uri.scheme_str() != Some("https")
        || authority.host().is_empty()
        || authority.as_str().contains('@')
    {
        return Err(refused());
    }
    Ok(raw.to_owned())
}

fn parse_buttons(value: Option<&Value>) -> Result<Vec<UrlButton>, DraftError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let list = value
        .as_array()
        .ok_or_else(|| DraftError::wrong_type("buttons", "a list of {title, url} objects"))?;
    if list.len() > MAX_BUTTONS {
        return Err(DraftError::rule(
            "too_many_buttons",
            format!("a broadcast has at most {MAX_BUTTONS} buttons"),
        ));
    }
    list.iter()
        .map(|b| {
            let b = object(b, "a button", BUTTON_FIELDS)?;
            let title = match field(b, "title") {
                Some(Value::String(s)) => s,
                None => {
                    return Err(DraftError::shape(
                        "missing_field",
                        "each button needs a title",
                    ));
                }
                Some(_) => return Err(DraftError::wrong_type("a button's title", "a string")),
            };
            let title = crate::text::display_name(title, BUTTON_TITLE_MAX)
                .map_err(|p| {
                    DraftError::rule("invalid_button_title", format!("each button's title {p}"))
                })
                .and_then(|t| {
                    (utf16_len(&t) <= BUTTON_TITLE_MAX).then_some(t).ok_or_else(|| {
                        DraftError::rule(
                            "invalid_button_title",
                            format!(
                                "each button's title must be at most {BUTTON_TITLE_MAX} characters; an emoji may count as two"
                            ),
                        )
                    })
                })?;
            let url = match field(b, "url") {
                Some(Value::String(s)) => parse_button_url(s)?,
                None => {
                    return Err(DraftError::shape(
                        "missing_field",
                        "each button needs a url",
                    ));
                }
                Some(_) => return Err(DraftError::wrong_type("a button's url", "a string")),
            };
            Ok(UrlButton { title, url })
        })
        .collect()
}

/// An RFC 3339 date-time, with `Z` or an offset.
fn parse_time(value: &Value, field_name: &'static str) -> Result<Timestamp, DraftError> {
    let malformed = || {
        DraftError::shape(
            "invalid_time",
            format!("{field_name} must be an RFC 3339 date-time such as 2026-12-24T09:00:00Z"),
        )
    };
    let raw = value.as_str().ok_or_else(malformed)?;
    let parsed = aws_smithy_types::DateTime::from_str(
        raw,
        aws_smithy_types::date_time::Format::DateTimeWithOffset,
    )
    .map_err(|_| malformed())?;
    let millis = parsed.to_millis().map_err(|_| malformed())?;
    Ok(Timestamp::from_millis(millis))
}

fn parse_send_at(value: Option<&Value>, now: Timestamp) -> Result<Timestamp, DraftError> {
    let Some(value) = value else {
        return Ok(now);
    };
    let at = parse_time(value, "send_at")?;
    if at < now.plus_secs(-SEND_AT_SKEW_SECS) {
        return Err(DraftError::rule(
            "send_at_in_past",
            "send_at must not be in the past (leave it out to send now)",
        ));
    }
    if at > now.plus_days(SEND_AT_MAX_DAYS) {
        return Err(DraftError::rule(
            "send_at_too_far",
            format!("send_at must be at most {SEND_AT_MAX_DAYS} days ahead"),
        ));
    }
    // A time within the allowed skew means now: the sender never sees a send time already past.
    Ok(at.max(now))
}

/// Meta's `ref` alphabet (m.me links and plugins): letters, digits and `+ / = - . : _`.
fn is_ref_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '.' | ':' | '_')
}

/// Parses an audience filter; absent or `null` is every lead of the page.
pub fn parse_audience(value: Option<&Value>) -> Result<Audience, DraftError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Audience::default());
    };
    let map = object(value, "audience", AUDIENCE_FIELDS)?;
    let mut refs = Vec::new();
    if let Some(list) = field(map, "refs") {
        let list = list
            .as_array()
            .ok_or_else(|| DraftError::wrong_type("audience.refs", "a list of strings"))?;
        if list.len() > MAX_REFS {
            return Err(DraftError::rule(
                "too_many_refs",
                format!("audience.refs names at most {MAX_REFS} refs"),
            ));
        }
        for r in list {
            let r = r
                .as_str()
                .ok_or_else(|| DraftError::wrong_type("audience.refs", "a list of strings"))?;
            if r.is_empty() || r.len() > REF_MAX_CHARS || !r.chars().all(is_ref_char) {
                return Err(DraftError::rule(
                    "invalid_ref",
                    format!(
                        "each ref must be 1 to {REF_MAX_CHARS} characters of a-z, A-Z, 0-9 and + / = - . : _"
                    ),
                ));
            }
            if !refs.iter().any(|known: &String| known == r) {
                refs.push(r.to_owned());
            }
        }
    }
    let subscribed_since = field(map, "subscribed_since")
        .map(|v| parse_time(v, "audience.subscribed_since"))
        .transpose()?;
    Ok(Audience {
        refs,
        subscribed_since,
    })
}

/// Parses a compose request (`POST /api/pages/{page_id}/broadcasts`) at `now`: `text` (required), up to
/// [`MAX_BUTTONS`] URL `buttons`, `send_at` (absent: now) and an `audience`. Unknown fields are refused.
///
/// # Errors
/// The first rule the request breaks.
pub fn parse_draft(body: &[u8], now: Timestamp) -> Result<Draft, DraftError> {
    let value = body_object(body)?;
    let map = object(&value, "the request body", DRAFT_FIELDS)?;
    let buttons = parse_buttons(field(map, "buttons"))?;
    let max = max_text_units(!buttons.is_empty());
    let text = parse_text(field(map, "text"), max, !buttons.is_empty())?;
    let send_at = parse_send_at(field(map, "send_at"), now)?;
    let audience = parse_audience(field(map, "audience"))?;
    if audience
        .subscribed_since
        .is_some_and(|since| since > send_at)
    {
        return Err(DraftError::rule(
            "subscribed_since_after_send_at",
            "audience.subscribed_since must not be after send_at (nobody could be in the audience)",
        ));
    }
    Ok(Draft {
        text,
        buttons,
        send_at,
        audience,
    })
}

/// Parses a preview request (`POST /api/pages/{page_id}/broadcasts/preview`): `{"audience": {..}}`, or
/// `{}` for every lead of the page.
///
/// # Errors
/// The first rule the request breaks.
pub fn parse_preview(body: &[u8]) -> Result<Audience, DraftError> {
    let value = body_object(body)?;
    let map = object(&value, "the request body", PREVIEW_FIELDS)?;
    parse_audience(field(map, "audience"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_793_011_200_000); // 2026-10-26T10:40:00Z

    fn parse(body: &Value) -> Result<Draft, DraftError> {
        parse_draft(body.to_string().as_bytes(), NOW)
    }

    fn refused(body: &Value) -> (u16, &'static str, String) {
        let e = parse(body).expect_err("refused");
        (e.status.as_u16(), e.code, e.message)
    }

    #[test]
    fn the_limits_leave_the_senders_footer_room_within_metas() {
        use crate::broadcast::sender::FOOTER_RESERVE;
        use crate::messenger::{BUTTON_TEXT_MAX, TEXT_MAX};
        assert_eq!(max_text_units(false) + FOOTER_RESERVE, TEXT_MAX);
        assert_eq!(max_text_units(true) + FOOTER_RESERVE, BUTTON_TEXT_MAX);
    }

    #[test]
    fn a_minimal_draft_is_sent_now_to_every_lead() {
        let d = parse(&serde_json::json!({ "text": "  Fresh bread at 7!\n" })).expect("valid");
        assert_eq!(d.text, "Fresh bread at 7!");
        assert!(d.buttons.is_empty());
        assert_eq!(d.send_at, NOW);
        assert_eq!(d.audience, Audience::default());
    }

    #[test]
    fn a_full_draft_keeps_buttons_time_and_audience() {
        let d = parse(&serde_json::json!({
            "text": "Sale",
            "buttons": [{ "title": "Shop", "url": "https://shop.example/sale?x=1" }],
            "send_at": "2026-10-27T12:40:00+02:00",
            "audience": { "refs": ["spring-ad", "spring-ad", "qr:door"], "subscribed_since": "2026-01-01T00:00:00Z" },
        }))
        .expect("valid");
        assert_eq!(d.buttons[0].title, "Shop");
        assert_eq!(d.send_at, NOW.plus_hours(24));
        assert_eq!(d.audience.refs, ["spring-ad", "qr:door"]);
        assert_eq!(
            d.audience.subscribed_since,
            Some(Timestamp::from_millis(1_767_225_600_000))
        );
    }

    #[test]
    fn text_length_is_counted_as_meta_counts_it() {
        assert!(parse(&serde_json::json!({ "text": "é".repeat(max_text_units(false)) })).is_ok());
        let (status, code, _) =
            refused(&serde_json::json!({ "text": "é".repeat(max_text_units(false) + 1) }));
        assert_eq!((status, code), (422, "text_too_long"));
        // Each of these emoji is two UTF-16 units.
        let (_, code, _) =
            refused(&serde_json::json!({ "text": "🥐".repeat(max_text_units(false) / 2 + 1) }));
        assert_eq!(code, "text_too_long");
        let with_button = |n: usize| serde_json::json!({ "text": "a".repeat(n), "buttons": [{ "title": "Go", "url": "https://a.example" }] });
        assert!(parse(&with_button(max_text_units(true))).is_ok());
        let title = |t: &str| {
            parse(&serde_json::json!({ "text": "x", "buttons": [{ "title": t, "url": "https://a.example" }] }))
                .map(|d| d.buttons[0].title.clone())
        };
        assert_eq!(
            title(&"🥐".repeat(10)).as_deref(),
            Ok("🥐".repeat(10).as_str())
        );
        assert_eq!(
            title(&"🥐".repeat(11)).map_err(|e| e.code),
            Err("invalid_button_title")
        );
        assert_eq!(
            refused(&with_button(max_text_units(true) + 1)).1,
            "text_too_long"
        );
    }

    #[test]
    fn every_refusal_names_its_rule_and_never_the_value() {
        let secret = "SECRET-VALUE-42";
        let cases = [
            (serde_json::json!({}), 400, "missing_field"),
            (serde_json::json!({ "text": 42 }), 400, "invalid_field"),
            (
                serde_json::json!({ "text": secret, secret: 1 }),
                400,
                "unknown_field",
            ),
            (
                serde_json::json!({ "text": " \u{200B} " }),
                422,
                "invalid_text",
            ),
            (
                serde_json::json!({ "text": format!("{secret}\u{202E}") }),
                422,
                "invalid_text",
            ),
            (
                serde_json::json!({ "text": "x", "buttons": {} }),
                400,
                "invalid_field",
            ),
            (
                serde_json::json!({ "text": "x", "buttons": vec![serde_json::json!({ "title": "a", "url": "https://a.example" }); 4] }),
                422,
                "too_many_buttons",
            ),
            (
                serde_json::json!({ "text": "x", "buttons": [{ "url": "https://a.example" }] }),
                400,
                "missing_field",
            ),
            (
                serde_json::json!({ "text": "x", "buttons": [{ "title": "a", "url": "https://a.example", secret: 1 }] }),
                400,
                "unknown_field",
            ),
            (
                serde_json::json!({ "text": "x", "buttons": [{ "title": format!("{secret}{secret}"), "url": "https://a.example" }] }),
                422,
                "invalid_button_title",
            ),
            (
                serde_json::json!({ "text": "x", "buttons": [{ "title": "a", "url": format!("http://{secret}.example") }] }),
                422,
                "invalid_button_url",
            ),
            (
                serde_json::json!({ "text": "x", "buttons": [{ "title": "a", "url": format!("https://{secret}@a.example") }] }),
                422,
                "invalid_button_url",
            ),
            (
                serde_json::json!({ "text": "x", "buttons": [{ "title": "a", "url": format!("javascript:{secret}") }] }),
                422,
                "invalid_button_url",
            ),
            (
                serde_json::json!({ "text": "x", "send_at": secret }),
                400,
                "invalid_time",
            ),
            (
                serde_json::json!({ "text": "x", "send_at": "2026-10-26 10:40:00Z" }),
                400,
                "invalid_time",
            ),
            (
                serde_json::json!({ "text": "x", "send_at": "2026-10-26T10:38:59Z" }),
                422,
                "send_at_in_past",
            ),
            (
                serde_json::json!({ "text": "x", "send_at": "2027-01-24T10:40:01Z" }),
                422,
                "send_at_too_far",
            ),
            (
                serde_json::json!({ "text": "x", "audience": [] }),
                400,
                "invalid_field",
            ),
            (
                serde_json::json!({ "text": "x", "audience": { secret: 1 } }),
                400,
                "unknown_field",
            ),
            (
                serde_json::json!({ "text": "x", "audience": { "refs": [format!("{secret} x")] } }),
                422,
                "invalid_ref",
            ),
            (
                serde_json::json!({ "text": "x", "audience": { "refs": [""] } }),
                422,
                "invalid_ref",
            ),
            (
                serde_json::json!({ "text": "x", "audience": { "refs": vec!["a"; 51] } }),
                422,
                "too_many_refs",
            ),
            (
                serde_json::json!({ "text": "x", "audience": { "subscribed_since": secret } }),
                400,
                "invalid_time",
            ),
            (
                serde_json::json!({ "text": "x", "audience": { "subscribed_since": "2026-10-26T11:00:00Z" } }),
                422,
                "subscribed_since_after_send_at",
            ),
        ];
        for (body, status, code) in cases {
            let e = parse(&body).expect_err("refused");
            assert_eq!((e.status.as_u16(), e.code), (status, code), "{body}");
            assert!(!e.message.contains(secret), "{body}: {}", e.message);
            assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn a_send_at_within_the_skew_means_now_and_the_limits_are_inclusive() {
        let at =
            |s: &str| parse(&serde_json::json!({ "text": "x", "send_at": s })).map(|d| d.send_at);
        assert_eq!(at("2026-10-26T10:39:00Z"), Ok(NOW));
        assert_eq!(at("2027-01-24T10:40:00Z"), Ok(NOW.plus_days(90)));
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused() {
        for body in ["[]", "1", "{", ""] {
            let e = parse_draft(body.as_bytes(), NOW).expect_err("refused");
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid_json"), "{body}");
        }
    }

    #[test]
    fn a_preview_takes_only_an_audience() {
        assert_eq!(parse_preview(b"{}"), Ok(Audience::default()));
        let a = parse_preview(br#"{"audience":{"refs":["a"]}}"#).expect("valid");
        assert_eq!(a.refs, ["a"]);
        let e = parse_preview(br#"{"text":"x"}"#).expect_err("refused");
        assert_eq!(e.code, "unknown_field");
    }
}
