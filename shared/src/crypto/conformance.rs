//! The crypto conformance suite (feature `test-support`): one set of `pub async fn` cases run against
//! every keyring backend, each case also driving a [`KeyManager`] on top of the keyring with a real
//! SQLite item store. Backends instantiate it in `tests/conformance/crypto.rs`.
//!
//! The keyring is wrapped in a [`CountingKeyring`], so the KMS budget of SPEC §3 (one unwrap per data key
//! per cache lifetime per process) is asserted, not assumed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{
    BLIND_INDEX_OWNER, CryptoError, DataKey, GeneratedKey, KeyCachePolicy, KeyContext, KeyManager,
    Keyring, KeyringError, KmsKeyring, LocalKeyring, Sealed, WrappedKey,
};
use crate::clock::{Clock, ManualClock, Timestamp};
use crate::store::sqlite::SqliteStore;
use crate::store::{Condition, Item, ItemKey, ItemStore, KeyRange, Query};
use crate::test_support::{PROBE, unique_name};

/// What every case returns: a failed `?` or assertion fails the test.
pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A keyring backend under test, with whatever must live as long as it (a temporary folder).
#[derive(Debug)]
pub struct KeyringUnderTest {
    keyring: Arc<dyn Keyring>,
    key_file: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

impl KeyringUnderTest {
    pub fn keyring(&self) -> Arc<dyn Keyring> {
        Arc::clone(&self.keyring)
    }
    /// The local backend's master key file.
    pub fn key_file(&self) -> Option<&Path> {
        self.key_file.as_deref()
    }
}

/// A [`LocalKeyring`] on a master key file in a fresh temporary folder.
pub async fn local_keyring() -> Result<KeyringUnderTest, Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keys/master.key");
    let keyring = LocalKeyring::open(&path)?;
    Ok(KeyringUnderTest {
        keyring: Arc::new(keyring),
        key_file: Some(path),
        _dir: Some(dir),
    })
}

/// A [`KmsKeyring`] on a fresh symmetric key in the moto emulator.
pub async fn kms_moto_keyring() -> Result<KeyringUnderTest, Box<dyn std::error::Error + Send + Sync>>
{
    let config = crate::test_support::moto::sdk_config().await;
    let client = aws_sdk_kms::Client::new(&config);
    let key_id = crate::test_support::moto::create_kms_key(&client, "qchat-conformance").await?;
    Ok(KeyringUnderTest {
        keyring: Arc::new(KmsKeyring::new(client, key_id)),
        key_file: None,
        _dir: None,
    })
}

/// A keyring decorator counting the calls that reach the backend (KMS calls, in AWS).
#[derive(Debug)]
pub struct CountingKeyring {
    inner: Arc<dyn Keyring>,
    generates: AtomicUsize,
    decrypts: AtomicUsize,
    decrypt_delay: Duration,
}

