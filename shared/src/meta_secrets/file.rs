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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    fn graph(app_secret: Option<&str>, verify_token: Option<&str>) -> crate::config::GraphConfig {
        crate::config::GraphConfig {
            base_url: None,
            version: "v21.0".to_owned(),
            app_secret: app_secret.map(SecretString::from),
            verify_token: verify_token.map(SecretString::from),
            secret_arn: None,
        }
    }

    #[tokio::test]
    async fn a_first_start_generates_private_values_that_a_restart_keeps() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("dir");
        let first = FileSource::open(dir.path(), &graph(None, None)).expect("created");
        let mode = std::fs::metadata(first.path())
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let a = first.fetch().await.expect("read");
        let again = FileSource::open(dir.path(), &graph(None, None)).expect("reopened");
        let b = again.fetch().await.expect("read");
        assert!(a.same_as(&b));
        assert!(a.app_secret().expose_secret().len() >= 32);
    }

    #[tokio::test]
    async fn the_environment_s_values_take_the_place_of_the_file_s() {
        let dir = tempfile::tempdir().expect("dir");
        let source = FileSource::open(dir.path(), &graph(Some("from-env"), None)).expect("created");
        source
            .write("from-file", "token-from-file")
            .expect("written");
        let s = source.fetch().await.expect("read");
        assert_eq!(s.app_secret().expose_secret(), "from-env");
        assert_eq!(s.verify_token().expose_secret(), "token-from-file");
        // Both set: the file is not needed at all.
        let both = FileSource::open(dir.path(), &graph(Some("a"), Some("v"))).expect("opened");
        std::fs::remove_file(both.path()).expect("removed");
        assert_eq!(
            both.fetch()
                .await
                .expect("read")
                .verify_token()
                .expose_secret(),
            "v"
        );
    }
}
