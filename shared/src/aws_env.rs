//! The AWS SDK's configuration in a Lambda function, read from the variables Lambda sets.
//!
//! Lambda gives every function its region and its role's credentials as environment variables
//! (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), valid for the
//! life of the execution environment. `aws_config::load_defaults` would find them too, first in its
//! chain, but linking the chain brings STS, the profile-file parser and the instance-metadata client
//! into every function (about 0.2 MB each) for sources a Lambda function never has. So the functions
//! build the configuration from these variables and nothing else; `AWS_ENDPOINT_URL` points every
//! client elsewhere (an emulator). The HTTP client is the process's one HTTPS client
//! ([`crate::https`]); retries, timeouts and the identity cache are the SDK clients' defaults for the
//! latest behaviour version, as with `load_defaults`.

use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_types::SdkConfig;
use aws_types::region::Region;

/// A variable Lambda sets that is missing or empty (its name, never its value).
#[derive(Debug, thiserror::Error)]
#[error("the environment variable {0} is not set (Lambda sets it for every function)")]
pub struct MissingVariable(pub &'static str);

/// The SDK configuration from `var` (the process environment in a function: `std::env::var`).
///
/// # Errors
/// The first of the region and the credentials' variables that is missing.
pub fn sdk_config(var: impl Fn(&str) -> Option<String>) -> Result<SdkConfig, MissingVariable> {
    let set = |name: &'static str| var(name).filter(|v| !v.is_empty());
    let required = |name: &'static str| set(name).ok_or(MissingVariable(name));
    let region = set("AWS_REGION")
        .or_else(|| set("AWS_DEFAULT_REGION"))
        .ok_or(MissingVariable("AWS_REGION"))?;
    let credentials = Credentials::new(
        required("AWS_ACCESS_KEY_ID")?,
        required("AWS_SECRET_ACCESS_KEY")?,
        set("AWS_SESSION_TOKEN"),
        None,
        "lambda-environment",
    );
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(crate::https::sdk_http_client());
    if let Some(url) = set("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    Ok(builder.build())
}

/// The configuration from the process environment.
///
/// # Errors
/// As [`sdk_config`].
pub fn from_process_env() -> Result<SdkConfig, MissingVariable> {
    sdk_config(|name| std::env::var(name).ok())
}

#[cfg(all(test, feature = "test-support"))]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[tokio::test]
    async fn clients_built_from_the_lambda_variables_reach_the_service() {
        let endpoint = crate::test_support::moto::endpoint();
        let sdk = sdk_config(vars(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_SESSION_TOKEN", "testing"),
            ("AWS_ENDPOINT_URL", &endpoint),
        ]))
        .unwrap();
        assert_eq!(sdk.region().map(Region::as_ref), Some("eu-west-1"));
        let listed = aws_sdk_dynamodb::Client::new(&sdk)
            .list_tables()
            .limit(1)
            .send()
            .await;
        assert!(listed.is_ok(), "{listed:?}");
    }

    #[test]
    fn a_missing_region_or_credential_is_named_and_nothing_else_is_shown() {
        let missing = |pairs: &[(&str, &str)]| sdk_config(vars(pairs)).err().map(|e| e.0);
        assert_eq!(
            missing(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")]),
            Some("AWS_REGION")
        );
        assert_eq!(
            missing(&[
                ("AWS_REGION", "eu-west-1"),
                ("AWS_SECRET_ACCESS_KEY", "secret-value")
            ]),
            Some("AWS_ACCESS_KEY_ID")
        );
        assert_eq!(
            missing(&[("AWS_REGION", "eu-west-1"), ("AWS_ACCESS_KEY_ID", "")]),
            Some("AWS_ACCESS_KEY_ID")
        );
        let error = sdk_config(vars(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID"),
        ]))
        .unwrap_err();
        assert!(!error.to_string().contains("AKIAEXAMPLEKEYID"));
        // The older variable names the region too.
        let sdk = sdk_config(vars(&[
            ("AWS_DEFAULT_REGION", "us-west-2"),
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
        ]))
        .unwrap();
        assert_eq!(sdk.region().map(Region::as_ref), Some("us-west-2"));
    }
}
