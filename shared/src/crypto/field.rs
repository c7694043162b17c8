//! Field encryption (AES-256-GCM) and its versioned ciphertext format.
//!
//! # Format (version 1)
//!
//! ```text
//! offset  size  content
//! 0       1     format byte, 0x01
//! 1       4     data-key version, u32 big-endian (1 = the owner's first key; see `keys.rs`)
//! 5       12    nonce, 96 random bits from the CSPRNG, fresh for every encryption
//! 17      n     AES-256-GCM ciphertext of the n plaintext bytes
//! 17+n    16    GCM tag
//! ```
//!
//! Format 2 has the same layout, with format byte `0x02`: the value is sealed under ONE lead's key,
//! derived from the owner's data key of that version and the lead's random secret (kept in the key
//! store, beside the lead's lookup), see [`FieldCipher::for_lead`]. Erasing the lead destroys its secret,
//! so its values in a restored copy of the main store no longer open, though the account key lives on.
//!
//! So a sealed value is always `33 + n` bytes. The associated data (authenticated, not stored) is
//!
//! ```text
//! the 5 header bytes (format byte and key version)
//! || u32 BE len(pk)        || pk          (UTF-8)
//! || u32 BE len(sk)        || sk          (UTF-8)
//! || u32 BE len(attribute) || attribute   (UTF-8)
//! ```
//!
//! Binding the item key and attribute name means a ciphertext copied to another item or attribute does
//! not open; the length prefixes make the encoding injective (`("ab", "c")` and `("a", "bc")` differ).
//! Binding the header means the key version cannot be edited to point at another key of the owner.
//!
//! Random 96-bit nonces keep the collision probability under 2⁻³² for up to 2³² encryptions under one
//! key (NIST SP 800-38D §8.3); per-owner keys and rotation keep every key far below that.
//!
//! Every AEAD failure is reported as the one variant [`CryptoError::Undecryptable`]: a wrong key, a
//! moved value and a flipped bit are indistinguishable on purpose.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use secrecy::zeroize::Zeroizing;

use super::CryptoError;
use super::keyring::DataKey;
use crate::store::ItemKey;

/// Sealed under the owner's data key.
pub const FORMAT_V1: u8 = 0x01;
/// Sealed under one lead's key ([`FieldCipher::for_lead`]); same layout.
pub const FORMAT_LEAD_V1: u8 = 0x02;
/// The HKDF `info` prefix of lead keys (then the lead id, length-prefixed).
const LEAD_KEY_INFO: &[u8] = b"qchat/lead-key/v1";
const HEADER_LEN: usize = 1 + 4;
const TAG_LEN: usize = 16;
const BODY_START: usize = HEADER_LEN + NONCE_LEN;
/// The length of a sealed empty value: header, nonce and tag.
pub const OVERHEAD: usize = BODY_START + TAG_LEN;

/// A field ciphertext in the versioned format. Opaque bytes to the store.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(Vec<u8>);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

impl Sealed {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Whether the value is sealed under one lead's key (format 2): opening it needs the lead's secret.
    pub fn is_lead_sealed(&self) -> bool {
        self.0.first() == Some(&FORMAT_LEAD_V1)
    }

    /// The data-key version named in the header, without opening the value.
    ///
    /// # Errors
    /// [`CryptoError::UnknownFormat`] if the value is not in a format this code knows.
    pub fn key_version(&self) -> Result<u32, CryptoError> {
        match self.0.as_slice() {
            [FORMAT_V1 | FORMAT_LEAD_V1, a, b, c, d, ..] => {
                Ok(u32::from_be_bytes([*a, *b, *c, *d]))
            }
            _ => Err(CryptoError::UnknownFormat),
        }
    }
}

/// A decrypted value: zeroed when dropped, and never printed (`Debug` shows only its length), so an opened
/// e-mail address or name cannot end up in a log by accident. Parse it into a domain type right away.
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext({} bytes)", self.0.len())
    }
}

impl Plaintext {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The value as UTF-8 text, borrowed (no copy outside the zeroized buffer).
    ///
    /// # Errors
    /// If the bytes are not UTF-8 (the error says where, never what).
    pub fn as_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.0)
    }
}

impl std::ops::Deref for Plaintext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// One unwrapped data key ready for AES-256-GCM, with the bookkeeping the key cache needs.
///
/// Shared (`Arc`) between the cache and every [`FieldCipher`] handed out, so that uses are counted in
/// one place and destroying the key also disables handles that are still held.
pub(crate) struct FieldKey {
    version: u32,
    aead: RandomizedNonceKey,
    /// The raw key, the input keying material of its leads' keys ([`FieldCipher::for_lead`]); zeroed
    /// when dropped.
    ikm: Zeroizing<[u8; 32]>,
    uses: AtomicU64,
    destroyed: AtomicBool,
}

