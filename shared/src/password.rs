//! Passwords: argon2id hashing (OWASP's minimum m = 19 MiB, t = 2, p = 1) and the rules for new passwords
//! (NIST SP 800-63B: at least 12 characters, not a known common or breached password, not built from the
//! service's or the account's own name).

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

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

/// An argon2id PHC string with a random 128-bit salt.
pub fn hash(password: &Password) -> Result<OneWayHash, PasswordError> {
    let salt = SaltString::encode_b64(&crate::crypto::random_bytes::<16>())
        .map_err(|_| PasswordError::Hashing)?;
    let phc = argon2()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|_| PasswordError::Hashing)?
        .to_string();
    Ok(OneWayHash::from_phc(phc))
}

/// Whether `password` matches the stored hash. The parameters stored in the hash are used, so hashes made
/// with older parameters still verify.
pub fn verify(password: &Password, stored: &OneWayHash) -> bool {
    let Ok(parsed) = PasswordHash::new(stored.as_str()) else {
        return false;
    };
    argon2().is_ok_and(|a| {
        a.verify_password(password.expose().as_bytes(), &parsed)
            .is_ok()
    })
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
