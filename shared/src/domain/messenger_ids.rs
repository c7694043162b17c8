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

/// A Facebook Page id. Public business information, not personal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct PageId(String);

impl PageId {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        digits("page_id", raw).map(Self)
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
}
