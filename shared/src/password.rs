//! Passwords: argon2id hashing (OWASP's minimum m = 19 MiB, t = 2, p = 1) and the rules for new passwords
//! (NIST SP 800-63B: at least 12 characters, not a known common or breached password, not built from the
//! service's or the account's own name).

use std::sync::{Mutex, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::crypto::OneWayHash;
use crate::domain::Password;

/// OWASP Password Storage Cheat Sheet minimum for argon2id.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

/// Common passwords of 12 or more characters (shorter ones fail the length rule anyway).
const COMMON: &str = include_str!("../data/common-passwords.txt");

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed")]
    Hashing,
}

/// Why a new password is refused. The message is shown to the person choosing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("the password must be at least 12 characters long")]
    TooShort,
    #[error("the password must be at most 128 characters long")]
    TooLong,
    #[error("the password is too common; choose one that is not on lists of breached passwords")]
    Common,
    #[error("the password repeats or follows a simple sequence of characters")]
    Repetitive,
    #[error("the password must not contain your email address or the service's name")]
    ContextSpecific,
}

fn argon2() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|_| PasswordError::Hashing)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Argon2's working memory (19 MiB a hash), kept for the next hash instead of freed. Freed blocks of this
/// size would stay in the allocator anyway (glibc raises its mmap threshold after the first one), one set
/// per thread arena, so a process that hashed on many blocking threads grew by 19 MiB a thread; reusing at
/// most one block set per core bounds argon2's memory at that.
static WORK_MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

fn with_work_memory<R>(blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    let reused = WORK_MEMORY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop()
        .filter(|m| m.len() == blocks);
    let mut memory = reused.unwrap_or_else(|| vec![Block::default(); blocks]);
    let result = f(&mut memory);
    let keep = std::thread::available_parallelism().map_or(1, usize::from);
    let mut pool = WORK_MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
    if pool.len() < keep {
        pool.push(memory);
    }
    result
}

/// The raw argon2 output of `password` under `argon2`'s parameters and `salt`, `len` bytes long.
fn raw_hash(argon2: &Argon2<'_>, password: &[u8], salt: Salt<'_>, len: usize) -> Option<Output> {
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).ok()?;
    Output::init_with(len, |out| {
        with_work_memory(argon2.params().block_count(), |memory| {
            argon2.hash_password_into_with_memory(password, salt, out, memory)
        })
        .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .ok()
}

/// An argon2id PHC string with a random 128-bit salt.
pub fn hash(password: &Password) -> Result<OneWayHash, PasswordError> {
    let salt = SaltString::encode_b64(&crate::crypto::random_bytes::<16>())
        .map_err(|_| PasswordError::Hashing)?;
    let argon2 = argon2()?;
    let output = raw_hash(
        &argon2,
        password.expose().as_bytes(),
        salt.as_salt(),
        Params::DEFAULT_OUTPUT_LEN,
    )
    .ok_or(PasswordError::Hashing)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|_| PasswordError::Hashing)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(OneWayHash::from_phc(phc.to_string()))
}

/// Whether `password` matches the stored hash. The parameters stored in the hash are used, so hashes made
/// with older parameters still verify. The comparison is constant-time ([`Output`]'s equality).
pub fn verify(password: &Password, stored: &OneWayHash) -> bool {
    let Ok(parsed) = PasswordHash::new(stored.as_str()) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let (Ok(version), Ok(params)) = (version, Params::try_from(&parsed)) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    raw_hash(&argon2, password.expose().as_bytes(), salt, expected.len())
        .is_some_and(|actual| actual == expected)
}

/// Spends the same time as [`verify`] against a real hash, for sign-ins with an unknown email, so the
/// answer's timing does not tell whether an account exists.
pub fn verify_against_nothing(password: &Password) {
    static DUMMY: std::sync::OnceLock<Option<OneWayHash>> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        Password::parse("qchat-timing-equaliser")
            .ok()
            .and_then(|p| hash(&p).ok())
    });
    if let Some(d) = dummy {
        let _ = verify(password, d);
    }
}

