//! The local backend of Meta's secrets: `<data folder>/secrets.json` (mode 0600), holding
//! `{"fb_app_secret": "…", "fb_verify_token": "…"}`, generated with random values on first start so a
//! restart keeps them, and read again on every `fetch` — so replacing the file rotates the secrets of
//! a running local server the way a rotation in Secrets Manager does in AWS. `QCHAT_FB_APP_SECRET` and
//! `QCHAT_FB_VERIFY_TOKEN`, when set, take the place of the file's values.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use secrecy::SecretString;

use super::{MetaSecretSource, MetaSecrets, SecretsError};

/// The file's name inside the data folder.
pub const FILE: &str = "secrets.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    fb_app_secret: String,
    fb_verify_token: String,
}

/// Reads `secrets.json` on every `fetch`, with the environment's values in place of the file's.
#[derive(Clone)]
pub struct FileSource {
    path: PathBuf,
    app_secret: Option<SecretString>,
    verify_token: Option<SecretString>,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("path", &self.path)
            .field("app_secret_from_env", &self.app_secret.is_some())
            .field("verify_token_from_env", &self.verify_token.is_some())
            .finish()
    }
}

fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<24>())
}

impl FileSource {
    /// The file in `data_dir`, created with fresh random values if it does not exist, with the
    /// configuration's `QCHAT_FB_*` values (if any) in place of the file's.
    ///
    /// # Errors
    /// The file system's, when the file cannot be created.
    pub fn open(data_dir: &Path, graph: &crate::config::GraphConfig) -> std::io::Result<Self> {
        let path = data_dir.join(FILE);
        let fresh = Stored {
            fb_app_secret: random_token(),
            fb_verify_token: random_token(),
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(&serde_json::to_vec_pretty(&fresh).map_err(std::io::Error::other)?)?;
                f.sync_all()?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        Ok(Self {
            path,
            app_secret: graph.app_secret.clone(),
            verify_token: graph.verify_token.clone(),
        })
    }

    /// The file's path (the sample-events script reads it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's values (tests and local tooling rotate with it). Written to a temporary file
    /// and renamed over the old one, so a concurrent `fetch` reads either whole document.
    ///
    /// # Errors
    /// The file system's.
    pub fn write(&self, app_secret: &str, verify_token: &str) -> std::io::Result<()> {
        let stored = Stored {
            fb_app_secret: app_secret.to_owned(),
            fb_verify_token: verify_token.to_owned(),
        };
        self.write_raw(&serde_json::to_vec_pretty(&stored).map_err(std::io::Error::other)?)
    }

    /// Replaces the file with `bytes`, whatever they are (the conformance suite writes malformed ones).
    ///
    /// # Errors
    /// The file system's.
    pub fn write_raw(&self, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.new");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[async_trait::async_trait]
impl MetaSecretSource for FileSource {
    async fn fetch(&self) -> Result<MetaSecrets, SecretsError> {
        if let (Some(a), Some(v)) = (&self.app_secret, &self.verify_token) {
            return MetaSecrets::new(a.clone(), v.clone());
        }
        let bytes = match tokio::fs::read(&self.path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SecretsError::NotFound);
            }
            Err(e) => return Err(SecretsError::Unavailable(Box::new(e))),
        };
        let stored: Stored = serde_json::from_slice(&bytes).map_err(|_| SecretsError::Malformed)?;
        MetaSecrets::new(
            self.app_secret
                .clone()
                .unwrap_or_else(|| SecretString::from(stored.fb_app_secret)),
            self.verify_token
                .clone()
                .unwrap_or_else(|| SecretString::from(stored.fb_verify_token)),
        )
    }
}
