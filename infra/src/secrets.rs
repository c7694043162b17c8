//! Local secrets: the Meta app secret and webhook verify token. Taken from the environment when set;
//! otherwise generated on first run and kept in `<data folder>/secrets.json` (mode 0600), so a restart
//! keeps the same values.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use base64::Engine as _;
use qchat_shared::config::Config;
use secrecy::{ExposeSecret as _, SecretString};

const FILE: &str = "secrets.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    fb_app_secret: String,
    fb_verify_token: String,
}

fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(qchat_shared::crypto::random_bytes::<24>())
}

/// Fills in the secrets the environment did not set.
pub fn fill_in(config: &mut Config, data_dir: &Path) -> std::io::Result<()> {
    if config.graph.app_secret.is_some() && config.graph.verify_token.is_some() {
        return Ok(());
    }
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(FILE);
    let stored = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<Stored>(&bytes).map_err(std::io::Error::other)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fresh = Stored {
                fb_app_secret: random_token(),
                fb_verify_token: random_token(),
            };
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(&serde_json::to_vec_pretty(&fresh).map_err(std::io::Error::other)?)?;
            fresh
        }
        Err(e) => return Err(e),
    };
    if config
        .graph
        .app_secret
        .as_ref()
        .is_none_or(|s| s.expose_secret().is_empty())
    {
        config.graph.app_secret = Some(SecretString::from(stored.fb_app_secret));
    }
    if config.graph.verify_token.is_none() {
        config.graph.verify_token = Some(SecretString::from(stored.fb_verify_token));
    }
    Ok(())
}
