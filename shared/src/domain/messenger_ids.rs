//! Identifiers Meta gives us: page ids (public), page-scoped user ids and plugin user refs (personal),
//! marketing-messages tokens (personal, secret).

use super::{ParseError, redacted_debug};

fn digits(field: &'static str, raw: &str) -> Result<String, ParseError> {
    if raw.is_empty() || raw.len() > 32 {
        return Err(ParseError::new(field, "must be 1 to 32 digits"));
    }
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new(field, "must contain only digits"));
    }
    Ok(raw.to_owned())
}

/// A Facebook Page id, in its one canonical form: the decimal digits of a positive number, without sign,
/// spaces or leading zeros. Meta writes page ids that way, and the id is a storage key, so `0123` must not
/// become a second page beside `123`. Public business information, not personal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct PageId(String);

impl PageId {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let digits = digits("page_id", raw)?;
        if digits.starts_with('0') {
            return Err(ParseError::new(
                "page_id",
                "must be a positive number without leading zeros",
            ));
        }
        Ok(Self(digits))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A page-scoped user id: identifies one person to one page. Personal.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Psid(String);
redacted_debug!(Psid);

impl Psid {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        digits("psid", raw).map(Self)
    }
    /// For the Send API and for sealing. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// An app-scoped user id (ASID): identifies one person to the Meta app, as Meta's data-deletion callback
/// names them; not a PSID (MESSENGER.md §4). Personal.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AppScopedUserId(String);
redacted_debug!(AppScopedUserId);

impl AppScopedUserId {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        digits("user_id", raw).map(Self)
    }
    /// For the Graph API call and for sealing. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The `user_ref` of the checkbox and chat plugins: a one-off reference to a person. Personal.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserRef(String);
redacted_debug!(UserRef);

impl UserRef {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.is_empty() || raw.len() > 256 {
            return Err(ParseError::new("user_ref", "must be 1 to 256 characters"));
        }
        if raw.chars().any(char::is_control) {
            return Err(ParseError::new(
                "user_ref",
                "must not contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A marketing-messages (`notification_messages`) token: lets the page message one person. Personal, secret.
#[derive(Clone, PartialEq, Eq)]
pub struct NotificationToken(String);
redacted_debug!(NotificationToken);

impl NotificationToken {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.is_empty() || raw.len() > 1024 {
            return Err(ParseError::new(
                "notification_messages_token",
                "must be 1 to 1024 characters",
            ));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ParseError::new(
                "notification_messages_token",
                "must not contain spaces",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psid_and_page_id_are_digits() {
        assert!(Psid::parse("1234567890123456").is_ok());
        assert!(Psid::parse("12ab").is_err());
        assert!(PageId::parse("").is_err());
        assert_eq!(format!("{:?}", Psid::parse("42")), "Ok(Psid(<redacted>))");
    }

    #[test]
    fn a_page_id_has_one_canonical_form_only() {
        let canonical = format!("1{}", "0".repeat(31));
        for ok in ["1", "123", "104000000000001", canonical.as_str()] {
            assert_eq!(
                PageId::parse(ok).map(|p| p.as_str().to_owned()),
                Ok(ok.to_owned())
            );
        }
        let too_long = "1".repeat(33);
        for bad in [
            "0",
            "00",
            "0123",
            "+123",
            "-123",
            " 123",
            "123 ",
            "1e3",
            "1_000",
            "12.0",
            "0x1f",
            "١٢٣",
            "１２３",
            "",
            too_long.as_str(),
        ] {
            let refused = PageId::parse(bad);
            assert!(refused.is_err(), "{bad:?} is refused");
            let shown = refused.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                shown.starts_with("page_id "),
                "the rule, not the input: {shown}"
            );
        }
    }
}
