//! Per-owner data keys: created, rotated and destroyed in the store (wrapped by the keyring), unwrapped
//! on demand and cached in memory for a bounded time and number of uses.
//!
//! # Storage
//! One `data_key` item per key version: `pk = DATAKEY#<owner>`, `sk = V#<version, 10 digits>` (so the
//! sort order is the version order and the newest is the first of a descending query), attributes
//! `wrapped` (the keyring's ciphertext of the key) and `created` (ms). The highest version is current:
//! new values are sealed with it; older versions stay to open older values.
//!
//! # Cache and KMS budget (SPEC §3)
//! A cache miss for an owner costs one store query and one keyring unwrap (a value sealed under an older
//! version costs one more `get` and unwrap for that version, once). Loads are single-flight per owner:
//! concurrent misses wait for one unwrap. An unwrapped key is used until it is [`KeyCachePolicy::max_age`]
//! old or has done [`KeyCachePolicy::max_uses`] seals/opens/indexes, then the next request unwraps it
//! again, so at most one keyring call per data key per cache lifetime per process. Key material lives in
//! aws-lc-rs contexts that are cleansed on drop; stale entries are swept at most once per max age.
//!
//! # Lifecycle
//! - [`KeyManager::create`] is idempotent: a second call keeps the existing key (a retried registration
//!   never replaces a key that may already seal data) and costs one wasted `GenerateDataKey`.
//! - [`KeyManager::rotate`] writes version n+1; this process seals with it at once, other processes within
//!   one max age (until then they still seal with n, which stays readable).
//! - [`KeyManager::destroy`] deletes every version (crypto-shredding: copies of the ciphertexts, e.g. in
//!   backups, become unreadable) and evicts the cache; cipher handles still held fail with
//!   [`CryptoError::KeyDestroyed`], later requests with [`CryptoError::NoKey`]. Other processes' caches
//!   forget the key within one max age. Idempotent.
//! - [`KeyManager::retire_versions`] deletes chosen older versions (never the newest): for a key whose
//!   values all expire, a version goes once what it sealed has expired (the retention sweep rotates the
//!   registrations key daily and retires its versions so).
//! - The blind-index key (owner [`BLIND_INDEX_OWNER`]) is made on first use and never rotated or
//!   destroyed through this API; no field cipher is ever made from it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::CryptoError;
use super::blind::{BlindIndexer, IndexKey};
use super::field::{FieldCipher, FieldKey, LeadSecret, Plaintext, Sealed};
use super::keyring::{DataKey, KeyContext, Keyring, WrappedKey};
use crate::clock::{Clock, Timestamp};
use crate::inventory::DATA_KEY;
use crate::store::{
    Condition, Item, ItemKey, ItemStore, KeyRange, MAX_PAGE_LIMIT, Order, Query, StoreError, Value,
    query_all,
};

/// The owner of the system blind-index key.
pub const BLIND_INDEX_OWNER: &str = "system:blind-index";

/// Whether the store holds the system blind-index key. It is written on first use (the first
/// registration), before any value is sealed or indexed, so a store that holds it holds data that only
/// the keyring's master key can open: start-up refuses a missing or different master key then.
///
/// # Errors
/// The store's failure.
pub async fn blind_index_key_stored(store: &dyn ItemStore) -> Result<bool, StoreError> {
    let query = Query {
        range: KeyRange::Prefix("V#".to_owned()),
        ..Query::partition(partition(BLIND_INDEX_OWNER), 1)
    };
    Ok(!store.query(&query).await?.items.is_empty())
}

const ATTR_WRAPPED: &str = "wrapped";
const ATTR_CREATED: &str = "created";
/// Concurrent rotations in several processes are rare; a few attempts settle them.
const MAX_ROTATE_ATTEMPTS: usize = 5;

/// How long and how much an unwrapped data key is used before it is unwrapped again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCachePolicy {
    pub max_age: Duration,
    pub max_uses: u64,
}

