//! Personal data as a type.
//!
//! Every personal field of an event is a [`Pii<T>`]: either `Clear` (the value, with the key class
//! it must be encrypted under) or `Erased` (the subject's key was destroyed). Every reader —
//! aggregate, projection, audit view, export — must match on it, so erasure is handled
//! explicitly instead of surfacing as an error or a placeholder string.
//!
//! The domain only marks fields; it never encrypts. On the wire a clear value is the marker
//! `{"$pii": {"class": "profile", "value": ...}}`; the event store replaces every such marker by
//! ciphertext before anything is written and turns ciphertext back into a marker (clear, or
//! `"erased": true` when the key is gone) on every read.

use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The JSON key that marks a personal-data field in an event payload.
pub const PII_MARKER: &str = "$pii";

/// Which data key of a subject protects a field. Classes are destroyed independently: erasure
/// destroys `Profile` and `ConsentEvidence` at once, `LegalHold` only when retention ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyClass {
    /// Contact and profile data: names, emails, phones, addresses, notes.
    Profile,
    /// Buyer identity on transaction records, kept for tax/AML after an erasure request.
    LegalHold,
    /// Evidence of a consent capture (IP address, user agent).
    ConsentEvidence,
}

impl KeyClass {
    pub const ALL: [KeyClass; 3] = [KeyClass::Profile, KeyClass::LegalHold, KeyClass::ConsentEvidence];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::LegalHold => "legal_hold",
            Self::ConsentEvidence => "consent_evidence",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A personal-data value, or the fact that it was erased.
#[derive(Clone, PartialEq, Eq)]
pub enum Pii<T> {
    Clear { class: KeyClass, value: T },
    Erased { class: KeyClass, at: Option<DateTime<Utc>> },
}

impl<T> Pii<T> {
    pub fn profile(value: T) -> Self {
        Self::Clear { class: KeyClass::Profile, value }
    }
    pub fn class(&self) -> KeyClass {
        match self {
            Self::Clear { class, .. } | Self::Erased { class, .. } => *class,
        }
    }
    pub fn clear(&self) -> Option<&T> {
        match self {
            Self::Clear { value, .. } => Some(value),
            Self::Erased { .. } => None,
        }
    }
    pub fn is_erased(&self) -> bool {
        matches!(self, Self::Erased { .. })
    }
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Pii<U> {
        match self {
            Self::Clear { class, value } => Pii::Clear { class, value: f(value) },
            Self::Erased { class, at } => Pii::Erased { class, at },
        }
    }
}

impl<T> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Clear { class, .. } => write!(f, "Pii({}, <redacted>)", class.as_str()),
            Self::Erased { class, .. } => write!(f, "Pii({}, erased)", class.as_str()),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Marker<T> {
    class: KeyClass,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    value: Option<T>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    erased: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<DateTime<Utc>>,
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Serialize, Deserialize)]
struct Wire<T> {
    #[serde(rename = "$pii")]
    pii: Marker<T>,
}

impl<T: Serialize> Serialize for Pii<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pii = match self {
            Self::Clear { class, value } => Marker { class: *class, value: Some(value), erased: false, at: None },
            Self::Erased { class, at } => Marker { class: *class, value: None, erased: true, at: *at },
        };
        Wire { pii }.serialize(s)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Pii<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Wire { pii } = Wire::<T>::deserialize(d)?;
        match (pii.erased, pii.value) {
            (true, _) => Ok(Self::Erased { class: pii.class, at: pii.at }),
            (false, Some(value)) => Ok(Self::Clear { class: pii.class, value }),
            (false, None) => Err(D::Error::custom("personal-data marker without value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_values_serialise_as_markers_the_store_can_find() {
        let v = serde_json::to_value(Pii::profile("Ann".to_owned())).unwrap();
        assert_eq!(v, serde_json::json!({"$pii": {"class": "profile", "value": "Ann"}}));
        let back: Pii<String> = serde_json::from_value(v).unwrap();
        assert_eq!(back.clear().map(String::as_str), Some("Ann"));
    }

    #[test]
    fn erased_markers_read_back_as_erased_not_as_errors() {
        let v = serde_json::json!({"$pii": {"class": "profile", "erased": true}});
        let back: Pii<String> = serde_json::from_value(v).unwrap();
        assert!(back.is_erased());
        assert_eq!(back.class(), KeyClass::Profile);
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = format!("{:?}", Pii::profile("Ann Secret".to_owned()));
        assert!(!s.contains("Secret"), "{s}");
    }
}
