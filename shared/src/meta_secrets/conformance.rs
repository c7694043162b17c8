//! The Meta-secrets conformance suite (feature `test-support`): plain `pub async fn` cases over a
//! [`MetaSecretSource`] and a backend-specific [`Keeper`] that changes what is stored (a rotation, a
//! malformed document, a removal), run against every backend by `tests/conformance/meta_secrets.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use secrecy::ExposeSecret as _;

use super::file::FileSource;
use super::manager::SecretsManagerSource;
use super::{MetaSecretCache, MetaSecretSource, MetaSecrets, SecretCachePolicy, SecretsError};
use crate::clock::{ManualClock, Timestamp};
use crate::test_support::{moto, unique_name};

/// Changes what a backend holds, the way an operator would.
#[async_trait::async_trait]
pub trait Keeper: Send + Sync + std::fmt::Debug {
    /// Stores new values (a rotation).
    async fn store(&self, app_secret: &str, verify_token: &str);
    /// Stores a document that holds `app_secret` but no verify token.
    async fn store_incomplete(&self, app_secret: &str);
    /// Removes the secret.
    async fn remove(&self);
}

/// A Secrets Manager secret on moto.
#[derive(Debug)]
pub struct MotoKeeper {
    pub client: aws_sdk_secretsmanager::Client,
    /// The secret's ARN, as the template passes it.
    pub arn: String,
}

impl MotoKeeper {
    async fn put(&self, document: String) {
        if let Err(e) = self
            .client
            .put_secret_value()
            .secret_id(&self.arn)
            .secret_string(document)
            .send()
            .await
        {
            panic!("moto must store the secret: {e}");
        }
    }
}

#[async_trait::async_trait]
impl Keeper for MotoKeeper {
    async fn store(&self, app_secret: &str, verify_token: &str) {
        self.put(
            serde_json::json!({ "app_secret": app_secret, "verify_token": verify_token })
                .to_string(),
        )
        .await;
    }
    async fn store_incomplete(&self, app_secret: &str) {
        self.put(serde_json::json!({ "app_secret": app_secret }).to_string())
            .await;
    }
    async fn remove(&self) {
        if let Err(e) = self
            .client
            .delete_secret()
            .secret_id(&self.arn)
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            panic!("moto must delete the secret: {e}");
        }
    }
}