/// Checks a new password against the rules; `context` holds words the password must not contain (the
/// account's email address and its local part).
pub fn check_new(password: &Password, context: &[&str]) -> Result<(), WeakPassword> {
    let pw = password.expose();
    let chars = pw.chars().count();
    if chars < MIN_LENGTH {
        return Err(WeakPassword::TooShort);
    }
    if chars > MAX_LENGTH {
        return Err(WeakPassword::TooLong);
    }
    let lower = pw.to_lowercase();
    if COMMON
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|c| c == lower)
    {
        return Err(WeakPassword::Common);
    }
    if is_repetitive(&lower) {
        return Err(WeakPassword::Repetitive);
    }
    let service = ["qchat", "password", "passwort", "contraseña", "motdepasse"];
    let context_hit = context
        .iter()
        .filter(|w| w.chars().count() >= 4)
        .map(|w| w.to_lowercase())
        .chain(service.iter().map(|s| (*s).to_owned()))
        .any(|w| lower.contains(&w) && lower.chars().count() < w.chars().count() + 8);
    if context_hit {
        return Err(WeakPassword::ContextSpecific);
    }
    Ok(())
}

/// One character repeated, or a run where every step between neighbours is the same (abcdef…, 13579…),
/// or a short block repeated (abcabcabcabc).
fn is_repetitive(pw: &str) -> bool {
    let c: Vec<char> = pw.chars().collect();
    let steps: Vec<i64> = c
        .windows(2)
        .map(|w| i64::from(u32::from(w[1])) - i64::from(u32::from(w[0])))
        .collect();
    if steps.windows(2).all(|s| s[0] == s[1]) && steps.first().is_some_and(|s| s.abs() <= 2) {
        return true;
    }
    (1..=c.len() / 3)
        .any(|n| c.len().is_multiple_of(n) && c.chunks(n).all(|chunk| chunk == &c[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::parse(s).expect("non-empty")
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let h = hash(&pw("correct horse battery staple")).expect("hash");
        assert!(
            h.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            h.as_str()
        );
        assert!(verify(&pw("correct horse battery staple"), &h));
        assert!(!verify(&pw("correct horse battery stapl"), &h));
        assert!(!verify(
            &pw("anything"),
            &OneWayHash::from_stored("not a phc string")
        ));
    }

    #[test]
    fn hashes_agree_with_the_argon2_crates_own_hasher_and_verifier_in_both_directions() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash(&pw("correct horse battery staple")).expect("hash");
        let parsed = PasswordHash::new(ours.as_str()).expect("phc");
        assert!(
            argon2()
                .expect("params")
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok()
        );
        // A hash stored before (made by the crate's hasher), and one with older, smaller parameters.
        let salt = SaltString::encode_b64(&[7u8; 16]).expect("salt");
        let older = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 3, 1, None).expect("params"),
        );
        for hasher in [argon2().expect("params"), older] {
            let theirs = hasher
                .hash_password(b"correct horse battery staple", &salt)
                .expect("hash")
                .to_string();
            let stored = OneWayHash::from_stored(&theirs);
            assert!(verify(&pw("correct horse battery staple"), &stored));
            assert!(!verify(&pw("correct horse battery stapl"), &stored));
        }
    }

    #[test]
    fn new_password_rules() {
        assert_eq!(check_new(&pw("short"), &[]), Err(WeakPassword::TooShort));
        assert_eq!(
            check_new(&pw(&"a".repeat(129)), &[]),
            Err(WeakPassword::TooLong)
        );
        assert_eq!(
            check_new(&pw("qwerty123456"), &[]),
            Err(WeakPassword::Common)
        );
        assert_eq!(
            check_new(&pw("Q1W2E3R4T5Y6"), &[]),
            Err(WeakPassword::Common)
        );
        assert_eq!(
            check_new(&pw("aaaaaaaaaaaaaa"), &[]),
            Err(WeakPassword::Repetitive)
        );
        assert_eq!(
            check_new(&pw("abcdefghijklmn"), &[]),
            Err(WeakPassword::Repetitive)
        );
        assert_eq!(
            check_new(&pw("xyzxyzxyzxyz"), &[]),
            Err(WeakPassword::Repetitive)
        );
        assert_eq!(
            check_new(
                &pw("ana.lopez2026!"),
                &["ana.lopez@example.com", "ana.lopez"]
            ),
            Err(WeakPassword::ContextSpecific)
        );
        assert_eq!(
            check_new(&pw("myqchat2026!"), &[]),
            Err(WeakPassword::ContextSpecific)
        );
        assert_eq!(
            check_new(
                &pw("violet tram conducts 7 owls"),
                &["ana@example.com", "ana"]
            ),
            Ok(())
        );
    }
}
