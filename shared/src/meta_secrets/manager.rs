//! The AWS backend of Meta's secrets: one Secrets Manager secret (named by its ARN), whose `SecretString`
//! is the JSON document `{"app_secret": "…", "verify_token": "…"}`, read with `GetSecretValue` (the
//! `AWSCURRENT` version). The function's role may read that one secret and nothing else.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use tracing::instrument;

use super::{MetaSecretSource, MetaSecrets, SecretsError};

/// Reads the secret `secret_id` (an ARN or a name) on every `fetch`.
#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: Client,
    secret_id: String,
}

impl SecretsManagerSource {
    pub fn new(client: Client, secret_id: String) -> Self {
        Self { client, secret_id }
    }
}

#[async_trait::async_trait]
impl MetaSecretSource for SecretsManagerSource {
    #[instrument(name = "meta_secrets.secretsmanager.fetch", skip_all)]
    async fn fetch(&self) -> Result<MetaSecrets, SecretsError> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| match e.into_service_error() {
                GetSecretValueError::ResourceNotFoundException(_) => SecretsError::NotFound,
                other => SecretsError::Unavailable(Box::new(other)),
            })?;
        // A binary secret, or none, is not the document qchat reads.
        let document = answer.secret_string().ok_or(SecretsError::Malformed)?;
        MetaSecrets::from_json(document)
    }
}