impl CountingKeyring {
    pub fn new(inner: Arc<dyn Keyring>) -> Self {
        Self {
            inner,
            generates: AtomicUsize::new(0),
            decrypts: AtomicUsize::new(0),
            decrypt_delay: Duration::ZERO,
        }
    }
    /// Makes every unwrap slow, so concurrent cache misses overlap for sure.
    pub fn with_decrypt_delay(mut self, delay: Duration) -> Self {
        self.decrypt_delay = delay;
        self
    }
    pub fn generates(&self) -> usize {
        self.generates.load(Ordering::SeqCst)
    }
    pub fn decrypts(&self) -> usize {
        self.decrypts.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Keyring for CountingKeyring {
    async fn generate_data_key(&self, context: &KeyContext) -> Result<GeneratedKey, KeyringError> {
        self.generates.fetch_add(1, Ordering::SeqCst);
        self.inner.generate_data_key(context).await
    }
    async fn decrypt_data_key(
        &self,
        wrapped: &WrappedKey,
        context: &KeyContext,
    ) -> Result<DataKey, KeyringError> {
        self.decrypts.fetch_add(1, Ordering::SeqCst);
        if !self.decrypt_delay.is_zero() {
            tokio::time::sleep(self.decrypt_delay).await;
        }
        self.inner.decrypt_data_key(wrapped, context).await
    }
}

/// A key manager over a counting keyring and a fresh SQLite store, on a manual clock.
#[derive(Debug)]
struct Rig {
    manager: Arc<KeyManager>,
    counting: Arc<CountingKeyring>,
    clock: Arc<ManualClock>,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn new(
        keyring: Arc<dyn Keyring>,
        policy: KeyCachePolicy,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Self::with_counting(CountingKeyring::new(keyring), policy).await
    }

    async fn with_counting(
        counting: CountingKeyring,
        policy: KeyCachePolicy,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let dir = tempfile::tempdir()?;
        let clock = Arc::new(ManualClock::at(Timestamp::from_secs(1_800_000_000)));
        let store = Arc::new(SqliteStore::open(
            &dir.path().join("store.sqlite"),
            Arc::clone(&clock) as Arc<dyn Clock>,
        )?);
        store.ensure_schema().await?;
        let counting = Arc::new(counting);
        let manager = Arc::new(KeyManager::new(
            Arc::clone(&store) as Arc<dyn ItemStore>,
            Arc::clone(&counting) as Arc<dyn Keyring>,
            Arc::clone(&clock) as Arc<dyn Clock>,
            policy,
        ));
        Ok(Self {
            manager,
            counting,
            clock,
            store,
            _dir: dir,
        })
    }

    /// Another process: its own cache and counter, the same store, keyring and clock.
    fn other_process(&self, policy: KeyCachePolicy) -> (KeyManager, Arc<CountingKeyring>) {
        let counting = Arc::new(CountingKeyring::new(Arc::clone(&self.counting.inner)));
        let manager = KeyManager::new(
            Arc::clone(&self.store) as Arc<dyn ItemStore>,
            Arc::clone(&counting) as Arc<dyn Keyring>,
            Arc::clone(&self.clock) as Arc<dyn Clock>,
            policy,
        );
        (manager, counting)
    }
}

fn owner() -> String {
    unique_name("account:conformance")
}

fn item_key() -> ItemKey {
    ItemKey::new(unique_name("LEAD"), "PROFILE")
}

/// The value with byte `at` XOR-ed with `mask`.
fn tweak(sealed: &Sealed, at: usize, mask: u8) -> Sealed {
    let mut bytes = sealed.as_bytes().to_vec();
    if let Some(b) = bytes.get_mut(at) {
        *b ^= mask;
    }
    Sealed::from_bytes(bytes)
}

/// The value with the lowest bit of byte `at` flipped.
fn flip(sealed: &Sealed, at: usize) -> Sealed {
    tweak(sealed, at, 0x01)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

// --- keyring ---------------------------------------------------------------------------------------

/// A generated data key unwraps to itself under its context; two keys differ; the wrapped form hides it.
pub async fn keyring_round_trip(keyring: Arc<dyn Keyring>) -> TestResult {
    let ctx = KeyContext::new(owner());
    let a = keyring.generate_data_key(&ctx).await?;
    let b = keyring.generate_data_key(&ctx).await?;
    assert_ne!(a.plaintext.expose(), b.plaintext.expose());
    assert!(!contains(&a.wrapped.0, a.plaintext.expose()));
    let unwrapped = keyring.decrypt_data_key(&a.wrapped, &ctx).await?;
    assert_eq!(unwrapped.expose(), a.plaintext.expose());
    Ok(())
}

/// Owner A's wrapped key does not unwrap under owner B's context.
pub async fn keyring_refuses_another_owners_context(keyring: Arc<dyn Keyring>) -> TestResult {
    let a = KeyContext::new(owner());
    let b = KeyContext::new(owner());
    let generated = keyring.generate_data_key(&a).await?;
    let result = keyring.decrypt_data_key(&generated.wrapped, &b).await;
    assert!(
        matches!(result, Err(KeyringError::InvalidWrappedKey)),
        "{result:?}"
    );
    Ok(())
}

/// A wrapped key with a flipped bit does not unwrap.
pub async fn keyring_refuses_a_tampered_wrapped_key(keyring: Arc<dyn Keyring>) -> TestResult {
    let ctx = KeyContext::new(owner());
    let generated = keyring.generate_data_key(&ctx).await?;
    let mut bytes = generated.wrapped.0.clone();
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x01;
    }
    let result = keyring.decrypt_data_key(&WrappedKey(bytes), &ctx).await;
    assert!(
        matches!(result, Err(KeyringError::InvalidWrappedKey)),
        "{result:?}"
    );
    Ok(())
}

// --- field encryption ------------------------------------------------------------------------------

/// Values of any length round-trip, also through the store, and through `KeyManager::open`.
pub async fn field_round_trip(keyring: Arc<dyn Keyring>) -> TestResult {
    let rig = Rig::new(keyring, KeyCachePolicy::default()).await?;
    let owner = owner();
    rig.manager.create(&owner).await?;
    let cipher = rig.manager.cipher(&owner).await?;
    assert_eq!(cipher.current_version(), 1);
    let key = item_key();
    for plaintext in [&b""[..], b"a", b"alice@example.com", &[0xA5; 4096][..]] {
        let sealed = cipher.seal(&key, "secret", plaintext)?;
        assert_eq!(
            sealed.as_bytes().len(),
            super::field::OVERHEAD + plaintext.len()
        );
        assert_eq!(&*cipher.open(&key, "secret", &sealed)?, plaintext);
        assert_eq!(
            &*rig.manager.open(&owner, &key, "secret", &sealed).await?,
            plaintext
        );
    }
    // Through the store: what is read back opens.
    let sealed = cipher.seal(&key, "secret", b"stored value")?;
    rig.store
        .put(
            Item::new(&PROBE, key.clone()).sealed("secret", sealed)?,
            Condition::Always,
        )
        .await?;
    let read = rig.store.get(&key).await?.ok_or("item not found")?;
    let stored = read.get_sealed("secret").ok_or("attribute not found")?;
    assert_eq!(&*cipher.open(&key, "secret", &stored)?, b"stored value");
    Ok(())
}

/// A flipped bit in the ciphertext, nonce, tag, format or key-version bytes, or a truncation, is refused.
pub async fn tampered_values_are_rejected(keyring: Arc<dyn Keyring>) -> TestResult {
    let rig = Rig::new(keyring, KeyCachePolicy::default()).await?;
    let owner = owner();
    rig.manager.create(&owner).await?;
    let cipher = rig.manager.cipher(&owner).await?;
    let key = item_key();
    let sealed = cipher.seal(&key, "secret", b"alice@example.com")?;
    let len = sealed.as_bytes().len();
    let open = |s: &Sealed| cipher.open(&key, "secret", s);

    for (what, at) in [
        ("ciphertext", 17),
        ("ciphertext end", len - 17),
        ("nonce", 5),
        ("nonce end", 16),
        ("tag", len - 16),
        ("tag end", len - 1),
    ] {
        let result = open(&flip(&sealed, at));
        assert!(
            matches!(result, Err(CryptoError::Undecryptable)),
            "{what}: {result:?}"
        );
    }
    let result = open(&flip(&sealed, 0));
    assert!(
        matches!(result, Err(CryptoError::UnknownFormat)),
        "format byte: {result:?}"
    );
    // Version 1 -> 0 and 1 -> 257: no such key.
    for at in [4, 3] {
        let tampered = flip(&sealed, at);
        let result = open(&tampered);
        assert!(
            matches!(result, Err(CryptoError::KeyVersionNotLoaded { .. })),
            "version byte {at}: {result:?}"
        );
        let result = rig.manager.open(&owner, &key, "secret", &tampered).await;
        assert!(
            matches!(result, Err(CryptoError::NoKey)),
            "version byte {at}: {result:?}"
        );
    }
    // Version 1 -> 2 once version 2 exists: the header is authenticated, so the other key refuses it.
    rig.manager.rotate(&owner).await?;
    let result = rig
        .manager
        .open(&owner, &key, "secret", &tweak(&sealed, 4, 0x03))
        .await;
    assert!(
        matches!(result, Err(CryptoError::Undecryptable)),
        "version 2: {result:?}"
    );
    // Truncated and extended.
    let truncated = Sealed::from_bytes(sealed.as_bytes()[..len - 1].to_vec());
    assert!(matches!(open(&truncated), Err(CryptoError::Undecryptable)));
    let header_only = Sealed::from_bytes(sealed.as_bytes()[..20].to_vec());
    assert!(matches!(
        open(&header_only),
        Err(CryptoError::Undecryptable)
    ));
    let mut longer = sealed.as_bytes().to_vec();
    longer.push(0);
    assert!(matches!(
        open(&Sealed::from_bytes(longer)),
        Err(CryptoError::Undecryptable)
    ));
    // The untouched value still opens.
    assert_eq!(&*open(&sealed)?, b"alice@example.com");
    Ok(())
}

/// A value copied to another attribute, partition key or sort key does not open.
pub async fn moved_values_do_not_open(keyring: Arc<dyn Keyring>) -> TestResult {
    let rig = Rig::new(keyring, KeyCachePolicy::default()).await?;
    let owner = owner();
    rig.manager.create(&owner).await?;
    let cipher = rig.manager.cipher(&owner).await?;
    let key = ItemKey::new("LEAD#1", "PROFILE");
    let sealed = cipher.seal(&key, "email", b"alice@example.com")?;
    for (k, attribute) in [
        (key.clone(), "name"),
        (ItemKey::new("LEAD#2", "PROFILE"), "email"),
        (ItemKey::new("LEAD#1", "PROFILE#2"), "email"),
        // The same bytes split differently between the parts.
        (ItemKey::new("LEAD#1P", "ROFILE"), "email"),
        (ItemKey::new("LEAD#1", "PROFILEe"), "mail"),
    ] {
        let result = cipher.open(&k, attribute, &sealed);
        assert!(
            matches!(result, Err(CryptoError::Undecryptable)),
            "{k:?}/{attribute}: {result:?}"
        );
    }
    assert_eq!(&*cipher.open(&key, "email", &sealed)?, b"alice@example.com");
    Ok(())
}

/// A value sealed for one owner does not open with another owner's cipher.
pub async fn another_owners_cipher_does_not_open(keyring: Arc<dyn Keyring>) -> TestResult {
    let rig = Rig::new(keyring, KeyCachePolicy::default()).await?;
    let (a, b) = (owner(), owner());
    rig.manager.create(&a).await?;
    rig.manager.create(&b).await?;
    let key = item_key();
    let sealed = rig
        .manager
        .cipher(&a)
        .await?
        .seal(&key, "secret", b"alice@example.com")?;
    let result = rig.manager.cipher(&b).await?.open(&key, "secret", &sealed);
    assert!(
        matches!(result, Err(CryptoError::Undecryptable)),
        "{result:?}"
    );
    let result = rig.manager.open(&b, &key, "secret", &sealed).await;
    assert!(
        matches!(result, Err(CryptoError::Undecryptable)),
        "{result:?}"
    );
    Ok(())
}

/// 100 000 encryptions under one key never repeat a nonce.
pub async fn nonces_never_repeat(keyring: Arc<dyn Keyring>) -> TestResult {
    const N: usize = 100_000;
    let rig = Rig::new(keyring, KeyCachePolicy::default()).await?;
    let owner = owner();
    rig.manager.create(&owner).await?;
    let cipher = rig.manager.cipher(&owner).await?;
    let key = item_key();
    let mut nonces = HashSet::with_capacity(N);
    for _ in 0..N {
        let sealed = cipher.seal(&key, "secret", b"same plaintext every time")?;
        let nonce: [u8; 12] = sealed.as_bytes()[5..17].try_into()?;
        assert!(nonces.insert(nonce), "a nonce repeated");
    }
    assert_eq!(nonces.len(), N);
    Ok(())
}

/// Neither a plaintext nor any 8-byte piece of it appears in its sealed bytes; equal plaintexts seal
/// differently.
pub async fn sealed_bytes_do_not_contain_the_plaintext(keyring: Arc<dyn Keyring>) -> TestResult {
    let rig = Rig::new(keyring, KeyCachePolicy::default()).await?;
    let owner = owner();
    rig.manager.create(&owner).await?;
    let cipher = rig.manager.cipher(&owner).await?;
    let key = item_key();
    let plaintexts: [&[u8]; 3] = [b"alice@example.com", b"+44 20 7946 0958", &[b'A'; 256]];
    for plaintext in plaintexts {
        let one = cipher.seal(&key, "secret", plaintext)?;
        let two = cipher.seal(&key, "secret", plaintext)?;
        assert_ne!(one, two);
        for sealed in [&one, &two] {
            for piece in plaintext.windows(8) {
                assert!(
                    !contains(sealed.as_bytes(), piece),
                    "plaintext visible in the sealed bytes"
                );
            }
        }
    }
    Ok(())
}

/// Destroying a data key leaves its values unreadable: in held handles, through the manager, in another
/// process; the key items are gone; destroying again is fine.
pub async fn destroyed_key_leaves_values_unreadable(keyring: Arc<dyn Keyring>) -> TestResult {
    let rig = Rig::new(keyring, KeyCachePolicy::default()).await?;
    let owner = owner();
    rig.manager.create(&owner).await?;
    rig.manager.rotate(&owner).await?;
    let key = item_key();
    let held = rig.manager.cipher(&owner).await?;
    let sealed = held.seal(&key, "secret", b"alice@example.com")?;

    rig.manager.destroy(&owner).await?;

    let result = held.open(&key, "secret", &sealed);
    assert!(
        matches!(result, Err(CryptoError::KeyDestroyed)),
        "held handle: {result:?}"
    );
    let result = held.seal(&key, "secret", b"x");
    assert!(
        matches!(result, Err(CryptoError::KeyDestroyed)),
        "held handle: {result:?}"
    );
    let result = rig.manager.cipher(&owner).await;
    assert!(
        matches!(result, Err(CryptoError::NoKey)),
        "cipher: {result:?}"
    );
    let result = rig.manager.open(&owner, &key, "secret", &sealed).await;
    assert!(
        matches!(result, Err(CryptoError::NoKey)),
        "open: {result:?}"
    );
    let (other, _) = rig.other_process(KeyCachePolicy::default());
    let result = other.open(&owner, &key, "secret", &sealed).await;
    assert!(
        matches!(result, Err(CryptoError::NoKey)),
        "other process: {result:?}"
    );

    let page = rig
        .store
        .query(&Query {
            range: KeyRange::All,
            ..Query::partition(format!("DATAKEY#{owner}"), 10)
        })
        .await?;
    assert!(page.items.is_empty(), "data key items remain");
    rig.manager.destroy(&owner).await?;
    Ok(())
}

/// After a rotation new values are sealed with the new version and old values still open, here and in
/// another process (which loads the old version once, on demand).
pub async fn rotation_keeps_old_values_readable(keyring: Arc<dyn Keyring>) -> TestResult {
    let rig = Rig::new(keyring, KeyCachePolicy::default()).await?;
    let owner = owner();
    rig.manager.create(&owner).await?;
    let key = item_key();
    let old = rig
        .manager
        .cipher(&owner)
        .await?
        .seal(&key, "secret", b"old value")?;
    assert_eq!(old.key_version()?, 1);

    assert_eq!(rig.manager.rotate(&owner).await?, 2);
    let cipher = rig.manager.cipher(&owner).await?;
    assert_eq!(cipher.current_version(), 2);
    let new = cipher.seal(&key, "secret", b"new value")?;
    assert_eq!(new.key_version()?, 2);
    assert_eq!(&*cipher.open(&key, "secret", &old)?, b"old value");
    assert_eq!(&*cipher.open(&key, "secret", &new)?, b"new value");

    let (other, calls) = rig.other_process(KeyCachePolicy::default());
    let fresh = other.cipher(&owner).await?;
    assert_eq!(fresh.current_version(), 2);
    assert_eq!(
        calls.decrypts(),
        1,
        "a miss unwraps only the current version"
    );
    let result = fresh.open(&key, "secret", &old);
    assert!(
        matches!(result, Err(CryptoError::KeyVersionNotLoaded { version: 1 })),
        "{result:?}"
    );
    assert_eq!(
        &*other.open(&owner, &key, "secret", &old).await?,
        b"old value"
    );
    assert_eq!(
        &*other.open(&owner, &key, "secret", &old).await?,
        b"old value"
    );
    assert_eq!(calls.decrypts(), 2, "the old version is unwrapped once");
    assert!(other.cipher(&owner).await?.holds_version(1));
    assert_eq!(
        &*other.open(&owner, &key, "secret", &new).await?,
        b"new value"
    );
    assert_eq!(calls.decrypts(), 2);
    Ok(())
}

/// [`KeyManager::open_lead`] opens a lead's values of both formats, of an older key version too (loaded
/// once, as [`KeyManager::open`] does); without the lead's secret, or with another lead's, a format 2
/// value fails as undecryptable while a format 1 value still opens; the owner's key alone opens no
/// format 2 value.
pub async fn lead_values_open_with_their_secret_only(keyring: Arc<dyn Keyring>) -> TestResult {
    let rig = Rig::new(keyring, KeyCachePolicy::default()).await?;
    let owner = owner();
    rig.manager.create(&owner).await?;
    let key = item_key();
    let secret = super::LeadSecret::generate()?;
    let cipher = rig.manager.cipher(&owner).await?;
    let old_lead = cipher
        .for_lead(&secret, "lead1")?
        .seal(&key, "subject", b"psid v1")?;
    let owners = cipher.seal(&key, "subject", b"psid of an old lead")?;
    assert!(old_lead.is_lead_sealed() && !owners.is_lead_sealed());
    assert_eq!(rig.manager.rotate(&owner).await?, 2);
    let new_lead = rig
        .manager
        .cipher(&owner)
        .await?
        .for_lead(&secret, "lead1")?
        .seal(&key, "subject", b"psid v2")?;
    assert_eq!(new_lead.key_version()?, 2);

    let (other, calls) = rig.other_process(KeyCachePolicy::default());
    for (sealed, plain) in [
        (&old_lead, &b"psid v1"[..]),
        (&new_lead, b"psid v2"),
        (&owners, b"psid of an old lead"),
    ] {
        let opened = other
            .open_lead(&owner, Some(&secret), "lead1", &key, "subject", sealed)
            .await?;
        assert_eq!(&*opened, plain);
    }
    assert_eq!(calls.decrypts(), 2, "each version unwrapped once");
    let another = super::LeadSecret::generate()?;
    for (secret, lead) in [
        (None, "lead1"),
        (Some(&another), "lead1"),
        (Some(&secret), "lead2"),
    ] {
        let result = other
            .open_lead(&owner, secret, lead, &key, "subject", &new_lead)
            .await;
        assert!(
            matches!(result, Err(CryptoError::Undecryptable)),
            "{result:?}"
        );
    }
    let result = other.open(&owner, &key, "subject", &old_lead).await;
    assert!(
        matches!(result, Err(CryptoError::Undecryptable)),
        "{result:?}"
    );
    assert_eq!(
        &*other
            .open_lead(&owner, None, "lead1", &key, "subject", &owners)
            .await?,
        b"psid of an old lead"
    );
    Ok(())
}

/// Creating twice keeps the first key; the reserved blind-index owner and the empty owner are refused.
pub async fn create_is_idempotent_and_owners_are_checked(keyring: Arc<dyn Keyring>) -> TestResult {
    let rig = Rig::new(keyring, KeyCachePolicy::default()).await?;
    let owner = owner();
    rig.manager.create(&owner).await?;
    let key = item_key();
    let sealed = rig
        .manager
        .cipher(&owner)
        .await?
        .seal(&key, "secret", b"v")?;
    rig.manager.create(&owner).await?;
    let (other, _) = rig.other_process(KeyCachePolicy::default());
    other.create(&owner).await?;
    assert_eq!(&*other.open(&owner, &key, "secret", &sealed).await?, b"v");
    let result = rig.manager.cipher("nobody").await;
    assert!(matches!(result, Err(CryptoError::NoKey)), "{result:?}");
    for reserved in [BLIND_INDEX_OWNER, ""] {
        let result = rig.manager.cipher(reserved).await;
        assert!(
            matches!(result, Err(CryptoError::InvalidOwner)),
            "{result:?}"
        );
        let result = rig.manager.destroy(reserved).await;
        assert!(
            matches!(result, Err(CryptoError::InvalidOwner)),
            "{result:?}"
        );
        let result = rig.manager.rotate(reserved).await;
        assert!(
            matches!(result, Err(CryptoError::InvalidOwner)),
            "{result:?}"
        );
    }
    Ok(())
}

// --- the KMS budget --------------------------------------------------------------------------------

/// The keyring is called once per data key per cache lifetime: the first `cipher` unwraps, the next
/// 1000 uses do not, and the key is unwrapped again once after max age and once after max uses.
pub async fn keyring_is_called_once_per_cache_lifetime(keyring: Arc<dyn Keyring>) -> TestResult {
    let policy = KeyCachePolicy {
        max_age: Duration::from_secs(300),
        max_uses: 5_000,
    };
    let rig = Rig::new(keyring, policy).await?;
    let owner = owner();
    // Created by another process (registration), so this one starts with a cold cache.
    let (registrar, _) = rig.other_process(policy);
    registrar.create(&owner).await?;
    let key = item_key();
    let calls = &rig.counting;

    let first = rig.manager.cipher(&owner).await?;
    assert_eq!(calls.decrypts(), 1, "first cipher");
    let sealed = first.seal(&key, "secret", b"value")?;
    for i in 0..1000 {
        let cipher = rig.manager.cipher(&owner).await?;
        if i % 2 == 0 {
            cipher.seal(&key, "secret", b"value")?;
        } else {
            cipher.open(&key, "secret", &sealed)?;
        }
    }
    assert_eq!(calls.decrypts(), 1, "1000 uses within the cache lifetime");

    rig.clock.advance_secs(299);
    rig.manager
        .cipher(&owner)
        .await?
        .open(&key, "secret", &sealed)?;
    assert_eq!(calls.decrypts(), 1, "just before max age");
    rig.clock.advance_secs(1);
    let after_age = rig.manager.cipher(&owner).await?;
    assert_eq!(calls.decrypts(), 2, "after max age");

    for _ in 0..policy.max_uses {
        rig.manager
            .cipher(&owner)
            .await?
            .open(&key, "secret", &sealed)?;
    }
    assert_eq!(calls.decrypts(), 2, "max uses reached, not passed");
    drop(after_age);
    rig.manager
        .cipher(&owner)
        .await?
        .open(&key, "secret", &sealed)?;
    assert_eq!(calls.decrypts(), 3, "after max uses");

    // Only unwraps here: the registrar made the key, and sealing never calls the keyring.
    assert_eq!(calls.generates(), 0);
    Ok(())
}

/// Concurrent cache misses for one owner cause one unwrap; for the blind-index key, one creation.
pub async fn concurrent_misses_unwrap_once(keyring: Arc<dyn Keyring>) -> TestResult {
    let counting = CountingKeyring::new(keyring).with_decrypt_delay(Duration::from_millis(50));
    let rig = Rig::with_counting(counting, KeyCachePolicy::default()).await?;
    let owner = owner();
    let (registrar, _) = rig.other_process(KeyCachePolicy::default());
    registrar.create(&owner).await?;

    let mut tasks = Vec::new();
    for _ in 0..32 {
        let manager = Arc::clone(&rig.manager);
        let owner = owner.clone();
        tasks.push(tokio::spawn(async move {
            manager.cipher(&owner).await.map(|c| c.current_version())
        }));
    }
    let mut indexers = Vec::new();
    for _ in 0..8 {
        let manager = Arc::clone(&rig.manager);
        indexers.push(tokio::spawn(async move {
            manager
                .blind_indexer()
                .await
                .map(|i| i.index("email", b"x"))
        }));
    }
    for task in tasks {
        assert_eq!(task.await??, 1);
    }
    let mut indexes = HashSet::new();
    for task in indexers {
        indexes.insert(task.await??);
    }
    assert_eq!(
        rig.counting.decrypts(),
        1,
        "one unwrap for 32 concurrent misses"
    );
    assert_eq!(
        rig.counting.generates(),
        1,
        "one blind-index key for 8 concurrent first uses"
    );
    assert_eq!(indexes.len(), 1);
    Ok(())
}

// --- blind indexes ---------------------------------------------------------------------------------

/// Same input, same index (also in another process); a different purpose, value or system key gives a
/// different index; the blind-index key is a key of its own.
pub async fn blind_index_properties(keyring: Arc<dyn Keyring>) -> TestResult {
    let rig = Rig::new(Arc::clone(&keyring), KeyCachePolicy::default()).await?;
    let indexer = rig.manager.blind_indexer().await?;
    let email = b"alice@example.com";
    let index = indexer.index("email", email);
    assert_eq!(index, indexer.index("email", email));
    assert_eq!(
        index,
        rig.manager.blind_indexer().await?.index("email", email)
    );
    assert_ne!(index, indexer.index("psid", email));
    assert_ne!(index, indexer.index("email", b"bob@example.com"));
    assert!(!index.as_str().contains("alice"));
    assert_eq!(index.as_str().len(), 43, "base64url of 32 bytes, unpadded");

    let (other, calls) = rig.other_process(KeyCachePolicy::default());
    assert_eq!(index, other.blind_indexer().await?.index("email", email));
    assert_eq!(
        (calls.generates(), calls.decrypts()),
        (0, 1),
        "the key is made once and reused"
    );

    let elsewhere = Rig::new(keyring, KeyCachePolicy::default()).await?;
    assert_ne!(
        index,
        elsewhere
            .manager
            .blind_indexer()
            .await?
            .index("email", email),
        "another system key"
    );
    Ok(())
}

// --- backend-specific ------------------------------------------------------------------------------

/// KMS only: a failure other than an invalid ciphertext (here: an unknown KMS key) is `Unavailable`,
/// naming the operation and keeping the SDK's error as the source.
pub async fn kms_failure_keeps_the_sdk_error_as_source() -> TestResult {
    use aws_sdk_kms::error::SdkError;
    use aws_sdk_kms::operation::decrypt::DecryptError;
    use aws_sdk_kms::operation::generate_data_key::GenerateDataKeyError;

    let config = crate::test_support::moto::sdk_config().await;
    let keyring = KmsKeyring::new(
        aws_sdk_kms::Client::new(&config),
        format!("alias/{}", unique_name("qchat-missing")),
    );
    let ctx = KeyContext::new(owner());
    match keyring.generate_data_key(&ctx).await {
        Err(KeyringError::Unavailable { operation, source }) => {
            assert_eq!(operation, "kms:GenerateDataKey");
            assert!(
                source
                    .downcast_ref::<SdkError<GenerateDataKeyError>>()
                    .is_some(),
                "source is the SDK error: {source:?}"
            );
        }
        other => return Err(format!("expected Unavailable, got {other:?}").into()),
    }
    match keyring
        .decrypt_data_key(&WrappedKey(vec![1; 64]), &ctx)
        .await
    {
        Err(KeyringError::Unavailable { operation, source }) => {
            assert_eq!(operation, "kms:Decrypt");
            assert!(
                source.downcast_ref::<SdkError<DecryptError>>().is_some(),
                "source is the SDK error: {source:?}"
            );
        }
        other => return Err(format!("expected Unavailable, got {other:?}").into()),
    }
    Ok(())
}