impl Default for KeyCachePolicy {
    /// 5 minutes, 100 000 uses.
    ///
    /// The age bounds how long a key stays usable in a warm process after it was destroyed (erasure) or
    /// its KMS permission revoked, and how long a rotation takes to reach every process; 5 minutes is the
    /// AWS Encryption SDK's usual cache age and costs at most 12 `Decrypt` calls per owner per hour per
    /// process. The use count bounds how much work one unwrap may authorise: a 100 000-lead broadcast
    /// re-checks with KMS at least once, while one `Decrypt` per 100 000 operations keeps KMS cost and
    /// quota negligible. (The AES-GCM random-nonce limit of 2³² encryptions belongs to the key itself, not
    /// to a cache entry; `rotate` is the remedy for that, long before it matters.)
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(5 * 60),
            max_uses: 100_000,
        }
    }
}

/// The unwrapped form of one key version, ready for its one use.
#[derive(Debug, Clone)]
enum Material {
    Field(Arc<FieldKey>),
    Index(Arc<IndexKey>),
}

#[derive(Debug, Clone)]
struct Loaded {
    version: u32,
    loaded_at: Timestamp,
    material: Material,
}

impl Loaded {
    fn uses(&self) -> u64 {
        match &self.material {
            Material::Field(k) => k.uses(),
            Material::Index(k) => k.uses(),
        }
    }
    fn destroyed(&self) -> bool {
        match &self.material {
            Material::Field(k) => k.is_destroyed(),
            Material::Index(_) => false,
        }
    }
    fn mark_destroyed(&self) {
        if let Material::Field(k) = &self.material {
            k.mark_destroyed();
        }
    }
    fn field(&self) -> Option<&Arc<FieldKey>> {
        match &self.material {
            Material::Field(k) => Some(k),
            Material::Index(_) => None,
        }
    }
}

#[derive(Debug, Default)]
struct OwnerState {
    /// The newest version this process knows of (from its last load, create or rotate).
    current: Option<u32>,
    keys: BTreeMap<u32, Loaded>,
}

#[derive(Debug, Default)]
struct OwnerSlot {
    /// Held while loading, creating, rotating or destroying: makes loads single-flight per owner.
    flight: tokio::sync::Mutex<()>,
    state: Mutex<OwnerState>,
}

#[derive(Debug)]
struct Slots {
    by_owner: HashMap<String, Arc<OwnerSlot>>,
    last_sweep: Timestamp,
}

/// A poisoned lock only means another thread panicked; the cache state is never left half-updated, so
/// it is used as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn partition(owner: &str) -> String {
    format!("DATAKEY#{owner}")
}

fn sort_key(version: u32) -> String {
    format!("V#{version:010}")
}