/// A fresh secret on moto holding `app_secret` and `verify_token`: the source reading it by ARN, and
/// its keeper.
pub async fn secretsmanager_on_moto(
    app_secret: &str,
    verify_token: &str,
) -> (SecretsManagerSource, MotoKeeper) {
    let client = aws_sdk_secretsmanager::Client::new(&moto::sdk_config().await);
    let created = client
        .create_secret()
        .name(unique_name("qchat/meta"))
        .secret_string(
            serde_json::json!({ "app_secret": app_secret, "verify_token": verify_token })
                .to_string(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto must create the secret: {e}"));
    let arn = created
        .arn()
        .unwrap_or_else(|| panic!("CreateSecret returned no ARN"))
        .to_owned();
    (
        SecretsManagerSource::new(client.clone(), arn.clone()),
        MotoKeeper { client, arn },
    )
}

/// The local `secrets.json`.
#[derive(Debug)]
pub struct FileKeeper(pub FileSource);

#[async_trait::async_trait]
impl Keeper for FileKeeper {
    async fn store(&self, app_secret: &str, verify_token: &str) {
        self.0
            .write(app_secret, verify_token)
            .unwrap_or_else(|e| panic!("the secrets file must be written: {e}"));
    }
    async fn store_incomplete(&self, app_secret: &str) {
        self.0
            .write_raw(
                serde_json::json!({ "fb_app_secret": app_secret })
                    .to_string()
                    .as_bytes(),
            )
            .unwrap_or_else(|e| panic!("the secrets file must be written: {e}"));
    }
    async fn remove(&self) {
        std::fs::remove_file(self.0.path())
            .unwrap_or_else(|e| panic!("the secrets file must be removed: {e}"));
    }
}

/// A `secrets.json` in a fresh folder holding `app_secret` and `verify_token` (no `QCHAT_FB_*` values):
/// the source, its keeper and the folder's guard.
pub fn file_in_temp_dir(
    app_secret: &str,
    verify_token: &str,
) -> (FileSource, FileKeeper, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let graph = crate::config::GraphConfig {
        base_url: None,
        version: "v21.0".to_owned(),
        app_secret: None,
        verify_token: None,
        secret_arn: None,
    };
    let source = FileSource::open(dir.path(), &graph)
        .unwrap_or_else(|e| panic!("the secrets file must be created: {e}"));
    source
        .write(app_secret, verify_token)
        .unwrap_or_else(|e| panic!("the secrets file must be written: {e}"));
    (source.clone(), FileKeeper(source), dir)
}

/// Counts the reads of the source it wraps (how often a cache went to the backend).
#[derive(Debug)]
pub struct CountingSource {
    inner: Arc<dyn MetaSecretSource>,
    reads: AtomicUsize,
}

impl CountingSource {
    pub fn new(inner: Arc<dyn MetaSecretSource>) -> Self {
        Self {
            inner,
            reads: AtomicUsize::new(0),
        }
    }
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl MetaSecretSource for CountingSource {
    async fn fetch(&self) -> Result<MetaSecrets, SecretsError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch().await
    }
}

async fn fetched(source: &dyn MetaSecretSource) -> (String, String) {
    match source.fetch().await {
        Ok(s) => (
            s.app_secret().expose_secret().to_owned(),
            s.verify_token().expose_secret().to_owned(),
        ),
        Err(e) => panic!("the secrets must be read: {e}"),
    }
}

/// What is stored is what is read.
pub async fn the_stored_secrets_are_read(source: &dyn MetaSecretSource, keeper: &dyn Keeper) {
    keeper.store("app-secret-one", "verify-token-one").await;
    assert_eq!(
        fetched(source).await,
        ("app-secret-one".to_owned(), "verify-token-one".to_owned())
    );
}

/// A rotation is read by the very next fetch: the source itself caches nothing.
pub async fn a_rotation_is_read_by_the_next_fetch(
    source: &dyn MetaSecretSource,
    keeper: &dyn Keeper,
) {
    keeper.store("app-secret-one", "verify-token-one").await;
    assert_eq!(fetched(source).await.0, "app-secret-one");
    keeper.store("app-secret-two", "verify-token-two").await;
    assert_eq!(
        fetched(source).await,
        ("app-secret-two".to_owned(), "verify-token-two".to_owned())
    );
}

/// A document without the verify token is refused whole, and the refusal does not repeat what it held.
pub async fn an_incomplete_secret_is_refused_without_echoing_it(
    source: &dyn MetaSecretSource,
    keeper: &dyn Keeper,
) {
    keeper.store_incomplete("leaked-app-secret-7f3a").await;
    let refused = source.fetch().await.err();
    assert!(
        matches!(refused, Some(SecretsError::Malformed)),
        "{refused:?}"
    );
    let shown = format!(
        "{refused:?} {}",
        refused
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(!shown.contains("leaked-app-secret"), "{shown}");
}

/// A removed secret is "not found", not some other failure.
pub async fn a_removed_secret_is_not_found(source: &dyn MetaSecretSource, keeper: &dyn Keeper) {
    keeper.remove().await;
    let refused = source.fetch().await.err();
    assert!(
        matches!(refused, Some(SecretsError::NotFound)),
        "{refused:?}"
    );
}

/// Through the cache: a rotation is picked up by the first refusal after the refresh interval with one
/// read, and refusals of forged values within the interval read nothing.
pub async fn the_cache_picks_up_a_rotation_with_one_read_per_interval(
    source: Arc<dyn MetaSecretSource>,
    keeper: &dyn Keeper,
) {
    keeper.store("app-secret-one", "verify-token-one").await;
    let counting = Arc::new(CountingSource::new(source));
    let clock = Arc::new(ManualClock::at(Timestamp::from_secs(1_000_000)));
    let policy = SecretCachePolicy::default();
    let cache = MetaSecretCache::new(counting.clone(), clock.clone(), policy);
    let used = cache
        .current()
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    keeper.store("app-secret-two", "verify-token-two").await;
    clock.advance_millis(i64::try_from(policy.min_refresh_interval.as_millis()).unwrap_or(0));
    let newer = cache
        .newer_than(&used)
        .await
        .unwrap_or_else(|| panic!("the rotation must be found"));
    assert_eq!(newer.app_secret().expose_secret(), "app-secret-two");
    for _ in 0..20 {
        assert!(cache.newer_than(&newer).await.is_none());
    }
    assert_eq!(counting.reads(), 2, "one first read and one refresh");
}
