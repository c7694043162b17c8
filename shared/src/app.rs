//! The dependencies every function needs, built once per process from the configuration: the AWS
//! backends in Lambda, the embedded ones locally. Handlers take `&App`; tests build one with fixed clock
//! and ids through [`App::from_parts`].
//!
//! Two item stores: the main store, which backups and point-in-time recovery copy, and the key store
//! (the wrapped data keys and the email lookups), which they do not reach, so that destroying a key or a
//! lookup there makes an erased subject unreadable and unfindable in every restored copy of the main
//! store (README, "Erasure and backups").

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::{Backend, Config};
#[cfg(feature = "local")]
use crate::crypto::keys::blind_index_key_stored;
use crate::crypto::kms::KmsKeyring;
#[cfg(feature = "local")]
use crate::crypto::local::LocalKeyring;
use crate::crypto::{CryptoError, KeyCachePolicy, KeyManager, Keyring, KeyringError};
use crate::ids::{IdGenerator, RandomIds};
use crate::mail::Mailer;
use crate::messenger::Messenger;
use crate::meta_secrets::{FixedSource, MetaSecretCache, MetaSecretSource, SecretCachePolicy};
use crate::replies::handoff::ReplyHandoff;
use crate::store::ItemStore;
use crate::store::dynamodb::DynamoStore;
#[cfg(feature = "local")]
use crate::store::sqlite::SqliteStore;

/// The two item stores an app is built on (see the module doc).
#[derive(Debug, Clone)]
pub struct Stores {
    pub main: Arc<dyn ItemStore>,
    pub keys: Arc<dyn ItemStore>,
}

/// Everything a handler talks to.
#[derive(Debug, Clone)]
pub struct App {
    pub config: Arc<Config>,
    /// The main store: every item except the ones [`App::key_store`] holds. Backed up.
    pub store: Arc<dyn ItemStore>,
    /// The key store: data keys ([`KeyManager`]) and email claims. Not backed up; see the module doc.
    pub key_store: Arc<dyn ItemStore>,
    pub keys: Arc<KeyManager>,
    pub mailer: Arc<dyn Mailer>,
    pub messenger: Arc<dyn Messenger>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// Meta's app secret and verify token, read at run time ([`crate::meta_secrets`]).
    pub meta_secrets: Arc<MetaSecretCache>,
    /// Where the webhook hands new replies to a sender in the same process (the local server's); `None`
    /// in Lambda, where the table's stream starts notify. See [`crate::replies::handoff`].
    pub reply_handoff: Option<Arc<ReplyHandoff>>,
}

/// Why the process could not start. Names the part, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("could not configure the AWS clients")]
    AwsEnvironment(#[source] crate::aws_env::MissingVariable),
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
    #[error(
        "the store {} holds data keys, which now live in their own file ({}). This data folder was \
         made by an older qchat; move it away to start afresh",
        store.display(),
        local_files::KEY_STORE
    )]
    KeysInMainStore { store: PathBuf },
    #[error(
        "the key store {} holds no keys, but the main store holds accounts: their data cannot be read \
         without it. Restore {} from a backup into the data folder, or move the data folder away to \
         start afresh",
        path.display(),
        local_files::KEY_STORE
    )]
    KeyStoreMissing { path: PathBuf },
    #[error("could not prepare the local secrets file")]
    Secrets(#[source] std::io::Error),
    /// The configuration names something this binary was built without (see the workspace
    /// `Cargo.toml`: each function enables only the backends and clients it uses).
    #[error("this binary was built without {0}")]
    NotBuilt(&'static str),
}

/// File names inside the local data folder.
pub mod local_files {
    pub const STORE: &str = "qchat.sqlite3";
    /// The key store: a separate file, so a copy of the main file is not a copy of the keys.
    pub const KEY_STORE: &str = "keys.sqlite3";
    pub const MASTER_KEY: &str = "master.key";
    pub const MAIL_OUTBOX: &str = "mail";
    pub const MESSENGER_OUTBOX: &str = "messenger-outbox.jsonl";
}

/// The key owner name of an account's data key.
pub fn account_key_owner(account: &crate::domain::AccountId) -> String {
    format!("account:{account}")
}

#[cfg_attr(not(feature = "local"), allow(dead_code))]
fn ensure_private_dir(dir: &Path) -> Result<(), StartupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(StartupError::DataDir)
}

#[cfg(feature = "local")]
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