fn parse_sort_key(sk: &str) -> Option<u32> {
    sk.strip_prefix("V#")
        .filter(|d| d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
}

fn wrapped_of(item: &Item) -> Result<(u32, WrappedKey), CryptoError> {
    let version = parse_sort_key(&item.key().sk).ok_or(StoreError::Corrupt(
        "data key item has a malformed sort key",
    ))?;
    let wrapped = item
        .get_bytes(ATTR_WRAPPED)
        .ok_or(StoreError::Corrupt("data key item has no wrapped key"))?;
    Ok((version, WrappedKey(wrapped.to_vec())))
}

fn check_owner(owner: &str) -> Result<(), CryptoError> {
    if owner.is_empty() || owner == BLIND_INDEX_OWNER {
        return Err(CryptoError::InvalidOwner);
    }
    Ok(())
}

/// Creates, rotates, caches and destroys per-owner data keys; hands out field ciphers and the blind
/// indexer. One per process, shared (`Arc`) by every handler.
#[derive(Debug)]
pub struct KeyManager {
    store: Arc<dyn ItemStore>,
    keyring: Arc<dyn Keyring>,
    clock: Arc<dyn Clock>,
    policy: KeyCachePolicy,
    slots: Mutex<Slots>,
}

impl KeyManager {
    pub fn new(
        store: Arc<dyn ItemStore>,
        keyring: Arc<dyn Keyring>,
        clock: Arc<dyn Clock>,
        policy: KeyCachePolicy,
    ) -> Self {
        let now = clock.now();
        Self {
            store,
            keyring,
            clock,
            policy,
            slots: Mutex::new(Slots {
                by_owner: HashMap::new(),
                last_sweep: now,
            }),
        }
    }

    /// Creates the owner's first data key (version 1). Idempotent: an existing key is kept.
    ///
    /// # Errors
    /// [`CryptoError::InvalidOwner`], or the keyring's or store's failure.
    #[tracing::instrument(skip_all, fields(owner = owner))]
    pub async fn create(&self, owner: &str) -> Result<(), CryptoError> {
        check_owner(owner)?;
        let slot = self.slot(owner);
        let _flight = slot.flight.lock().await;
        if let Some(loaded) = self.put_new_version(owner, 1).await? {
            self.install(&slot, loaded, true);
            tracing::info!(version = 1, "data key created");
        }
        Ok(())
    }

    /// Makes a new data-key version current and returns it. Values sealed under older versions still open.
    ///
    /// # Errors
    /// [`CryptoError::NoKey`] if the owner has no key; the keyring's or store's failure.
    #[tracing::instrument(skip_all, fields(owner = owner))]
    pub async fn rotate(&self, owner: &str) -> Result<u32, CryptoError> {
        check_owner(owner)?;
        let slot = self.slot(owner);
        let _flight = slot.flight.lock().await;
        for _ in 0..MAX_ROTATE_ATTEMPTS {
            let (latest, _) = self.latest(owner).await?.ok_or(CryptoError::NoKey)?;
            let next = latest
                .checked_add(1)
                .ok_or(StoreError::InvalidRequest("data key versions exhausted"))?;
            if let Some(loaded) = self.put_new_version(owner, next).await? {
                self.install(&slot, loaded, true);
                tracing::info!(version = next, "data key rotated");
                return Ok(next);
            }
            // Another process wrote `next` meanwhile; rotate on top of it, as asked.
        }
        Err(StoreError::ConditionFailed.into())
    }

    /// A cipher sealing with the owner's current key (and opening any version already loaded).
    ///
    /// # Errors
    /// [`CryptoError::NoKey`] if the owner has no key; [`CryptoError::InvalidOwner`]; the keyring's or
    /// store's failure.
    pub async fn cipher(&self, owner: &str) -> Result<FieldCipher, CryptoError> {
        check_owner(owner)?;
        let slot = self.slot(owner);
        if let Some(cipher) = self.cached_cipher(&slot) {
            return Ok(cipher);
        }
        let _flight = slot.flight.lock().await;
        // Whoever held the flight before us may have loaded the key already.
        if let Some(cipher) = self.cached_cipher(&slot) {
            return Ok(cipher);
        }
        let (version, wrapped) = self.latest(owner).await?.ok_or(CryptoError::NoKey)?;
        let loaded = self.unwrap(owner, version, &wrapped).await?;
        // Only the blind-index owner gets index material, and `check_owner` refused it above.
        self.install(&slot, loaded, true)
            .ok_or(CryptoError::InvalidOwner)
    }

    /// Opens a value sealed for `attribute` of the item at `key`, whatever key version it names (loading
    /// an older version once if needed).
    ///
    /// # Errors
    /// As [`FieldCipher::open`], and [`CryptoError::NoKey`] if the version no longer exists.
    pub async fn open(
        &self,
        owner: &str,
        key: &ItemKey,
        attribute: &str,
        sealed: &Sealed,
    ) -> Result<Plaintext, CryptoError> {
        self.cipher_holding(owner, sealed.key_version()?)
            .await?
            .open(key, attribute, sealed)
    }

    /// Opens a value of the lead `lead` of `owner`: sealed under the lead's own key (format 2,
    /// [`FieldCipher::for_lead`], derived from `secret`) or under the owner's key (format 1, a lead
    /// created before lead keys were used). Without `secret` (the lead's entry in the key store is gone:
    /// it was erased) a format 2 value fails as [`CryptoError::Undecryptable`]; a format 1 value opens.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub async fn open_lead(
        &self,
        owner: &str,
        secret: Option<&LeadSecret>,
        lead: &str,
        key: &ItemKey,
        attribute: &str,
        sealed: &Sealed,
    ) -> Result<Plaintext, CryptoError> {
        let cipher = self.cipher_holding(owner, sealed.key_version()?).await?;
        match secret {
            Some(secret) => cipher.for_lead(secret, lead)?.open(key, attribute, sealed),
            None => cipher.open(key, attribute, sealed),
        }
    }

    /// The owner's cipher, also holding key `version` (loading it once if needed).
    async fn cipher_holding(&self, owner: &str, version: u32) -> Result<FieldCipher, CryptoError> {
        let cipher = self.cipher(owner).await?;
        if cipher.holds_version(version) {
            return Ok(cipher);
        }
        let slot = self.slot(owner);
        let _flight = slot.flight.lock().await;
        let loaded_meanwhile = {
            let now = self.clock.now();
            let state = lock(&slot.state);
            state
                .keys
                .get(&version)
                .filter(|l| self.fresh(l, now))
                .and_then(|l| l.field().cloned())
        };
        let other = match loaded_meanwhile {
            Some(k) => k,
            None => {
                let item = self
                    .store
                    .get(&ItemKey::new(partition(owner), sort_key(version)))
                    .await?
                    .ok_or(CryptoError::NoKey)?;
                let (version, wrapped) = wrapped_of(&item)?;
                let loaded = self.unwrap(owner, version, &wrapped).await?;
                let key = loaded.field().cloned();
                self.install(&slot, loaded, false);
                key.ok_or(CryptoError::InvalidOwner)?
            }
        };
        Ok(cipher.with_other(other))
    }

    /// Deletes every version of the owner's data key and forgets it (crypto-shredding). Idempotent.
    ///
    /// # Errors
    /// [`CryptoError::InvalidOwner`], or the store's failure (then call again: it resumes).
    #[tracing::instrument(skip_all, fields(owner = owner))]
    pub async fn destroy(&self, owner: &str) -> Result<(), CryptoError> {
        check_owner(owner)?;
        let slot = self.slot(owner);
        let _flight = slot.flight.lock().await;
        // Forget first: even if the store fails halfway, this process stops using the key now.
        {
            let mut state = lock(&slot.state);
            for loaded in state.keys.values() {
                loaded.mark_destroyed();
            }
            state.keys.clear();
            state.current = None;
        }
        let query = Query {
            range: KeyRange::Prefix("V#".to_owned()),
            ..Query::partition(partition(owner), MAX_PAGE_LIMIT)
        };
        let keys: Vec<ItemKey> = query_all(self.store.as_ref(), query)
            .await?
            .iter()
            .map(|i| i.key().clone())
            .collect();
        self.store.delete_many(&keys).await?;
        tracing::info!(versions = keys.len(), "data key destroyed");
        Ok(())
    }

    /// The owner's key versions in the store, oldest first, each with when it was made.
    ///
    /// # Errors
    /// [`CryptoError::InvalidOwner`], or the store's failure.
    pub async fn versions(&self, owner: &str) -> Result<Vec<(u32, Timestamp)>, CryptoError> {
        check_owner(owner)?;
        let query = Query {
            range: KeyRange::Prefix("V#".to_owned()),
            ..Query::partition(partition(owner), MAX_PAGE_LIMIT)
        };
        query_all(self.store.as_ref(), query)
            .await?
            .iter()
            .map(|item| {
                let (version, _) = wrapped_of(item)?;
                let created = Timestamp::from_millis(item.get_i64(ATTR_CREATED).unwrap_or(0));
                Ok((version, created))
            })
            .collect()
    }

    /// Deletes these versions of the owner's key and forgets them (crypto-shredding of what they
    /// sealed, in every copy); the newest version in the store always stays. For a key whose values all
    /// expire (the registrations key), once everything a version sealed has expired. Returns how many
    /// went. Idempotent.
    ///
    /// # Errors
    /// [`CryptoError::InvalidOwner`], or the store's failure (then call again).
    #[tracing::instrument(skip_all, fields(owner = owner))]
    pub async fn retire_versions(
        &self,
        owner: &str,
        versions: &[u32],
    ) -> Result<usize, CryptoError> {
        check_owner(owner)?;
        let slot = self.slot(owner);
        let _flight = slot.flight.lock().await;
        let newest = self.latest(owner).await?.map(|(v, _)| v);
        let retired: Vec<u32> = versions
            .iter()
            .copied()
            .filter(|v| Some(*v) != newest)
            .collect();
        {
            let mut state = lock(&slot.state);
            for version in &retired {
                if let Some(loaded) = state.keys.remove(version) {
                    loaded.mark_destroyed();
                }
            }
            if state.current.is_some_and(|c| retired.contains(&c)) {
                state.current = None;
            }
        }
        let keys: Vec<ItemKey> = retired
            .iter()
            .map(|v| ItemKey::new(partition(owner), sort_key(*v)))
            .collect();
        self.store.delete_many(&keys).await?;
        tracing::info!(versions = keys.len(), "data key versions retired");
        Ok(keys.len())
    }

    /// The blind indexer under the system blind-index key, created on first use.
    ///
    /// # Errors
    /// The keyring's or store's failure.
    pub async fn blind_indexer(&self) -> Result<BlindIndexer, CryptoError> {
        let owner = BLIND_INDEX_OWNER;
        let slot = self.slot(owner);
        if let Some(indexer) = self.cached_indexer(&slot) {
            return Ok(indexer);
        }
        let _flight = slot.flight.lock().await;
        if let Some(indexer) = self.cached_indexer(&slot) {
            return Ok(indexer);
        }
        let loaded = match self.latest(owner).await? {
            Some((version, wrapped)) => self.unwrap(owner, version, &wrapped).await?,
            None => match self.put_new_version(owner, 1).await? {
                Some(loaded) => {
                    tracing::info!("blind-index key created");
                    loaded
                }
                // Another process created it between our query and our put: use theirs.
                None => {
                    let (version, wrapped) = self.latest(owner).await?.ok_or(CryptoError::NoKey)?;
                    self.unwrap(owner, version, &wrapped).await?
                }
            },
        };
        self.install(&slot, loaded, true);
        self.cached_indexer(&slot)
            .ok_or(CryptoError::Primitive("blind-index key not cached"))
    }

    // --- internals -------------------------------------------------------------------------------

    fn slot(&self, owner: &str) -> Arc<OwnerSlot> {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.by_owner.get(owner) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(OwnerSlot::default());
        slots.by_owner.insert(owner.to_owned(), Arc::clone(&slot));
        slot
    }

    fn fresh(&self, loaded: &Loaded, now: Timestamp) -> bool {
        let age_ms = now.millis().saturating_sub(loaded.loaded_at.millis());
        let max_ms = i64::try_from(self.policy.max_age.as_millis()).unwrap_or(i64::MAX);
        age_ms < max_ms && loaded.uses() < self.policy.max_uses && !loaded.destroyed()
    }

    fn cached_cipher(&self, slot: &OwnerSlot) -> Option<FieldCipher> {
        let now = self.clock.now();
        let state = lock(&slot.state);
        self.cipher_from(&state, now)
    }

    /// The cipher of the current version if it is fresh, with every other fresh version.
    fn cipher_from(&self, state: &OwnerState, now: Timestamp) -> Option<FieldCipher> {
        let current_version = state.current?;
        let current = state
            .keys
            .get(&current_version)
            .filter(|l| self.fresh(l, now))?
            .field()?;
        let others = state
            .keys
            .values()
            .filter(|l| l.version != current_version && self.fresh(l, now))
            .filter_map(|l| l.field().cloned())
            .collect();
        Some(FieldCipher::from_keys(Arc::clone(current), others))
    }

    fn cached_indexer(&self, slot: &OwnerSlot) -> Option<BlindIndexer> {
        let now = self.clock.now();
        let state = lock(&slot.state);
        let loaded = state
            .keys
            .get(&state.current?)
            .filter(|l| self.fresh(l, now))?;
        match &loaded.material {
            Material::Index(k) => Some(BlindIndexer::from_key(Arc::clone(k))),
            Material::Field(_) => None,
        }
    }

    /// Caches a loaded key (as current or as an older version), drops the owner's stale versions, and
    /// returns the owner's cipher if the new key is a field key made current.
    fn install(&self, slot: &OwnerSlot, loaded: Loaded, current: bool) -> Option<FieldCipher> {
        let now = self.clock.now();
        let cipher = {
            let mut state = lock(&slot.state);
            let version = loaded.version;
            state.keys.insert(version, loaded);
            if current || state.current.is_none_or(|c| c < version) {
                state.current = Some(version);
            }
            state
                .keys
                .retain(|v, l| *v == version || self.fresh(l, now));
            // The key just loaded is fresh by construction unless the policy allows no use at all; then
            // the caller still gets a cipher for this one request.
            let current_key = state
                .current
                .and_then(|c| state.keys.get(&c))
                .and_then(|l| l.field().cloned());
            current_key.map(|k| {
                let others = state
                    .keys
                    .values()
                    .filter(|l| l.version != k.version())
                    .filter_map(|l| l.field().cloned())
                    .collect();
                FieldCipher::from_keys(k, others)
            })
        };
        self.sweep(now);
        cipher
    }

    /// Drops stale keys of every owner and idle owners, at most once per max age, so plaintext keys do not
    /// outlive their cache lifetime by much even for owners never asked for again.
    fn sweep(&self, now: Timestamp) {
        let mut slots = lock(&self.slots);
        let max_ms = i64::try_from(self.policy.max_age.as_millis()).unwrap_or(i64::MAX);
        if now.millis().saturating_sub(slots.last_sweep.millis()) < max_ms {
            return;
        }
        slots.last_sweep = now;
        slots.by_owner.retain(|_, slot| {
            let mut state = lock(&slot.state);
            state.keys.retain(|_, l| self.fresh(l, now));
            if state.current.is_some_and(|c| !state.keys.contains_key(&c)) {
                state.current = None;
            }
            // Keep a slot that someone is using right now (its flight lock may be held).
            !state.keys.is_empty() || Arc::strong_count(slot) > 1
        });
    }

    /// The newest version of the owner's key in the store, wrapped.
    async fn latest(&self, owner: &str) -> Result<Option<(u32, WrappedKey)>, CryptoError> {
        let query = Query {
            range: KeyRange::Prefix("V#".to_owned()),
            order: Order::Descending,
            ..Query::partition(partition(owner), 1)
        };
        let page = self.store.query(&query).await?;
        page.items.first().map(wrapped_of).transpose()
    }

    async fn unwrap(
        &self,
        owner: &str,
        version: u32,
        wrapped: &WrappedKey,
    ) -> Result<Loaded, CryptoError> {
        let key = self
            .keyring
            .decrypt_data_key(wrapped, &KeyContext::new(owner))
            .await?;
        tracing::debug!(owner, version, "data key unwrapped");
        self.loaded(owner, version, &key)
    }

    fn loaded(&self, owner: &str, version: u32, key: &DataKey) -> Result<Loaded, CryptoError> {
        let material = if owner == BLIND_INDEX_OWNER {
            Material::Index(Arc::new(IndexKey::new(key)))
        } else {
            Material::Field(Arc::new(FieldKey::new(version, key)?))
        };
        Ok(Loaded {
            version,
            loaded_at: self.clock.now(),
            material,
        })
    }

    /// Generates a key and writes it as `version` if that version does not exist yet. `None` if it did
    /// (written meanwhile by another call or process; the generated key is dropped unused).
    async fn put_new_version(
        &self,
        owner: &str,
        version: u32,
    ) -> Result<Option<Loaded>, CryptoError> {
        let generated = self
            .keyring
            .generate_data_key(&KeyContext::new(owner))
            .await?;
        let item = Item::new(&DATA_KEY, ItemKey::new(partition(owner), sort_key(version)))
            .plain(ATTR_WRAPPED, Value::B(generated.wrapped.0))
            .and_then(|i| i.plain(ATTR_CREATED, Value::N(self.clock.now().millis())))
            .map_err(StoreError::from)?;
        match self.store.put(item, Condition::NotExists).await {
            Ok(()) => Ok(Some(self.loaded(owner, version, &generated.plaintext)?)),
            Err(StoreError::ConditionFailed) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