impl std::fmt::Debug for FieldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldKey")
            .field("version", &self.version)
            .field("uses", &self.uses.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FieldKey {
    pub(crate) fn new(version: u32, key: &DataKey) -> Result<Self, CryptoError> {
        // aws-lc-rs copies the key into its own context, which it cleanses when dropped.
        let aead = RandomizedNonceKey::new(&AES_256_GCM, key.expose())
            .map_err(|_| CryptoError::Primitive("AES-256-GCM key setup"))?;
        Ok(Self {
            version,
            aead,
            ikm: Zeroizing::new(*key.expose()),
            uses: AtomicU64::new(0),
            destroyed: AtomicBool::new(false),
        })
    }
    pub(crate) fn version(&self) -> u32 {
        self.version
    }
    /// Seals and opens done with this key since it was unwrapped.
    pub(crate) fn uses(&self) -> u64 {
        self.uses.load(Ordering::Relaxed)
    }
    pub(crate) fn mark_destroyed(&self) {
        self.destroyed.store(true, Ordering::SeqCst);
    }
    pub(crate) fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::SeqCst)
    }
    /// The key of one lead under this version: HKDF-SHA256 with the lead's secret as salt, this key
    /// as input keying material, and the lead id in `info`.
    fn derive(&self, secret: &LeadSecret, lead: &str) -> Result<Self, CryptoError> {
        if self.is_destroyed() {
            return Err(CryptoError::KeyDestroyed);
        }
        let prk = Salt::new(HKDF_SHA256, secret.expose()).extract(self.ikm.as_slice());
        let len = u32::try_from(lead.len()).unwrap_or(u32::MAX).to_be_bytes();
        let info: [&[u8]; 3] = [LEAD_KEY_INFO, &len, lead.as_bytes()];
        let mut out = Zeroizing::new([0u8; 32]);
        prk.expand(&info, HKDF_SHA256)
            .and_then(|okm| okm.fill(out.as_mut_slice()))
            .map_err(|_| CryptoError::Primitive("HKDF-SHA256 lead key"))?;
        Self::new(self.version, &DataKey::from_bytes(*out))
    }

    fn begin_use(&self) -> Result<(), CryptoError> {
        if self.is_destroyed() {
            return Err(CryptoError::KeyDestroyed);
        }
        self.uses.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Seals and opens the encrypted attributes of one owner's items.
///
/// Seals with the owner's current data-key version; opens any version it holds. A handle from
/// [`super::KeyManager::cipher`] is meant to be short-lived (one request or one batch): the cache's
/// max-age and max-uses limits are checked when a handle is taken, and a destroyed key disables even the
/// handles still held. Cheap to clone.
#[derive(Clone)]
pub struct FieldCipher {
    current: Arc<FieldKey>,
    /// Older versions of the same owner that were loaded (rarely more than one or two).
    others: Arc<[Arc<FieldKey>]>,
    /// A lead's cipher ([`Self::for_lead`]): its keys, one per version above, in the same order
    /// (current first). It seals in format 2 and opens both formats.
    lead: Option<Arc<[FieldKey]>>,
}

/// A lead's random secret (32 bytes, from the CSPRNG), the HKDF salt of its keys. Kept only in the key
/// store; never printed.
#[derive(Clone)]
pub struct LeadSecret(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for LeadSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeadSecret(<redacted>)")
    }
}

