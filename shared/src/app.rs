//! The dependencies every function needs, built once per process from the configuration: the AWS
//! backends in Lambda, the embedded ones locally. Handlers take `&App`; tests build one with fixed clock
//! and ids through [`App::from_parts`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::{Backend, Config};
use crate::crypto::keys::blind_index_key_stored;
use crate::crypto::kms::KmsKeyring;
use crate::crypto::local::LocalKeyring;
use crate::crypto::{CryptoError, KeyCachePolicy, KeyManager, Keyring, KeyringError};
use crate::ids::{IdGenerator, RandomIds};
use crate::mail::Mailer;
use crate::mail::outbox::OutboxMailer;
use crate::mail::ses::SesMailer;
use crate::messenger::Messenger;
use crate::messenger::graph::{self, GraphMessenger};
use crate::messenger::outbox::OutboxMessenger;
use crate::store::ItemStore;
use crate::store::dynamodb::DynamoStore;
use crate::store::sqlite::SqliteStore;

/// Everything a handler talks to.
#[derive(Debug, Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn ItemStore>,
    pub keys: Arc<KeyManager>,
    pub mailer: Arc<dyn Mailer>,
    pub messenger: Arc<dyn Messenger>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

/// Why the process could not start. Names the part, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("could not prepare the data folder")]
    DataDir(#[source] std::io::Error),
    #[error("could not open the store")]
    Store(#[source] crate::store::StoreError),
    #[error("could not open the keyring")]
    Keyring(#[source] crate::crypto::KeyringError),
    #[error("could not set up the Graph API client")]
    Graph(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "the master key file {} is missing, but the store holds data encrypted under a master key. \
         Restore master.key from a backup into the data folder, or move the data folder away to start \
         afresh (its encrypted data cannot be read without that key)",
        path.display()
    )]
    MasterKeyMissing { path: PathBuf },
    #[error(
        "the master key file {} is not the key the store's data was encrypted under. Restore the \
         master.key this data folder was created with from a backup, or move the data folder away to \
         start afresh (its encrypted data cannot be read without that key)",
        path.display()
    )]
    MasterKeyMismatch { path: PathBuf },
    #[error("could not check the master key against the store")]
    MasterKeyCheck(#[source] CryptoError),
}

/// File names inside the local data folder.
pub mod local_files {
    pub const STORE: &str = "qchat.sqlite3";
    pub const MASTER_KEY: &str = "master.key";
    pub const MAIL_OUTBOX: &str = "mail";
    pub const MESSENGER_OUTBOX: &str = "messenger-outbox.jsonl";
}

/// The key owner name of an account's data key.
pub fn account_key_owner(account: &crate::domain::AccountId) -> String {
    format!("account:{account}")
}

fn ensure_private_dir(dir: &Path) -> Result<(), StartupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(StartupError::DataDir)
}

/// Opens the local master key. A store that holds the blind-index key holds data encrypted under a
/// master key, so its key file must exist: a new key would start a server that cannot read any of it
/// (every sign-in a 500). A store without it gets a key created on first use. Also says whether the
/// store holds such data.
async fn open_local_keyring(
    path: &Path,
    store: &SqliteStore,
) -> Result<(LocalKeyring, bool), StartupError> {
    let holds_data = blind_index_key_stored(store)
        .await
        .map_err(StartupError::Store)?;
    let keyring = if holds_data {
        LocalKeyring::open_existing(path)
            .map_err(StartupError::Keyring)?
            .ok_or_else(|| StartupError::MasterKeyMissing {
                path: path.to_owned(),
            })?
    } else {
        LocalKeyring::open(path).map_err(StartupError::Keyring)?
    };
    Ok((keyring, holds_data))
}

