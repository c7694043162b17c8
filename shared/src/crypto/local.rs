//! The local keyring: data keys wrapped by a 256-bit master key kept in a file (mode 0600), the
//! embedded stand-in for KMS.
//!
//! The master key file holds exactly 32 random bytes. It is created on first use, atomically (written to
//! a temporary file opened `create_new` with mode 0600, synced, then hard-linked into place, so a
//! concurrent opener never reads a half-written key and an existing key is never replaced). An existing
//! file is refused if its length is not 32 or if any group/other permission bit is set: a key readable by
//! others is a leaked key, better to stop than to keep using it. [`LocalKeyring::open_existing`] never
//! creates one: start-up uses it when the store already holds wrapped keys (see `app.rs`).
//!
//! # Wrapped key format (version 1)
//!
//! ```text
//! [0x01] [nonce, 12 random bytes] [AES-256-GCM ciphertext of the 32-byte data key] [tag, 16]   = 61 bytes
//! ```
//!
//! The associated data is the canonical encoding of the encryption context: the format byte, then
//! `u32 BE count`, then for each pair sorted by key `u32 BE len(key) || key || u32 BE len(value) || value`.
//! A wrapped key moved to another owner's context does not unwrap, as with KMS.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use secrecy::zeroize::Zeroizing;

use super::keyring::{DataKey, GeneratedKey, KeyContext, Keyring, KeyringError, WrappedKey};

const FORMAT_V1: u8 = 0x01;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
const WRAPPED_LEN: usize = 1 + NONCE_LEN + KEY_LEN + TAG_LEN;

/// Why the master key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyFileError {
    #[error("the master key file holds {found} bytes, not {KEY_LEN}")]
    WrongLength { found: u64 },
    #[error(
        "the master key file is accessible to group or others (mode {mode:o}); it must be 0600"
    )]
    TooOpen { mode: u32 },
    #[error("the master key path is not a regular file")]
    NotAFile,
    #[error("the AES-256-GCM master key could not be set up")]
    KeySetup,
}

/// Data keys wrapped by a local master key file.
pub struct LocalKeyring {
    master: RandomizedNonceKey,
    path: PathBuf,
}

impl std::fmt::Debug for LocalKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyring")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
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

impl LocalKeyring {
    /// Opens the master key at `path`, creating it (and its folder, mode 0700) on first use.
    ///
    /// # Errors
    /// [`KeyringError::Unavailable`] if the file cannot be created or read, has the wrong length, or is
    /// readable or writable by group or others.
    pub fn open(path: &Path) -> Result<Self, KeyringError> {
        let bytes = match read_master_key(path) {
            Ok(bytes) => bytes,
            Err(ReadError::Missing) => create_master_key(path)?,
            Err(ReadError::Failed(e)) => return Err(e),
        };
        Self::from_bytes(&bytes, path)
    }

    /// Opens the master key at `path` without ever creating one: `None` if there is no file. For a
    /// store that already holds keys wrapped by a master key, where a new key would leave every one of
    /// them unreadable.
    ///
    /// # Errors
    /// As [`Self::open`], except that a missing file is `Ok(None)`.
    pub fn open_existing(path: &Path) -> Result<Option<Self>, KeyringError> {
        match read_master_key(path) {
            Ok(bytes) => Self::from_bytes(&bytes, path).map(Some),
            Err(ReadError::Missing) => Ok(None),
            Err(ReadError::Failed(e)) => Err(e),
        }
    }

    fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, KeyringError> {
        let master = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| unavailable("set up the master key", MasterKeyFileError::KeySetup))?;
        Ok(Self {
            master,
            path: path.to_owned(),
        })
    }

    /// Where the master key file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

enum ReadError {
    Missing,
    Failed(KeyringError),
}

fn read_master_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => {
            return Err(ReadError::Failed(unavailable(
                "open the master key file",
                e,
            )));
        }
    };
    let fail =
        |e: MasterKeyFileError| ReadError::Failed(unavailable("check the master key file", e));
    let meta = file
        .metadata()
        .map_err(|e| ReadError::Failed(unavailable("read the master key file's metadata", e)))?;
    if !meta.is_file() {
        return Err(fail(MasterKeyFileError::NotAFile));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(fail(MasterKeyFileError::TooOpen { mode }));
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(fail(MasterKeyFileError::WrongLength { found: meta.len() }));
    }
    // Read one byte more than expected, so a file that grew after the metadata check is still caught.
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
    (&mut file)
        .take(KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Failed(unavailable("read the master key file", e)))?;
    if bytes.len() != KEY_LEN {
        return Err(fail(MasterKeyFileError::WrongLength {
            found: bytes.len() as u64,
        }));
    }
    Ok(bytes)
}

fn create_master_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyringError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| unavailable("create the master key folder", e))?;

    let key = Zeroizing::new(super::random_bytes::<KEY_LEN>().to_vec());
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "master.key".to_owned());
    let temp = dir.join(format!(
        ".{file_name}.{}.tmp",
        crate::ids::base32_lower(&super::random_bytes::<8>())
    ));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        // A hard link fails if the target exists: the first creator wins and nobody overwrites a key.
        fs::hard_link(&temp, path)
    })();
    // The temporary name is removed whatever happened; the key lives on under `path` if the link won.
    let _ = fs::remove_file(&temp);
    match written {
        Ok(()) => {
            // Make the new directory entry durable too; if this fails the key still works in this run.
            if let Ok(d) = File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read_master_key(path) {
            Ok(bytes) => Ok(bytes),
            Err(ReadError::Failed(e)) => Err(e),
            Err(ReadError::Missing) => Err(unavailable(
                "create the master key file",
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )),
        },
        Err(e) => Err(unavailable("create the master key file", e)),
    }
}

