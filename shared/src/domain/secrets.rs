//! Secrets held only briefly in memory: passwords, session tokens, page access tokens. Wrapped in
//! `secrecy` so they are zeroed on drop and never printed.

use secrecy::{ExposeSecret, SecretString};

use super::ParseError;

/// A password as typed. Checked against policy where it is set, not here (sign-in accepts any length).
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.is_empty() {
            return Err(ParseError::new("password", "must not be empty"));
        }
        if raw.len() > 1024 {
            return Err(ParseError::new("password", "must be at most 1024 bytes"));
        }
        Ok(Self(SecretString::from(raw)))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Declares a secret token of 256 random bits, written as 43 base64url characters and stored only as its
/// SHA-256.
macro_rules! random_token {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// A fresh token from the CSPRNG.
            pub fn generate() -> Self {
                use base64::Engine as _;
                let bytes = crate::crypto::random_bytes::<32>();
                Self(SecretString::from(
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
                ))
            }
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                let ok = raw.len() == 43
                    && raw
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(ParseError::new($what, "must be 43 base64url characters"));
                }
                Ok(Self(SecretString::from(raw)))
            }
            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }
            /// What the store keeps of the token.
            pub fn hash(&self) -> crate::crypto::OneWayHash {
                crate::crypto::OneWayHash::sha256_of(self.expose().as_bytes())
            }
        }
    };
}

random_token!(
    /// A session bearer token.
    SessionToken,
    "session token"
);

random_token!(
    /// The token of a single-use link mailed to an address: confirming an address, resetting a password.
    LinkToken,
    "link token"
);

/// A Facebook Page access token. Secret: sealed at rest, sent only to the Graph API.
#[derive(Debug, Clone)]
pub struct PageAccessToken(SecretString);

impl PageAccessToken {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        if raw.len() < 16 || raw.len() > 2048 {
            return Err(ParseError::new(
                "page_access_token",
                "must be 16 to 2048 characters",
            ));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError::new(
                "page_access_token",
                "must be printable ASCII without spaces",
            ));
        }
        Ok(Self(SecretString::from(raw)))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_tokens_are_43_chars_and_round_trip() {
        let t = SessionToken::generate();
        assert_eq!(t.expose().len(), 43);
        assert!(SessionToken::parse(t.expose()).is_ok());
        assert!(SessionToken::parse("short").is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let p = Password::parse("correct horse battery staple").map(|p| format!("{p:?}"));
        assert!(p.is_ok_and(|s| !s.contains("horse")));
    }
}