impl LeadSecret {
    /// A fresh secret.
    ///
    /// # Errors
    /// [`CryptoError::Primitive`] if the random number generator fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut_slice())
            .map_err(|_| CryptoError::Primitive("random lead secret"))?;
        Ok(Self(bytes))
    }
    /// A stored secret; `None` unless it is 32 bytes.
    pub fn from_stored(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(bytes)))
    }
    /// The bytes, to store (in the key store only).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldCipher")
            .field("current_version", &self.current.version)
            .field(
                "other_versions",
                &self.others.iter().map(|k| k.version).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl FieldCipher {
    /// A cipher over one data key, outside any cache (tests, benches, tools).
    /// Production code gets its ciphers from [`super::KeyManager::cipher`].
    ///
    /// # Errors
    /// [`CryptoError::Primitive`] if the AES key schedule cannot be set up (out of memory).
    pub fn new(version: u32, key: &DataKey) -> Result<Self, CryptoError> {
        Ok(Self::from_keys(
            Arc::new(FieldKey::new(version, key)?),
            Vec::new(),
        ))
    }

    pub(crate) fn from_keys(current: Arc<FieldKey>, others: Vec<Arc<FieldKey>>) -> Self {
        Self {
            current,
            others: others.into(),
            lead: None,
        }
    }

    /// This cipher, also holding `other` (an older or newer version of the same owner).
    pub(crate) fn with_other(&self, other: Arc<FieldKey>) -> Self {
        let mut others: Vec<_> = self.others.iter().cloned().collect();
        others.push(other);
        Self::from_keys(Arc::clone(&self.current), others)
    }

    /// The cipher of one lead of this owner: seals in format 2 under the lead's key (derived, for each
    /// version this cipher holds, from the owner's key and `secret`; no KMS call and no store call), and
    /// opens format 2 values of this lead and format 1 values of the owner. Without the secret no key
    /// opens the lead's format 2 values, which is what erasing the secret achieves.
    ///
    /// Why a derived key and not a random lead key wrapped under the owner's: both put one random value
    /// per lead in the key store, but a derived key needs no ciphertext of its own and follows the
    /// owner's key versions by itself, and a batch of leads costs only one HKDF and AES key set-up each.
    ///
    /// # Errors
    /// [`CryptoError::KeyDestroyed`] if the owner's key was destroyed; [`CryptoError::Primitive`].
    pub fn for_lead(&self, secret: &LeadSecret, lead: &str) -> Result<Self, CryptoError> {
        let keys: Vec<FieldKey> = std::iter::once(&self.current)
            .chain(self.others.iter())
            .map(|k| k.derive(secret, lead))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            current: Arc::clone(&self.current),
            others: Arc::clone(&self.others),
            lead: Some(keys.into()),
        })
    }

    /// The data-key version new values are sealed with.
    pub fn current_version(&self) -> u32 {
        self.current.version
    }

    /// Whether this cipher can open values sealed under `version`.
    pub fn holds_version(&self, version: u32) -> bool {
        self.key_for(version).is_some()
    }

    fn key_for(&self, version: u32) -> Option<&FieldKey> {
        self.owner_key(version)
    }

    /// The key that opens `format` values of `version`.
    fn opening_key(&self, format: u8, version: u32) -> Option<&FieldKey> {
        match (format, &self.lead) {
            (FORMAT_LEAD_V1, Some(keys)) => keys.iter().find(|k| k.version == version),
            (FORMAT_LEAD_V1, None) => None,
            _ => self.owner_key(version),
        }
    }

    fn owner_key(&self, version: u32) -> Option<&FieldKey> {
        if self.current.version == version {
            return Some(&self.current);
        }
        self.others
            .iter()
            .find(|k| k.version == version)
            .map(|k| &**k)
    }

    /// Encrypts `plaintext` for attribute `attribute` of the item at `key`.
    ///
    /// # Errors
    /// [`CryptoError::KeyDestroyed`] if the owner's key was destroyed since this handle was taken;
    /// [`CryptoError::Primitive`] if the random number generator fails.
    pub fn seal(
        &self,
        key: &ItemKey,
        attribute: &str,
        plaintext: &[u8],
    ) -> Result<Sealed, CryptoError> {
        let (k, format) = match self.lead.as_deref() {
            Some([lead, ..]) => {
                // A lead's key is no use once its owner's key is destroyed.
                if self.current.is_destroyed() {
                    return Err(CryptoError::KeyDestroyed);
                }
                (lead, FORMAT_LEAD_V1)
            }
            _ => (&*self.current, FORMAT_V1),
        };
        k.begin_use()?;
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        out.push(format);
        out.extend_from_slice(&k.version.to_be_bytes());
        out.extend_from_slice(&[0u8; NONCE_LEN]);
        out.extend_from_slice(plaintext);
        let aad = associated_data(&out[..HEADER_LEN], key, attribute);
        // The plaintext copied into `out` is overwritten in place by its ciphertext; the capacity was
        // reserved up front, so no reallocation leaves a plaintext copy behind in freed memory.
        let (nonce, tag) = k
            .aead
            .seal_in_place_separate_tag(Aad::from(aad.as_slice()), &mut out[BODY_START..])
            .map_err(|_| CryptoError::Primitive("AES-256-GCM seal"))?;
        out[HEADER_LEN..BODY_START].copy_from_slice(nonce.as_ref());
        out.extend_from_slice(tag.as_ref());
        Ok(Sealed(out))
    }

    /// Decrypts a value sealed for attribute `attribute` of the item at `key`.
    ///
    /// # Errors
    /// [`CryptoError::UnknownFormat`] for a value in no known format;
    /// [`CryptoError::KeyVersionNotLoaded`] if this cipher does not hold the value's key version (use
    /// [`super::KeyManager::open`], which loads it); [`CryptoError::KeyDestroyed`] if the key was destroyed;
    /// [`CryptoError::Undecryptable`] for anything the AEAD rejects (tampered, truncated, moved, wrong key).
    pub fn open(
        &self,
        key: &ItemKey,
        attribute: &str,
        sealed: &Sealed,
    ) -> Result<Plaintext, CryptoError> {
        let version = sealed.key_version()?;
        let bytes = sealed.as_bytes();
        let format = bytes.first().copied().unwrap_or_default();
        if format == FORMAT_LEAD_V1 {
            if self.lead.is_none() {
                // A lead's value without the lead's secret: no key of this cipher opens it.
                return Err(CryptoError::Undecryptable);
            }
            // A lead's key is no use once its owner's key is destroyed.
            if self.current.is_destroyed() {
                return Err(CryptoError::KeyDestroyed);
            }
        }
        let k = self
            .opening_key(format, version)
            .ok_or(CryptoError::KeyVersionNotLoaded { version })?;
        if bytes.len() < OVERHEAD {
            // A truncated value of a known format: tampering, not an unknown format.
            return Err(CryptoError::Undecryptable);
        }
        k.begin_use()?;
        let nonce = Nonce::try_assume_unique_for_key(&bytes[HEADER_LEN..BODY_START])
            .map_err(|_| CryptoError::Undecryptable)?;
        let aad = associated_data(&bytes[..HEADER_LEN], key, attribute);
        let mut buf = Zeroizing::new(bytes[BODY_START..].to_vec());
        let len = k
            .aead
            .open_in_place(nonce, Aad::from(aad.as_slice()), &mut buf)
            .map_err(|_| CryptoError::Undecryptable)?
            .len();
        buf.truncate(len);
        Ok(Plaintext(buf))
    }
}

