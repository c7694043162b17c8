//! The keyring port: makes and unwraps per-owner data keys. KMS in AWS, a local master key file locally.
//!
//! Every data key is bound to an encryption context naming its owner, so a wrapped key copied to another
//! owner's record does not unwrap.

use secrecy::{ExposeSecret, SecretBox};

/// The owner a data key belongs to, e.g. `account:<id>` or `system:blind-index`. Not personal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyContext {
    owner: String,
}

impl KeyContext {
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
        }
    }
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// The encryption context as key/value pairs (KMS `EncryptionContext`, and the local wrap's AAD).
    pub fn pairs(&self) -> [(&'static str, &str); 2] {
        [("app", "qchat"), ("owner", &self.owner)]
    }
}

/// A 256-bit plaintext data key. Zeroed on drop; never printed.
pub struct DataKey(SecretBox<[u8; 32]>);

impl DataKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }
    pub fn expose(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A data key encrypted under the key-encryption key. Safe to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey(pub Vec<u8>);

/// A fresh data key in both forms.
#[derive(Debug)]
pub struct GeneratedKey {
    pub plaintext: DataKey,
    pub wrapped: WrappedKey,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The wrapped key is not valid for this context (tampered, or moved to another owner).
    #[error("the wrapped data key does not unwrap under this context")]
    InvalidWrappedKey,
    /// The key-encryption key cannot be used (disabled, missing, no permission, unreadable key file).
    #[error("the key-encryption key is unavailable: {operation}")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Generates and unwraps data keys.
#[async_trait::async_trait]
pub trait Keyring: Send + Sync + std::fmt::Debug {
    async fn generate_data_key(&self, context: &KeyContext) -> Result<GeneratedKey, KeyringError>;
    async fn decrypt_data_key(
        &self,
        wrapped: &WrappedKey,
        context: &KeyContext,
    ) -> Result<DataKey, KeyringError>;
}
