//! Passwords: the policy, and argon2id hashing in PHC string format.
//!
//! The policy (OWASP ASVS / NIST SP 800-63B): at least 12 characters, at most 256; rejected when
//! a strength estimator (zxcvbn, which knows common passwords, dictionary words, keyboard walks,
//! dates and the user's own inputs) scores it below 3 of 4, or when it contains the account's
//! email, its local part, the person's name or the store's name. No composition rules.
//!
//! Hashing uses the `argon2` crate's defaults, which are OWASP's recommended argon2id
//! parameters: m = 19 MiB, t = 2, p = 1.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use domain::DomainError;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 256;

/// What the password must not contain or resemble: the email, the person's name, the store's
/// name.
#[derive(Debug, Default, Clone, Copy)]
pub struct PasswordContext<'a> {
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub store_name: Option<&'a str>,
}

/// A password that meets the policy. Never logged: `Debug` is redacted.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Parses against the policy. Errors name the rule, never the password.
    pub fn parse(raw: &str, context: PasswordContext<'_>) -> Result<Self, DomainError> {
        let n = raw.chars().count();
        if n < MIN_LENGTH {
            return Err(DomainError::invalid("password", format!("must be at least {MIN_LENGTH} characters")));
        }
        if n > MAX_LENGTH {
            return Err(DomainError::invalid("password", format!("must be at most {MAX_LENGTH} characters")));
        }
        let lower = raw.to_lowercase();
        let mut inputs: Vec<String> = Vec::new();
        if let Some(email) = context.email {
            let email = email.trim().to_lowercase();
            if let Some((local, _)) = email.split_once('@') {
                inputs.push(local.to_owned());
            }
            inputs.push(email);
        }
        for extra in [context.name, context.store_name].into_iter().flatten() {
            let v = extra.trim().to_lowercase();
            inputs.extend(v.split_whitespace().map(str::to_owned));
            inputs.push(v);
        }
        inputs.retain(|i| i.chars().count() >= 4);
        if inputs.iter().any(|i| lower.contains(i.as_str())) {
            return Err(DomainError::invalid("password", "must not contain your email, your name or the store's name"));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        if (zxcvbn::zxcvbn(raw, &refs).score() as u8) < 3 {
            return Err(DomainError::invalid(
                "password",
                "is too easy to guess (a common password, word or pattern); use a longer passphrase",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// argon2id with a fresh salt. Deliberately slow: call from a blocking thread.
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

    fn parse(p: &str) -> Result<Password, DomainError> {
        Password::parse(
            p,
            PasswordContext {
                email: Some("Jane.Doe@Example.com"),
                name: Some("Jane Doe"),
                store_name: Some("Tick Tock Watches"),
            },
        )
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify_only_the_right_password() {
        let p = parse("correct horse battery staple").unwrap();
        let h = p.hash();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery staple", &h));
        assert!(!verify("wrong horse battery staple", &h));
        assert!(!verify("correct horse battery staple", "not a hash"));
        assert_ne!(h, p.hash(), "salted");
    }

    #[test]
    fn short_common_or_personal_passwords_are_rejected_and_never_printed() {
        for weak in ["short", "elevenchars", "password1234", "qwertyuiop123", "123456789012"] {
            let e = parse(weak).map(|_| ()).unwrap_err();
            assert_eq!(e.field(), Some("password"), "{weak}");
            assert!(!e.to_string().contains(weak), "the message never quotes the password");
        }
        for personal in
            ["jane.doe@example.com!!", "xx-Jane.Doe-2026-zz", "ticktock is great 99", "my watches are 4 sale"]
        {
            assert!(parse(personal).is_err(), "{personal} contains the email, name or store name");
        }
        assert_eq!(format!("{:?}", parse("long enough secret passphrase").unwrap()), "Password(<redacted>)");
        assert!(parse(&"x".repeat(257)).is_err());
    }
}