/// The associated data of one sealed value (see the module doc).
fn associated_data(header: &[u8], key: &ItemKey, attribute: &str) -> Vec<u8> {
    let parts = [key.pk.as_bytes(), key.sk.as_bytes(), attribute.as_bytes()];
    let mut aad =
        Vec::with_capacity(header.len() + parts.iter().map(|p| 4 + p.len()).sum::<usize>());
    aad.extend_from_slice(header);
    for part in parts {
        // Item keys and attribute names are short; a part over 4 GiB cannot reach here (the stores
        // refuse far smaller keys), and saturating would still keep distinct lengths distinct in practice.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(version: u32, byte: u8) -> FieldCipher {
        match FieldCipher::new(version, &DataKey::from_bytes([byte; 32])) {
            Ok(c) => c,
            Err(e) => panic!("cipher setup: {e}"),
        }
    }

    #[test]
    fn layout_is_header_nonce_ciphertext_tag() -> Result<(), CryptoError> {
        let c = cipher(7, 1);
        let key = ItemKey::new("A#1", "PROFILE");
        let sealed = c.seal(&key, "email", b"hello")?;
        let b = sealed.as_bytes();
        assert_eq!(b.len(), OVERHEAD + 5);
        assert_eq!(b[0], FORMAT_V1);
        assert_eq!(&b[1..5], &7u32.to_be_bytes());
        assert_eq!(sealed.key_version()?, 7);
        let opened = c.open(&key, "email", &sealed)?;
        assert_eq!(opened.as_bytes(), b"hello");
        assert_eq!(format!("{opened:?}"), "Plaintext(5 bytes)");
        Ok(())
    }

    fn secret(byte: u8) -> LeadSecret {
        LeadSecret::from_stored(&[byte; 32]).expect("32 bytes")
    }

    #[test]
    fn a_leads_value_opens_only_with_its_owner_key_its_secret_and_its_id() -> Result<(), CryptoError>
    {
        let owner = cipher(3, 1);
        let key = ItemKey::new("PAGE#p", "LEAD#l1");
        let lead = owner.for_lead(&secret(7), "l1")?;
        let sealed = lead.seal(&key, "subject", b"2712345")?;
        assert_eq!(sealed.as_bytes()[0], FORMAT_LEAD_V1);
        assert_eq!(sealed.key_version()?, 3);
        assert_eq!(lead.open(&key, "subject", &sealed)?.as_bytes(), b"2712345");
        // Derived again (another process, another batch): the same key.
        let again = cipher(3, 1).for_lead(&secret(7), "l1")?;
        assert_eq!(again.open(&key, "subject", &sealed)?.as_bytes(), b"2712345");
        // The owner's key alone, another secret, another lead, another owner key: nothing opens.
        for other in [
            owner.clone(),
            owner.for_lead(&secret(8), "l1")?,
            owner.for_lead(&secret(7), "l2")?,
            cipher(3, 2).for_lead(&secret(7), "l1")?,
        ] {
            assert!(matches!(
                other.open(&key, "subject", &sealed),
                Err(CryptoError::Undecryptable)
            ));
        }
        // Format byte edited to 1: the header is authenticated.
        let mut edited = sealed.as_bytes().to_vec();
        edited[0] = FORMAT_V1;
        assert!(matches!(
            lead.open(&key, "subject", &Sealed::from_bytes(edited)),
            Err(CryptoError::Undecryptable)
        ));
        Ok(())
    }

    #[test]
    fn a_leads_cipher_opens_the_owners_older_values_and_follows_its_versions()
    -> Result<(), CryptoError> {
        let key = ItemKey::new("PAGE#p", "LEAD#l1");
        let old = cipher(1, 1).seal(&key, "subject", b"before")?;
        let both = FieldCipher::from_keys(
            Arc::new(FieldKey::new(2, &DataKey::from_bytes([2; 32]))?),
            vec![Arc::new(FieldKey::new(1, &DataKey::from_bytes([1; 32]))?)],
        );
        let lead = both.for_lead(&secret(7), "l1")?;
        assert_eq!(lead.open(&key, "subject", &old)?.as_bytes(), b"before");
        let under_v1 = cipher(1, 1)
            .for_lead(&secret(7), "l1")?
            .seal(&key, "subject", b"v1")?;
        assert_eq!(lead.open(&key, "subject", &under_v1)?.as_bytes(), b"v1");
        assert_eq!(lead.seal(&key, "subject", b"v2")?.key_version()?, 2);
        Ok(())
    }

    #[test]
    fn a_destroyed_owner_key_disables_its_leads_ciphers() -> Result<(), CryptoError> {
        let owner = cipher(1, 1);
        let lead = owner.for_lead(&secret(7), "l1")?;
        let key = ItemKey::new("PAGE#p", "LEAD#l1");
        let sealed = lead.seal(&key, "subject", b"x")?;
        owner.current.mark_destroyed();
        assert!(matches!(
            lead.seal(&key, "subject", b"y"),
            Err(CryptoError::KeyDestroyed)
        ));
        assert!(matches!(
            lead.open(&key, "subject", &sealed),
            Err(CryptoError::KeyDestroyed)
        ));
        assert!(matches!(
            owner.for_lead(&secret(7), "l1"),
            Err(CryptoError::KeyDestroyed)
        ));
        assert_eq!(format!("{:?}", secret(7)), "LeadSecret(<redacted>)");
        Ok(())
    }

    #[test]
    fn associated_data_is_length_prefixed() {
        let a = associated_data(&[1, 0, 0, 0, 1], &ItemKey::new("ab", "c"), "d");
        let b = associated_data(&[1, 0, 0, 0, 1], &ItemKey::new("a", "bc"), "d");
        assert_ne!(a, b);
    }

    #[test]
    fn a_version_the_cipher_does_not_hold_is_named() -> Result<(), CryptoError> {
        let key = ItemKey::new("A#1", "PROFILE");
        let sealed = cipher(2, 1).seal(&key, "email", b"x")?;
        assert!(matches!(
            cipher(1, 1).open(&key, "email", &sealed),
            Err(CryptoError::KeyVersionNotLoaded { version: 2 })
        ));
        Ok(())
    }

    #[test]
    fn empty_unknown_and_truncated_values_are_refused() {
        let c = cipher(1, 1);
        let key = ItemKey::new("A#1", "PROFILE");
        let open = |b: Vec<u8>| c.open(&key, "email", &Sealed::from_bytes(b));
        assert!(matches!(open(vec![]), Err(CryptoError::UnknownFormat)));
        assert!(matches!(open(vec![3; 40]), Err(CryptoError::UnknownFormat)));
        assert!(matches!(
            open(vec![1, 0, 0, 0, 1, 9]),
            Err(CryptoError::Undecryptable)
        ));
    }
}
