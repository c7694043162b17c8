//! Opaque identifiers minted by qchat. Not personal: they carry no information about anyone.

use super::ParseError;

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Accepts 1 to 64 characters of `[a-z0-9_-]`, the alphabet of minted ids.
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                if raw.is_empty() || raw.len() > 64 {
                    return Err(ParseError::new($field, "must be 1 to 64 characters"));
                }
                if !raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
                    return Err(ParseError::new($field, "must contain only a-z, 0-9, _ and -"));
                }
                Ok(Self(raw.to_owned()))
            }
            /// A fresh id from the id port.
            pub fn generate(ids: &dyn crate::ids::IdGenerator) -> Self {
                Self(ids.new_id())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

opaque_id!(
    /// An account holder's account.
    AccountId,
    "account_id"
);
opaque_id!(
    /// A lead (one person on one page), never the PSID itself.
    LeadId,
    "lead_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minted_ids_only() {
        assert!(AccountId::parse("abc123_-x").is_ok());
        assert!(AccountId::parse("").is_err());
        assert!(LeadId::parse("ABC").is_err());
        assert!(LeadId::parse("a/b").is_err());
        assert!(LeadId::parse(&"a".repeat(65)).is_err());
    }
}
