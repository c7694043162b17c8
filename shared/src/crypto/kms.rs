//! The AWS keyring: data keys made by KMS `GenerateDataKey` (AES-256) and unwrapped by `Decrypt`, both
//! under the encryption context of [`KeyContext::pairs`], so a wrapped key moved to another owner does not
//! unwrap (and CloudTrail records which owner each call was for).
//!
//! Errors: a ciphertext KMS rejects as invalid for this key and context maps to
//! [`KeyringError::InvalidWrappedKey`]; everything else (throttling, disabled key, no permission, network)
//! to [`KeyringError::Unavailable`], keeping the SDK error as its source.

use std::collections::HashMap;

use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use secrecy::zeroize::Zeroize as _;

use super::keyring::{DataKey, GeneratedKey, KeyContext, Keyring, KeyringError, WrappedKey};

/// A KMS answer that does not have the shape the API promises.
#[derive(Debug, thiserror::Error)]
pub enum KmsResponseError {
    #[error("KMS returned no {0}")]
    Missing(&'static str),
    #[error("KMS returned a data key of {0} bytes, not 32")]
    WrongKeyLength(usize),
}

/// Data keys from AWS KMS under one KMS key.
#[derive(Debug, Clone)]
pub struct KmsKeyring {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsKeyring {
    /// `key_id`: the KMS key's id, ARN, or alias (`alias/...`).
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }
}

fn encryption_context(context: &KeyContext) -> HashMap<String, String> {
    context
        .pairs()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn unavailable(
    operation: &'static str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> KeyringError {
    KeyringError::Unavailable {
        operation,
        source: Box::new(source),
    }
}

/// Takes the plaintext key out of an SDK blob and wipes the SDK's copy.
fn into_data_key(blob: Option<Blob>, operation: &'static str) -> Result<DataKey, KeyringError> {
    let mut bytes = blob
        .ok_or_else(|| unavailable(operation, KmsResponseError::Missing("plaintext key")))?
        .into_inner();
    let result = <[u8; 32]>::try_from(bytes.as_slice())
        .map(DataKey::from_bytes)
        .map_err(|_| unavailable(operation, KmsResponseError::WrongKeyLength(bytes.len())));
    bytes.zeroize();
    result
}

#[async_trait::async_trait]
impl Keyring for KmsKeyring {
    #[tracing::instrument(skip_all, fields(owner = context.owner()))]
    async fn generate_data_key(&self, context: &KeyContext) -> Result<GeneratedKey, KeyringError> {
        const OP: &str = "kms:GenerateDataKey";
        let mut out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(encryption_context(context)))
            .send()
            .await
            .map_err(|e| unavailable(OP, e))?;
        let wrapped = out
            .ciphertext_blob
            .take()
            .ok_or_else(|| unavailable(OP, KmsResponseError::Missing("ciphertext blob")))?
            .into_inner();
        let plaintext = into_data_key(out.plaintext.take(), OP)?;
        Ok(GeneratedKey {
            plaintext,
            wrapped: WrappedKey(wrapped),
        })
    }

    #[tracing::instrument(skip_all, fields(owner = context.owner()))]
    async fn decrypt_data_key(
        &self,
        wrapped: &WrappedKey,
        context: &KeyContext,
    ) -> Result<DataKey, KeyringError> {
        const OP: &str = "kms:Decrypt";
        let mut out = self
            .client
            .decrypt()
            // Naming the key makes KMS refuse a ciphertext made under any other key (IncorrectKey).
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped.0.clone()))
            .set_encryption_context(Some(encryption_context(context)))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(
                    DecryptError::InvalidCiphertextException(_)
                    | DecryptError::IncorrectKeyException(_),
                ) => KeyringError::InvalidWrappedKey,
                _ => unavailable(OP, e),
            })?;
        into_data_key(out.plaintext.take(), OP)
    }
}
