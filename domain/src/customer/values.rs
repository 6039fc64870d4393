//! What a customer's fields are checked and stored as: external ids, birthday, tags (personal
//! data, with the legacy plain form still read), notes.

use crate::values::Text;
use crate::{DomainError, Pii};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub(super) fn parse_external_ids(ids: &BTreeMap<String, String>) -> Result<BTreeMap<String, Pii<String>>, DomainError> {
    if ids.len() > 20 {
        return Err(DomainError::invalid("externalIds", "at most 20 external ids"));
    }
    ids.iter()
        .map(|(system, id)| {
            Ok((
                Text::parse("externalIds", system, 50)?.into_inner().to_lowercase(),
                Pii::profile(Text::parse("externalIds", id, 200)?.into_inner()),
            ))
        })
        .collect()
}

pub(super) fn parse_birthday(b: NaiveDate) -> Result<NaiveDate, DomainError> {
    use chrono::Datelike;
    if b.year() < 1900 || b.year() > 2100 {
        return Err(DomainError::invalid("birthday", "is not a plausible date of birth"));
    }
    Ok(b)
}

/// A customer's tags. They describe a person ("vip", "collects Patek"), so they are personal
/// data under the customer's `profile` key. Events written before tags were encrypted carry a
/// plain list, which still reads; those few stay in the log as written, and erasure purges them
/// from every read model.
#[derive(Debug, Clone, PartialEq)]
pub struct Tags(pub Pii<Vec<String>>);

impl Tags {
    pub fn new(tags: Vec<String>) -> Self {
        Self(Pii::profile(tags))
    }

    /// The tags, or none once erased.
    pub fn values(&self) -> Vec<String> {
        self.0.clear().cloned().unwrap_or_default()
    }
}

impl Serialize for Tags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        if value.is_array() {
            // Written before tags were personal data.
            return serde_json::from_value::<Vec<String>>(value).map(Tags::new).map_err(D::Error::custom);
        }
        serde_json::from_value::<Pii<Vec<String>>>(value).map(Tags).map_err(|_| D::Error::custom("invalid tags"))
    }
}

pub(super) fn parse_tags(tags: &[String]) -> Result<Vec<String>, DomainError> {
    if tags.len() > 50 {
        return Err(DomainError::invalid("tags", "at most 50 tags"));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        let t = Text::parse("tags", t, 50)?.into_inner();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

pub(super) fn parse_notes(raw: &str) -> Result<String, DomainError> {
    let s = raw.trim();
    if s.chars().count() > 5000 {
        return Err(DomainError::invalid("notes", "must be at most 5000 characters"));
    }
    Ok(s.to_owned())
}

pub(super) fn nonempty(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tag_tests {
    use super::*;
    use crate::aggregate::{decode, encode};
    use crate::customer::CustomerEvent;
    use crate::CustomerId;

    #[test]
    fn tags_are_personal_data_and_legacy_plain_lists_still_read() {
        let event = CustomerEvent::CustomerDetailsUpdated {
            customer_id: CustomerId::from_uuid(uuid::Uuid::from_u128(1)),
            name: None,
            email: None,
            phone: None,
            notes: None,
            tags: Some(Tags::new(vec!["collects patek".into()])),
            cleared: vec![],
            address: None,
            birthday: None,
            assigned_to: None,
            source: None,
            external_ids: None,
        };
        let enc = encode(&event);
        assert_eq!(enc.payload["tags"]["$pii"]["class"], "profile", "marked for encryption: {}", enc.payload);
        assert_eq!(decode::<CustomerEvent>(&enc.event_type, &enc.payload).unwrap(), event);
        let mut legacy = enc.payload.clone();
        legacy["tags"] = serde_json::json!(["vip"]);
        match decode::<CustomerEvent>(&enc.event_type, &legacy).unwrap() {
            CustomerEvent::CustomerDetailsUpdated { tags: Some(t), .. } => {
                assert_eq!(t.values(), vec!["vip".to_owned()])
            }
            other => panic!("{other:?}"),
        }
    }
}
