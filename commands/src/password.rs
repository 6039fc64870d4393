//! Password hashing with argon2id (RFC 9106 defaults of the `argon2` crate), PHC string format.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use domain::DomainError;

/// A password that meets the policy. Never logged: `Debug` is redacted.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let n = raw.chars().count();
        if n < 10 {
            return Err(DomainError::invalid("password", "must be at least 10 characters"));
        }
        if n > 256 {
            return Err(DomainError::invalid("password", "must be at most 256 characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn hash(&self) -> String {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(self.0.as_bytes(), &salt).expect("argon2 hashing with valid params").to_string()
    }
}

/// Checks a password against a stored PHC hash. A malformed hash never verifies.
pub fn verify(raw: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(raw.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the account does not exist, so a missing account and a wrong
/// password take the same time.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| Password("dummy password for timing".into()).hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify_only_the_right_password() {
        let p = Password::parse("correct horse battery").unwrap();
        let h = p.hash();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_ne!(h, p.hash(), "salted");
    }

    #[test]
    fn short_passwords_are_rejected_and_never_printed() {
        assert_eq!(Password::parse("short").unwrap_err().field(), Some("password"));
        assert_eq!(format!("{:?}", Password::parse("long enough secret").unwrap()), "Password(<redacted>)");
    }
}