/// Whether the main store lists any account.
#[cfg(feature = "local")]
async fn holds_accounts(store: &SqliteStore) -> Result<bool, StartupError> {
    use crate::store::{Index, KeyRange, Order, Query};
    let query = Query {
        index: Index::Gsi1,
        partition: crate::accounts::ALL_ACCOUNTS_PARTITION.to_owned(),
        range: KeyRange::All,
        order: Order::Ascending,
        limit: 1,
        cursor: None,
    };
    Ok(!store
        .query(&query)
        .await
        .map_err(StartupError::Store)?
        .items
        .is_empty())
}

impl App {
    /// Builds the backends the configuration names. Locally this creates the data folder and migrates the
    /// SQLite schema; in AWS the table already exists (the template creates it).
    ///
    /// A local store that already holds data encrypted under a master key starts only with that key: a
    /// missing key file is never replaced by a new one, and a different key is refused (see
    /// [`open_local_keyring`]).
    pub async fn from_config(config: Config) -> Result<Self, StartupError> {
        Self::from_config_with(config, Clients::BUILT).await
    }

    /// As [`Self::from_config`], with the clients besides DynamoDB and KMS that `clients` names (a
    /// Lambda function's `main` names the ones its code uses).
    ///
    /// # Errors
    /// As [`Self::from_config`].
    pub async fn from_config_with(config: Config, clients: Clients) -> Result<Self, StartupError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
        // The master key to check against the stored blind-index key once the app is assembled.
        let mut check_master_key: Option<PathBuf> = None;
        let parts = match &config.backend {
            Backend::Local { data_dir } => {
                local_parts(&config, data_dir, &clock, &ids, &mut check_master_key).await?
            }
            Backend::Aws {
                table,
                key_table,
                kms_key_id,
            } => {
                let sdk =
                    crate::aws_env::from_process_env().map_err(StartupError::AwsEnvironment)?;
                let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
                let store = DynamoStore::new(dynamodb.clone(), table.clone(), clock.clone());
                let key_store = DynamoStore::new(dynamodb, key_table.clone(), clock.clone());
                let keyring = KmsKeyring::new(aws_sdk_kms::Client::new(&sdk), kms_key_id.clone());
                Parts {
                    stores: Stores {
                        main: Arc::new(store),
                        keys: Arc::new(key_store),
                    },
                    keyring: Arc::new(keyring),
                    mailer: (clients.mailer)(&sdk, &config),
                    secrets: (clients.secrets)(&sdk, &config)?,
                }
            }
        };
        let secrets = match parts.secrets {
            Some(source) => source,
            None => Arc::new(FixedSource::from_config(&config.graph)),
        };
        let meta_secrets = Arc::new(MetaSecretCache::new(
            secrets,
            clock.clone(),
            SecretCachePolicy::default(),
        ));
        let messenger = match local_messenger(&config, &clock, &ids) {
            Some(outbox) => outbox,
            None => (clients.messenger)(&config, &meta_secrets)?,
        };
        let Parts {
            stores,
            keyring,
            mailer,
            ..
        } = parts;
        let app = Self::from_parts(config, stores, keyring, mailer, messenger, clock, ids)
            .with_meta_secrets(meta_secrets);
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

    /// Assembles an app from explicit parts (tests inject a manual clock, sequential ids, fakes). The
    /// data keys live in `stores.keys`.
    pub fn from_parts(
        config: Config,
        stores: Stores,
        keyring: Arc<dyn Keyring>,
        mailer: Arc<dyn Mailer>,
        messenger: Arc<dyn Messenger>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        let Stores {
            main: store,
            keys: key_store,
        } = stores;
        let keys = Arc::new(KeyManager::new(
            key_store.clone(),
            keyring,
            clock.clone(),
            KeyCachePolicy::default(),
        ));
        let meta_secrets = Arc::new(MetaSecretCache::new(
            Arc::new(FixedSource::from_config(&config.graph)),
            clock.clone(),
            SecretCachePolicy::default(),
        ));
        Self {
            config: Arc::new(config),
            store,
            key_store,
            keys,
            mailer,
            messenger,
            clock,
            ids,
            meta_secrets,
            reply_handoff: None,
        }
    }

    /// Hands the webhook's new replies to the sender reading `handoff`'s queue.
    #[must_use]
    pub fn with_reply_handoff(mut self, handoff: Arc<ReplyHandoff>) -> Self {
        self.reply_handoff = Some(handoff);
        self
    }

    /// Replaces where Meta's secrets come from (by default the configuration's `QCHAT_FB_*` values).
    pub fn with_meta_secret_source(self, source: Arc<dyn MetaSecretSource>) -> Self {
        let cache = MetaSecretCache::new(source, self.clock.clone(), SecretCachePolicy::default());
        self.with_meta_secrets(Arc::new(cache))
    }

    /// Replaces the cache of Meta's secrets.
    pub fn with_meta_secrets(mut self, cache: Arc<MetaSecretCache>) -> Self {
        self.meta_secrets = cache;
        self
    }
}

