//! Restriction of processing (policy §6, right to restriction): a customer may have some
//! purposes restricted — typically while a complaint or a rectification is looked into. A
//! restricted purpose is left out of every marketing use, whatever consent says. Stream:
//! `restriction-<customer>`; the reason travels in the events' metadata.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::consent::Purpose;
use crate::{CustomerId, DomainError, StoreId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The stream of a customer's restrictions.
pub fn restriction_stream(customer: CustomerId) -> String {
    format!("restriction-{customer}")
}

#[derive(Debug, Clone)]
pub enum RestrictionCommand {
    Restrict { customer_id: CustomerId, store_id: StoreId, purposes: Vec<Purpose>, at: DateTime<Utc> },
    Lift { customer_id: CustomerId, store_id: StoreId, purposes: Vec<Purpose>, at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RestrictionEvent {
    ProcessingRestricted { customer_id: CustomerId, store_id: StoreId, purposes: Vec<Purpose>, at: DateTime<Utc> },
    RestrictionLifted { customer_id: CustomerId, store_id: StoreId, purposes: Vec<Purpose>, at: DateTime<Utc> },
}

impl RestrictionEvent {
    pub fn customer_id(&self) -> CustomerId {
        match self {
            Self::ProcessingRestricted { customer_id, .. } | Self::RestrictionLifted { customer_id, .. } => {
                *customer_id
            }
        }
    }
}

impl DomainEvent for RestrictionEvent {
    fn data_subject(&self) -> Option<Uuid> {
        Some(self.customer_id().as_uuid())
    }
}

/// The purposes restricted at each instant, from a customer's restriction events.
pub fn restricted_as_of<'a>(
    events: impl IntoIterator<Item = &'a RestrictionEvent>,
    at: DateTime<Utc>,
) -> BTreeSet<Purpose> {
    let mut latest: BTreeMap<Purpose, (DateTime<Utc>, bool)> = BTreeMap::new();
    for e in events {
        let (purposes, when, restricted) = match e {
            RestrictionEvent::ProcessingRestricted { purposes, at, .. } => (purposes, *at, true),
            RestrictionEvent::RestrictionLifted { purposes, at, .. } => (purposes, *at, false),
        };
        if when > at {
            continue;
        }
        for p in purposes {
            // Later facts win; at the same instant a restriction wins.
            let replace = latest.get(p).is_none_or(|(t, r)| when > *t || (when == *t && restricted && !r));
            if replace {
                latest.insert(*p, (when, restricted));
            }
        }
    }
    latest.into_iter().filter(|(_, (_, r))| *r).map(|(p, _)| p).collect()
}

#[derive(Debug, Clone, Default)]
pub struct ProcessingRestriction {
    pub events: Vec<RestrictionEvent>,
}

fn purposes(list: &[Purpose]) -> Result<Vec<Purpose>, DomainError> {
    let set: BTreeSet<Purpose> = list.iter().copied().collect();
    if set.is_empty() {
        return Err(DomainError::invalid("purposes", "name at least one purpose"));
    }
    Ok(set.into_iter().collect())
}

impl Aggregate for ProcessingRestriction {
    type Command = RestrictionCommand;
    type Event = RestrictionEvent;
    const KIND: &'static str = "processing restriction";

    fn decide(&self, command: &RestrictionCommand) -> Result<Vec<RestrictionEvent>, DomainError> {
        let now_restricted = |at| restricted_as_of(&self.events, at);
        Ok(match command {
            RestrictionCommand::Restrict { customer_id, store_id, purposes: p, at } => {
                let current = now_restricted(*at);
                let new: Vec<Purpose> = purposes(p)?.into_iter().filter(|p| !current.contains(p)).collect();
                if new.is_empty() {
                    return Ok(vec![]);
                }
                vec![RestrictionEvent::ProcessingRestricted {
                    customer_id: *customer_id,
                    store_id: *store_id,
                    purposes: new,
                    at: *at,
                }]
            }
            RestrictionCommand::Lift { customer_id, store_id, purposes: p, at } => {
                let current = now_restricted(*at);
                let lifted: Vec<Purpose> = purposes(p)?.into_iter().filter(|p| current.contains(p)).collect();
                if lifted.is_empty() {
                    return Ok(vec![]);
                }
                vec![RestrictionEvent::RestrictionLifted {
                    customer_id: *customer_id,
                    store_id: *store_id,
                    purposes: lifted,
                    at: *at,
                }]
            }
        })
    }

    fn evolve(mut self, event: &RestrictionEvent) -> Self {
        self.events.push(event.clone());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;
    use chrono::Duration;

    fn ids() -> (CustomerId, StoreId) {
        (CustomerId::from_uuid(Uuid::from_u128(1)), StoreId::from_uuid(Uuid::from_u128(2)))
    }

    #[test]
    fn a_restriction_holds_from_when_it_is_made_until_it_is_lifted() {
        let (customer_id, store_id) = ids();
        let t0: DateTime<Utc> = "2026-05-01T00:00:00Z".parse().unwrap();
        let restrict = |at, p: Vec<Purpose>| RestrictionCommand::Restrict { customer_id, store_id, purposes: p, at };
        let lift = |at, p: Vec<Purpose>| RestrictionCommand::Lift { customer_id, store_id, purposes: p, at };
        let r = given::<ProcessingRestriction>(&[])
            .when(restrict(t0, vec![Purpose::MarketingEmail, Purpose::MarketingEmail, Purpose::Profiling]))
            .events();
        let RestrictionEvent::ProcessingRestricted { purposes, .. } = &r[0] else { panic!() };
        assert_eq!(purposes, &vec![Purpose::MarketingEmail, Purpose::Profiling], "deduplicated");
        // Restricting what is restricted, or lifting what is not, changes nothing.
        given::<ProcessingRestriction>(&r)
            .when(restrict(t0 + Duration::hours(1), vec![Purpose::Profiling]))
            .then_expect(&[]);
        given::<ProcessingRestriction>(&r)
            .when(lift(t0 + Duration::hours(1), vec![Purpose::MarketingSms]))
            .then_expect(&[]);
        let l = given::<ProcessingRestriction>(&r)
            .when(lift(t0 + Duration::hours(2), vec![Purpose::MarketingEmail]))
            .events();
        let all: Vec<_> = r.iter().chain(&l).cloned().collect();
        assert!(restricted_as_of(&all, t0 - Duration::seconds(1)).is_empty());
        assert!(restricted_as_of(&all, t0 + Duration::hours(1)).contains(&Purpose::MarketingEmail));
        let later = restricted_as_of(&all, t0 + Duration::hours(3));
        assert!(!later.contains(&Purpose::MarketingEmail) && later.contains(&Purpose::Profiling));
        given::<ProcessingRestriction>(&[]).when(restrict(t0, vec![])).then_reject("INVALID");
    }
}
