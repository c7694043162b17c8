//! Meta's secrets as a port: the app secret (webhook signatures, `appsecret_proof`) and the webhook
//! verify token, read at run time from where they are kept — Secrets Manager in AWS
//! ([`manager::SecretsManagerSource`]), a `secrets.json` file in the data folder locally
//! ([`file::FileSource`]) — and held by a [`MetaSecretCache`] with a bounded lifetime.
//!
//! Why at run time: a value resolved into an environment variable at deploy time is readable by anyone
//! with `lambda:GetFunctionConfiguration` and never changes after a rotation until the next deploy.
//!
//! Invariants: no value is ever printed (redacted `Debug`, no `Display`); errors name the rule that
//! failed, never the content read; a stored document that is not the expected JSON is refused whole.

use secrecy::{ExposeSecret as _, SecretString};

mod cache;
#[cfg(feature = "test-support")]
pub mod conformance;
#[cfg(feature = "local")]
pub mod file;
#[cfg(feature = "secretsmanager")]
pub mod manager;

pub use cache::{MetaSecretCache, SecretCachePolicy};

/// The app secret and the webhook verify token, as one value: they are stored, rotated and read together.
#[derive(Clone)]
pub struct MetaSecrets {
    app_secret: SecretString,
    verify_token: SecretString,
}

impl std::fmt::Debug for MetaSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetaSecrets(<redacted>)")
    }
}

impl MetaSecrets {
    /// Both values must be non-empty.
    ///
    /// # Errors
    /// [`SecretsError::Malformed`] for an empty value.
    pub fn new(app_secret: SecretString, verify_token: SecretString) -> Result<Self, SecretsError> {
        if app_secret.expose_secret().trim().is_empty()
            || verify_token.expose_secret().trim().is_empty()
        {
            return Err(SecretsError::Malformed);
        }
        Ok(Self {
            app_secret,
            verify_token,
        })
    }

    /// Reads the JSON document kept in Secrets Manager: `{"app_secret": "…", "verify_token": "…"}`
    /// (other keys are ignored, so the secret may hold notes or the app id).
    ///
    /// # Errors
    /// [`SecretsError::Malformed`], which never holds the document.
    pub fn from_json(document: &str) -> Result<Self, SecretsError> {
        #[derive(serde::Deserialize)]
        struct Document {
            app_secret: String,
            verify_token: String,
        }
        let parsed: Document =
            serde_json::from_str(document).map_err(|_| SecretsError::Malformed)?;
        Self::new(
            SecretString::from(parsed.app_secret),
            SecretString::from(parsed.verify_token),
        )
    }

    /// The app secret: the HMAC key of `X-Hub-Signature-256` and of `appsecret_proof`.
    pub fn app_secret(&self) -> &SecretString {
        &self.app_secret
    }

    /// The token Meta echoes in the webhook verification handshake.
    pub fn verify_token(&self) -> &SecretString {
        &self.verify_token
    }

    /// Whether both values are the same (after a refresh: did the secret change?).
    pub fn same_as(&self, other: &Self) -> bool {
        self.app_secret.expose_secret() == other.app_secret.expose_secret()
            && self.verify_token.expose_secret() == other.verify_token.expose_secret()
    }
}

/// Why the secrets could not be read. Never holds a value or the stored document.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the Meta secrets are not configured")]
    NotConfigured,
    #[error("the Meta secret does not exist")]
    NotFound,
    #[error(
        "the Meta secret is not a JSON object with non-empty string values app_secret and verify_token"
    )]
    Malformed,
    #[error("the Meta secret could not be read")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where the secrets are kept: read on every call (the [`MetaSecretCache`] decides how often).
#[async_trait::async_trait]
pub trait MetaSecretSource: Send + Sync + std::fmt::Debug {
    async fn fetch(&self) -> Result<MetaSecrets, SecretsError>;
}

/// Fixed values (the `QCHAT_FB_*` variables, or none): what a process without a secret store uses.
#[derive(Debug, Clone)]
pub struct FixedSource(Option<MetaSecrets>);

impl FixedSource {
    pub fn new(secrets: Option<MetaSecrets>) -> Self {
        Self(secrets)
    }

    /// From the configuration's `QCHAT_FB_APP_SECRET` and `QCHAT_FB_VERIFY_TOKEN`; a missing verify token
    /// refuses every handshake (an unguessable value stands in for it).
    pub fn from_config(graph: &crate::config::GraphConfig) -> Self {
        let secrets = graph.app_secret.as_ref().and_then(|app_secret| {
            let verify_token = graph.verify_token.clone().unwrap_or_else(|| {
                SecretString::from(hex::encode(crate::crypto::random_bytes::<32>()))
            });
            MetaSecrets::new(app_secret.clone(), verify_token).ok()
        });
        Self(secrets)
    }
}

#[async_trait::async_trait]
impl MetaSecretSource for FixedSource {
    async fn fetch(&self) -> Result<MetaSecrets, SecretsError> {
        self.0.clone().ok_or(SecretsError::NotConfigured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_read_and_a_malformed_one_is_refused_without_echoing_it() {
        let s = MetaSecrets::from_json(r#"{"app_secret":"a1","verify_token":"v1","app_id":"9"}"#)
            .expect("valid document");
        assert_eq!(s.app_secret().expose_secret(), "a1");
        assert_eq!(s.verify_token().expose_secret(), "v1");
        for bad in [
            r#"{"app_secret":"leak-me-0001"}"#,
            r#"{"app_secret":"leak-me-0001","verify_token":""}"#,
            r#"{"app_secret":"leak-me-0001","verify_token":7}"#,
            "leak-me-0001",
            "[]",
        ] {
            let e = MetaSecrets::from_json(bad).expect_err("refused");
            assert!(matches!(e, SecretsError::Malformed), "{bad}");
            assert!(!format!("{e} {e:?}").contains("leak-me"));
        }
        assert_eq!(format!("{s:?}"), "MetaSecrets(<redacted>)");
    }
}
