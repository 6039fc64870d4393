//! Value objects that parse, not validate: once you hold an `Email`, it is a well-formed email.
//! Parse errors never echo the input, because the input may be personal data.

use crate::DomainError;
use serde::{Deserialize, Serialize};

/// A trimmed, non-empty, single-line text of bounded length (brands, models, store names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    pub fn parse(field: &'static str, raw: &str, max_len: usize) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DomainError::invalid(field, "must not be empty"));
        }
        if trimmed.chars().count() > max_len {
            return Err(DomainError::invalid(field, format!("must be at most {max_len} characters")));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DomainError::invalid(field, "must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A person's name as they gave it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Text::parse("name", raw, 200).map(|t| Self(t.into_inner()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: one `@`, a non-empty local part, a dotted domain, no whitespace.
/// The domain part is lower-cased; the local part is kept as given.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        let invalid = || DomainError::invalid("email", "is not a valid email address");
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = s.split_once('@').ok_or_else(invalid)?;
        if local.is_empty()
            || local.len() > 64
            || domain.contains('@')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || !domain.contains('.')
            || domain.contains("..")
        {
            return Err(invalid());
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The form used for lookups (login, duplicate detection): fully lower-cased.
    pub fn lookup_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A phone number: digits with an optional leading `+` and common separators; 5–20 digits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        let invalid = || DomainError::invalid("phone", "is not a valid phone number");
        let body = s.strip_prefix('+').unwrap_or(s);
        if !body.chars().all(|c| c.is_ascii_digit() || " -().".contains(c)) {
            return Err(invalid());
        }
        let digits = body.chars().filter(char::is_ascii_digit).count();
        if !(5..=20).contains(&digits) {
            return Err(invalid());
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! redacted_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($t), "(<redacted>)"))
            }
        }
    )*};
}
// Personal data must never reach logs or panic messages through `{:?}`.
redacted_debug!(PersonName, Email, Phone);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_parse_and_normalise_the_domain() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().as_str(), "Ann@example.com");
        assert_eq!(Email::parse("Ann@Example.COM").unwrap().lookup_key(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@x.com", "a@b", "a@@b.com", "a b@c.com", "a@.com", "a@b..com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn parse_errors_never_echo_personal_input() {
        let err = Email::parse("secret-person@").unwrap_err().to_string();
        assert!(!err.contains("secret-person"), "{err}");
        let err = Phone::parse("call secret-person").unwrap_err().to_string();
        assert!(!err.contains("secret-person"), "{err}");
    }

    #[test]
    fn debug_output_of_personal_values_is_redacted() {
        let e = Email::parse("ann@example.com").unwrap();
        assert_eq!(format!("{e:?}"), "Email(<redacted>)");
    }

    #[test]
    fn phones_and_names_parse() {
        assert!(Phone::parse("+1 (212) 555-0100").is_ok());
        assert!(Phone::parse("12").is_err());
        assert!(Phone::parse("555-CALL-NOW").is_err());
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse("Ann\u{0007}").is_err());
        assert_eq!(PersonName::parse("  Ann Lee ").unwrap().as_str(), "Ann Lee");
    }
}