impl App {
    /// Builds the backends the configuration names. Locally this creates the data folder and migrates the
    /// SQLite schema; in AWS the table already exists (the template creates it).
    ///
    /// A local store that already holds data encrypted under a master key starts only with that key: a
    /// missing key file is never replaced by a new one, and a different key is refused (see
    /// [`open_local_keyring`]).
    pub async fn from_config(config: Config) -> Result<Self, StartupError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
        // The master key to check against the stored blind-index key once the app is assembled.
        let mut check_master_key = None;
        let (store, keyring, mailer): (Arc<dyn ItemStore>, Arc<dyn Keyring>, Arc<dyn Mailer>) =
            match &config.backend {
                Backend::Local { data_dir } => {
                    ensure_private_dir(data_dir)?;
                    let store =
                        SqliteStore::open(&data_dir.join(local_files::STORE), clock.clone())
                            .map_err(StartupError::Store)?;
                    let path = data_dir.join(local_files::MASTER_KEY);
                    let (keyring, holds_data) = open_local_keyring(&path, &store).await?;
                    if holds_data {
                        check_master_key = Some(path);
                    }
                    let mail_dir: PathBuf = data_dir.join(local_files::MAIL_OUTBOX);
                    ensure_private_dir(&mail_dir)?;
                    let mailer =
                        OutboxMailer::new(mail_dir, config.mail_from.clone(), clock.clone());
                    (Arc::new(store), Arc::new(keyring), Arc::new(mailer))
                }
                Backend::Aws { table, kms_key_id } => {
                    let sdk =
                        aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                    let store = DynamoStore::new(
                        aws_sdk_dynamodb::Client::new(&sdk),
                        table.clone(),
                        clock.clone(),
                    );
                    let keyring =
                        KmsKeyring::new(aws_sdk_kms::Client::new(&sdk), kms_key_id.clone());
                    let mailer =
                        SesMailer::new(aws_sdk_ses::Client::new(&sdk), config.mail_from.clone())
                            .with_configuration_set(config.ses_configuration_set.clone());
                    (Arc::new(store), Arc::new(keyring), Arc::new(mailer))
                }
            };
        let messenger: Arc<dyn Messenger> = match (&config.graph.base_url, &config.backend) {
            (None, Backend::Local { data_dir }) => Arc::new(OutboxMessenger::new(
                data_dir.join(local_files::MESSENGER_OUTBOX),
                clock.clone(),
                ids.clone(),
            )),
            (base, _) => {
                let base = base
                    .clone()
                    .unwrap_or_else(|| graph::DEFAULT_BASE_URL.to_owned());
                let http = graph::http_client().map_err(|e| StartupError::Graph(Box::new(e)))?;
                let client = GraphMessenger::new(
                    http,
                    base,
                    config.graph.version.clone(),
                    config.graph.app_secret.clone(),
                )
                .map_err(|e| StartupError::Graph(Box::new(e)))?;
                Arc::new(client)
            }
        };
        let app = Self::from_parts(config, store, keyring, mailer, messenger, clock, ids);
        if let Some(path) = check_master_key {
            // Unwrapping the stored blind-index key proves the master key is the one the data was
            // encrypted under (and leaves the key cached for the first request).
            match app.keys.blind_indexer().await {
                Ok(_) => {}
                Err(CryptoError::Keyring(KeyringError::InvalidWrappedKey)) => {
                    return Err(StartupError::MasterKeyMismatch { path });
                }
                Err(e) => return Err(StartupError::MasterKeyCheck(e)),
            }
        }
        Ok(app)
    }

    /// Assembles an app from explicit parts (tests inject a manual clock, sequential ids, fakes).
    pub fn from_parts(
        config: Config,
        store: Arc<dyn ItemStore>,
        keyring: Arc<dyn Keyring>,
        mailer: Arc<dyn Mailer>,
        messenger: Arc<dyn Messenger>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        let keys = Arc::new(KeyManager::new(
            store.clone(),
            keyring,
            clock.clone(),
            KeyCachePolicy::default(),
        ));
        Self {
            config: Arc::new(config),
            store,
            keys,
            mailer,
            messenger,
            clock,
            ids,
        }
    }
}