/// What a backend provides; the messenger and the secrets cache are built from the configuration.
struct Parts {
    stores: Stores,
    keyring: Arc<dyn Keyring>,
    mailer: Arc<dyn Mailer>,
    /// `None`: the configuration's fixed values.
    secrets: Option<Arc<dyn MetaSecretSource>>,
}

/// The embedded backends: SQLite store, master-key file, mail outbox folder, `secrets.json`.
#[cfg(feature = "local")]
async fn local_parts(
    config: &Config,
    data_dir: &Path,
    clock: &Arc<dyn Clock>,
    _ids: &Arc<dyn IdGenerator>,
    check_master_key: &mut Option<PathBuf>,
) -> Result<Parts, StartupError> {
    use crate::mail::outbox::OutboxMailer;
    use crate::meta_secrets::file::FileSource;

    ensure_private_dir(data_dir)?;
    let store_path = data_dir.join(local_files::STORE);
    let store = SqliteStore::open(&store_path, clock.clone()).map_err(StartupError::Store)?;
    let key_store_path = data_dir.join(local_files::KEY_STORE);
    let key_store =
        SqliteStore::open(&key_store_path, clock.clone()).map_err(StartupError::Store)?;
    // Keys left in the main file by an older layout would be copied with it and never found here.
    if blind_index_key_stored(&store)
        .await
        .map_err(StartupError::Store)?
    {
        return Err(StartupError::KeysInMainStore { store: store_path });
    }
    let path = data_dir.join(local_files::MASTER_KEY);
    let (keyring, holds_data) = open_local_keyring(&path, &key_store).await?;
    // A lost key store would otherwise start afresh over accounts nobody can read any more.
    if !holds_data && holds_accounts(&store).await? {
        return Err(StartupError::KeyStoreMissing {
            path: key_store_path,
        });
    }
    if holds_data {
        *check_master_key = Some(path);
    }
    let mail_dir: PathBuf = data_dir.join(local_files::MAIL_OUTBOX);
    ensure_private_dir(&mail_dir)?;
    let mailer = OutboxMailer::new(mail_dir, config.mail_from.clone(), clock.clone());
    let secrets = FileSource::open(data_dir, &config.graph).map_err(StartupError::Secrets)?;
    Ok(Parts {
        stores: Stores {
            main: Arc::new(store),
            keys: Arc::new(key_store),
        },
        keyring: Arc::new(keyring),
        mailer: Arc::new(mailer),
        secrets: Some(Arc::new(secrets)),
    })
}

#[cfg(not(feature = "local"))]
async fn local_parts(
    _config: &Config,
    _data_dir: &Path,
    _clock: &Arc<dyn Clock>,
    _ids: &Arc<dyn IdGenerator>,
    _check_master_key: &mut Option<PathBuf>,
) -> Result<Parts, StartupError> {
    Err(StartupError::NotBuilt(
        "the local backend (feature `local` of qchat-shared)",
    ))
}

/// How a binary builds its mailer, Meta's secrets source and its Graph API client from the SDK's
/// configuration: a constructor each, named by the function's `main` (`Clients::BASE.with_graph()`…).
/// A binary then links only the clients its own code reaches, whatever Cargo's feature unification
/// compiled into `qchat-shared` (`sam build` builds every function in one command, so each is compiled
/// with the features of all; see the README's "Size and cold start"). A client a function names but
/// its crate did not enable the feature of does not compile.
#[derive(Debug, Clone, Copy)]
pub struct Clients {
    mailer: MailerFrom,
    secrets: SecretsFrom,
    messenger: MessengerFrom,
}

type MailerFrom = fn(&aws_types::SdkConfig, &Config) -> Arc<dyn Mailer>;
type SecretsFrom =
    fn(&aws_types::SdkConfig, &Config) -> Result<Option<Arc<dyn MetaSecretSource>>, StartupError>;
type MessengerFrom = fn(&Config, &Arc<MetaSecretCache>) -> Result<Arc<dyn Messenger>, StartupError>;

impl Clients {
    /// DynamoDB and KMS only: mail and Graph calls fail as not built; Meta's secrets are the
    /// configuration's fixed values.
    pub const BASE: Self = Self {
        mailer: no_mailer,
        secrets: no_secrets_client,
        messenger: no_graph,
    };

    /// Every client this build of `qchat-shared` has (the local server's choice).
    pub const BUILT: Self = {
        let clients = Self::BASE;
        #[cfg(feature = "ses")]
        let clients = clients.with_ses();
        #[cfg(feature = "secretsmanager")]
        let clients = clients.with_secrets_manager();
        #[cfg(feature = "graph")]
        let clients = clients.with_graph();
        clients
    };

