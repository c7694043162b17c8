//! An email address, normalised once: trimmed and case-folded as a whole (as users expect of sign-in).

use super::{ParseError, redacted_debug};

/// A syntactically plausible email address. Personal: redacted `Debug`, no `Display`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);
redacted_debug!(EmailAddress);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        const FIELD: &str = "email";
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(ParseError::new(FIELD, "must not be empty"));
        }
        if s.len() > 254 {
            return Err(ParseError::new(FIELD, "must be at most 254 characters"));
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
        {
            return Err(ParseError::new(
                FIELD,
                "must not contain spaces, control characters, <, > or ,",
            ));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(ParseError::new(FIELD, "must contain @"));
        };
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(ParseError::new(
                FIELD,
                "must have one local part of 1 to 64 characters",
            ));
        }
        let labels_ok = domain
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
        if !domain.contains('.') || !labels_ok {
            return Err(ParseError::new(FIELD, "must have a domain with a dot"));
        }
        Ok(Self(s))
    }

    /// The normalised address, for sending mail and for sealing. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let a = EmailAddress::parse("  Ana.Lopez@Example.COM ").map(|e| e.expose().to_owned());
        assert_eq!(a, Ok("ana.lopez@example.com".to_owned()));
    }

    #[test]
    fn refuses_without_echoing_the_input() {
        let err = EmailAddress::parse("secret-person-at-nowhere").err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg, "email must contain @");
        for bad in [
            "",
            "a@b",
            "@example.com",
            "a b@example.com",
            "a@-x.com",
            "a@x..com",
        ] {
            assert!(
                EmailAddress::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn debug_is_redacted() {
        let e = EmailAddress::parse("someone@example.com").map(|e| format!("{e:?}"));
        assert_eq!(e, Ok("EmailAddress(<redacted>)".to_owned()));
    }
}