/// The associated data of a wrap: the canonical encoding of the context (see the module doc).
fn context_aad(context: &KeyContext) -> Vec<u8> {
    let mut pairs = context.pairs();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut aad = vec![FORMAT_V1];
    aad.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
    for (k, v) in pairs {
        for part in [k.as_bytes(), v.as_bytes()] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            aad.extend_from_slice(&len.to_be_bytes());
            aad.extend_from_slice(part);
        }
    }
    aad
}

#[async_trait::async_trait]
impl Keyring for LocalKeyring {
    async fn generate_data_key(&self, context: &KeyContext) -> Result<GeneratedKey, KeyringError> {
        let plaintext = DataKey::from_bytes(super::random_bytes::<KEY_LEN>());
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.push(FORMAT_V1);
        out.extend_from_slice(&[0u8; NONCE_LEN]);
        out.extend_from_slice(plaintext.expose());
        let aad = context_aad(context);
        let (nonce, tag) = self
            .master
            .seal_in_place_separate_tag(Aad::from(aad.as_slice()), &mut out[1 + NONCE_LEN..])
            .map_err(|_| unavailable("wrap a data key", MasterKeyFileError::KeySetup))?;
        out[1..1 + NONCE_LEN].copy_from_slice(nonce.as_ref());
        out.extend_from_slice(tag.as_ref());
        Ok(GeneratedKey {
            plaintext,
            wrapped: WrappedKey(out),
        })
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &WrappedKey,
        context: &KeyContext,
    ) -> Result<DataKey, KeyringError> {
        let bytes = &wrapped.0;
        if bytes.len() != WRAPPED_LEN || bytes[0] != FORMAT_V1 {
            return Err(KeyringError::InvalidWrappedKey);
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[1..1 + NONCE_LEN])
            .map_err(|_| KeyringError::InvalidWrappedKey)?;
        let aad = context_aad(context);
        let mut buf = Zeroizing::new(bytes[1 + NONCE_LEN..].to_vec());
        let plain = self
            .master
            .open_in_place(nonce, Aad::from(aad.as_slice()), &mut buf)
            .map_err(|_| KeyringError::InvalidWrappedKey)?;
        let key: [u8; KEY_LEN] = plain
            .try_into()
            .map_err(|_| KeyringError::InvalidWrappedKey)?;
        Ok(DataKey::from_bytes(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("temp dir: {e}"),
        }
    }

    #[test]
    fn creates_a_0600_file_of_32_bytes_and_reopens_it() -> Result<(), Box<dyn std::error::Error>> {
        let dir = temp_dir();
        let path = dir.path().join("sub/master.key");
        let _k = LocalKeyring::open(&path)?;
        let meta = fs::metadata(&path)?;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        let first = fs::read(&path)?;
        let _again = LocalKeyring::open(&path)?;
        assert_eq!(fs::read(&path)?, first, "an existing key is never replaced");
        assert_eq!(
            fs::read_dir(dir.path().join("sub"))?.count(),
            1,
            "no temporary file left"
        );
        Ok(())
    }

    #[test]
    fn refuses_a_file_readable_by_others_or_of_the_wrong_length()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = temp_dir();
        let open = dir.path().join("open.key");
        fs::write(&open, [7u8; 32])?;
        fs::set_permissions(&open, fs::Permissions::from_mode(0o640))?;
        assert!(matches!(
            LocalKeyring::open(&open),
            Err(KeyringError::Unavailable { .. })
        ));
        let short = dir.path().join("short.key");
        fs::write(&short, [7u8; 31])?;
        fs::set_permissions(&short, fs::Permissions::from_mode(0o600))?;
        let err = LocalKeyring::open(&short).err();
        assert!(
            matches!(err, Some(KeyringError::Unavailable { .. })),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn open_existing_never_creates_a_key_and_opens_one_that_exists()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = temp_dir();
        let path = dir.path().join("master.key");
        assert!(LocalKeyring::open_existing(&path)?.is_none());
        assert!(!path.exists(), "no key file is created");
        let _created = LocalKeyring::open(&path)?;
        assert!(LocalKeyring::open_existing(&path)?.is_some());
        fs::write(&path, [7u8; 31])?;
        assert!(matches!(
            LocalKeyring::open_existing(&path),
            Err(KeyringError::Unavailable { .. })
        ));
        Ok(())
    }

    #[tokio::test]
    async fn keys_from_two_master_keys_do_not_mix() -> Result<(), Box<dyn std::error::Error>> {
        let dir = temp_dir();
        let a = LocalKeyring::open(&dir.path().join("a.key"))?;
        let b = LocalKeyring::open(&dir.path().join("b.key"))?;
        let ctx = KeyContext::new("account:x");
        let g = a.generate_data_key(&ctx).await?;
        assert_eq!(g.wrapped.0.len(), WRAPPED_LEN);
        assert_eq!(
            a.decrypt_data_key(&g.wrapped, &ctx).await?.expose(),
            g.plaintext.expose()
        );
        assert!(matches!(
            b.decrypt_data_key(&g.wrapped, &ctx).await,
            Err(KeyringError::InvalidWrappedKey)
        ));
        Ok(())
    }
}