    /// Mail through SES.
    #[cfg(feature = "ses")]
    #[must_use]
    pub const fn with_ses(self) -> Self {
        Self {
            mailer: ses_mailer,
            ..self
        }
    }

    /// Meta's secrets from Secrets Manager when the configuration names a secret.
    #[cfg(feature = "secretsmanager")]
    #[must_use]
    pub const fn with_secrets_manager(self) -> Self {
        Self {
            secrets: secrets_manager,
            ..self
        }
    }

    /// The Graph API (Send API, token checks, ids for pages).
    #[cfg(feature = "graph")]
    #[must_use]
    pub const fn with_graph(self) -> Self {
        Self {
            messenger: graph_messenger,
            ..self
        }
    }
}

#[cfg(feature = "ses")]
fn ses_mailer(sdk: &aws_types::SdkConfig, config: &Config) -> Arc<dyn Mailer> {
    Arc::new(
        crate::mail::ses::SesMailer::new(aws_sdk_ses::Client::new(sdk), config.mail_from.clone())
            .with_configuration_set(config.ses_configuration_set.clone()),
    )
}

/// A mailer that refuses, naming what is missing.
fn no_mailer(_sdk: &aws_types::SdkConfig, _config: &Config) -> Arc<dyn Mailer> {
    Arc::new(crate::mail::NotBuilt)
}

/// Secrets Manager when the configuration names a secret; the fixed `QCHAT_FB_*` values otherwise.
#[cfg(feature = "secretsmanager")]
#[allow(clippy::unnecessary_wraps)] // the shape of every `SecretsFrom`
fn secrets_manager(
    sdk: &aws_types::SdkConfig,
    config: &Config,
) -> Result<Option<Arc<dyn MetaSecretSource>>, StartupError> {
    let Some(arn) = &config.graph.secret_arn else {
        return Ok(None);
    };
    Ok(Some(Arc::new(
        crate::meta_secrets::manager::SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            arn.clone(),
        ),
    )))
}

/// A function without the Secrets Manager client never needs Meta's secrets (see its `main`): a
/// stray secret variable must not stop it, and any use fails as "not configured".
#[allow(clippy::unnecessary_wraps)] // the shape of every `SecretsFrom`
fn no_secrets_client(
    _sdk: &aws_types::SdkConfig,
    config: &Config,
) -> Result<Option<Arc<dyn MetaSecretSource>>, StartupError> {
    if config.graph.secret_arn.is_none() {
        return Ok(None);
    }
    tracing::warn!(
        variable = crate::config::vars::META_SECRET_ARN,
        "this function was built without the Secrets Manager client; the secret is not read"
    );
    Ok(Some(Arc::new(FixedSource::new(None))))
}

/// Locally without `QCHAT_GRAPH_URL`: the Messenger outbox file. `None` otherwise.
fn local_messenger(
    config: &Config,
    clock: &Arc<dyn Clock>,
    ids: &Arc<dyn IdGenerator>,
) -> Option<Arc<dyn Messenger>> {
    #[cfg(feature = "local")]
    if let (None, Backend::Local { data_dir }) = (&config.graph.base_url, &config.backend) {
        return Some(Arc::new(crate::messenger::outbox::OutboxMessenger::new(
            data_dir.join(local_files::MESSENGER_OUTBOX),
            clock.clone(),
            ids.clone(),
        )));
    }
    let _ = (config, clock, ids);
    None
}

/// The Graph API at `QCHAT_GRAPH_URL` (Meta's by default), signing with the app secret of
/// `meta_secrets`.
#[cfg(feature = "graph")]
fn graph_messenger(
    config: &Config,
    meta_secrets: &Arc<MetaSecretCache>,
) -> Result<Arc<dyn Messenger>, StartupError> {
    use crate::messenger::graph::{self, GraphMessenger};
    let base = config
        .graph
        .base_url
        .clone()
        .unwrap_or_else(|| graph::DEFAULT_BASE_URL.to_owned());
    let client =
        GraphMessenger::with_client_at_first_call(base, config.graph.version.clone(), None)
            .map_err(|e| StartupError::Graph(Box::new(e)))?
            .with_app_secret_from(meta_secrets.clone());
    Ok(Arc::new(client))
}

/// A messenger whose every call fails as Meta being unreachable would.
#[allow(clippy::unnecessary_wraps)] // the shape of every `MessengerFrom`
fn no_graph(
    _config: &Config,
    _meta_secrets: &Arc<MetaSecretCache>,
) -> Result<Arc<dyn Messenger>, StartupError> {
    Ok(Arc::new(crate::messenger::NotBuilt))
}
