//! The consent ledger of one customer: every grant and withdrawal per purpose and channel,
//! with the notice version, how and when it was captured, and evidence. Evidence (IP address,
//! user agent) is personal data under the customer's `consent_evidence` key.
//!
//! The state "as of" an instant is the latest fact per (purpose, channel) whose effective time
//! is not after that instant; at equal times a withdrawal wins, and a grant whose effective time
//! is older than a recorded withdrawal never overrides it. Re-granting is a new fact.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::pii::KeyClass;
use crate::values::Text;
use crate::{CustomerId, DomainError, Pii, StoreId};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Purpose {
    MarketingEmail,
    MarketingSms,
    MarketingPhone,
    MarketingPost,
    Profiling,
    ThirdPartySharing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    Email,
    Sms,
    Phone,
    Post,
    InPerson,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaptureMethod {
    InStore,
    WebForm,
    LeadApi,
    Import,
    Integration,
}

/// No marketing consent below this age (policy §9).
pub const MINIMUM_AGE: u32 = 16;

/// What the consent rules need to know about the customer, from their own stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectFacts {
    pub birthday: Option<NaiveDate>,
    pub erased: bool,
}

/// Completed years of age on `on`.
pub fn age_on(birthday: NaiveDate, on: NaiveDate) -> u32 {
    use chrono::Datelike;
    let years = on.year() - birthday.year();
    let before_birthday = (on.month(), on.day()) < (birthday.month(), birthday.day());
    (years - i32::from(before_birthday)).max(0) as u32
}

/// One grant or withdrawal, as given.
#[derive(Debug, Clone)]
pub struct ConsentChange {
    pub customer_id: CustomerId,
    pub store_id: StoreId,
    pub purpose: Purpose,
    pub channel: Channel,
    pub notice_version: String,
    pub method: CaptureMethod,
    /// The staff member or API key that captured it.
    pub captured_by: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// When the customer gave or withdrew consent (may be before it is recorded).
    pub effective_at: DateTime<Utc>,
    pub subject: SubjectFacts,
}

#[derive(Debug, Clone)]
pub enum ConsentCommand {
    Grant(ConsentChange),
    Withdraw(ConsentChange),
}

/// The recorded fact; both kinds carry the same fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentFact {
    pub customer_id: CustomerId,
    pub store_id: StoreId,
    pub purpose: Purpose,
    pub channel: Channel,
    pub notice_version: String,
    pub method: CaptureMethod,
    pub captured_by: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Pii<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Pii<String>>,
    pub effective_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ConsentEvent {
    ConsentGranted(ConsentFact),
    ConsentWithdrawn(ConsentFact),
}

impl ConsentEvent {
    pub fn fact(&self) -> &ConsentFact {
        match self {
            Self::ConsentGranted(f) | Self::ConsentWithdrawn(f) => f,
        }
    }
    pub fn granted(&self) -> bool {
        matches!(self, Self::ConsentGranted(_))
    }
}

impl DomainEvent for ConsentEvent {
    fn data_subject(&self) -> Option<Uuid> {
        Some(self.fact().customer_id.as_uuid())
    }
}

/// The state of one (purpose, channel).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentStatus {
    pub granted: bool,
    pub notice_version: String,
    pub effective_at: DateTime<Utc>,
}

/// Consent per (purpose, channel) as of `at`, from the ledger's events in recorded order.
pub fn state_as_of<'a>(
    events: impl IntoIterator<Item = &'a ConsentEvent>,
    at: DateTime<Utc>,
) -> BTreeMap<(Purpose, Channel), ConsentStatus> {
    let mut state: BTreeMap<(Purpose, Channel), ConsentStatus> = BTreeMap::new();
    for e in events {
        let f = e.fact();
        if f.effective_at > at {
            continue;
        }
        let key = (f.purpose, f.channel);
        let replace = match state.get(&key) {
            None => true,
            Some(cur) if f.effective_at > cur.effective_at => true,
            // Same instant: a withdrawal wins over a grant.
            Some(cur) if f.effective_at == cur.effective_at => !e.granted(),
            Some(_) => false,
        };
        if replace {
            state.insert(
                key,
                ConsentStatus {
                    granted: e.granted(),
                    notice_version: f.notice_version.clone(),
                    effective_at: f.effective_at,
                },
            );
        }
    }
    state
}

#[derive(Debug, Clone, Default)]
pub struct ConsentLedger {
    pub events: Vec<ConsentEvent>,
}

fn fact(c: &ConsentChange) -> Result<ConsentFact, DomainError> {
    let evidence = |raw: &Option<String>, field: &'static str| -> Result<Option<Pii<String>>, DomainError> {
        match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(v) => Ok(Some(Pii::Clear {
                class: KeyClass::ConsentEvidence,
                value: Text::parse(field, v, 1000)?.into_inner(),
            })),
        }
    };
    Ok(ConsentFact {
        customer_id: c.customer_id,
        store_id: c.store_id,
        purpose: c.purpose,
        channel: c.channel,
        notice_version: Text::parse("noticeVersion", &c.notice_version, 100)?.into_inner(),
        method: c.method,
        captured_by: c.captured_by,
        ip: evidence(&c.ip, "evidence.ip")?,
        user_agent: evidence(&c.user_agent, "evidence.userAgent")?,
        effective_at: c.effective_at,
    })
}

impl Aggregate for ConsentLedger {
    type Command = ConsentCommand;
    type Event = ConsentEvent;
    const KIND: &'static str = "consent ledger";

    fn decide(&self, command: &ConsentCommand) -> Result<Vec<ConsentEvent>, DomainError> {
        let (ConsentCommand::Grant(c) | ConsentCommand::Withdraw(c)) = command;
        if c.subject.erased {
            return Err(DomainError::Erased { kind: "customer" });
        }
        Ok(match command {
            ConsentCommand::Grant(c) => {
                // Every purpose here is a marketing use (contact, profiling, sharing).
                if let Some(b) = c.subject.birthday {
                    if age_on(b, c.effective_at.date_naive()) < MINIMUM_AGE {
                        return Err(DomainError::UnderAge { minimum: MINIMUM_AGE });
                    }
                }
                vec![ConsentEvent::ConsentGranted(fact(c)?)]
            }
            // Withdrawing is always recorded, even when nothing was granted: it is evidence.
            ConsentCommand::Withdraw(c) => vec![ConsentEvent::ConsentWithdrawn(fact(c)?)],
        })
    }

    fn evolve(mut self, event: &ConsentEvent) -> Self {
        self.events.push(event.clone());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;
    use chrono::Duration;

    fn change(at: DateTime<Utc>) -> ConsentChange {
        ConsentChange {
            customer_id: CustomerId::from_uuid(Uuid::from_u128(1)),
            store_id: StoreId::from_uuid(Uuid::from_u128(2)),
            purpose: Purpose::MarketingEmail,
            channel: Channel::Email,
            notice_version: "2026-05".into(),
            method: CaptureMethod::WebForm,
            captured_by: None,
            ip: Some("203.0.113.9".into()),
            user_agent: Some("Mozilla/5.0".into()),
            effective_at: at,
            subject: SubjectFacts::default(),
        }
    }

    #[test]
    fn no_marketing_consent_under_sixteen_but_withdrawals_always_record() {
        let at: DateTime<Utc> = "2026-06-15T12:00:00Z".parse().unwrap();
        let mut c = change(at);
        c.subject.birthday = Some(NaiveDate::from_ymd_opt(2010, 6, 16).unwrap());
        let e = given::<ConsentLedger>(&[]).when(ConsentCommand::Grant(c.clone())).then_reject("UNDER_AGE");
        assert_eq!(e.field(), Some("customerId"));
        given::<ConsentLedger>(&[]).when(ConsentCommand::Withdraw(c.clone())).events();
        // Sixteen on the day.
        c.subject.birthday = Some(NaiveDate::from_ymd_opt(2010, 6, 15).unwrap());
        given::<ConsentLedger>(&[]).when(ConsentCommand::Grant(c.clone())).events();
        c.subject.erased = true;
        given::<ConsentLedger>(&[]).when(ConsentCommand::Grant(c)).then_reject("ERASED");
        assert_eq!(
            age_on(NaiveDate::from_ymd_opt(2008, 2, 29).unwrap(), NaiveDate::from_ymd_opt(2024, 2, 28).unwrap()),
            15
        );
        assert_eq!(
            age_on(NaiveDate::from_ymd_opt(2008, 2, 29).unwrap(), NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
            16
        );
    }

    #[test]
    fn evidence_is_personal_data_under_its_own_key_class() {
        let e = given::<ConsentLedger>(&[]).when(ConsentCommand::Grant(change(Utc::now()))).events();
        assert_eq!(e[0].fact().ip.as_ref().unwrap().class(), KeyClass::ConsentEvidence);
        assert_eq!(e[0].data_subject(), Some(Uuid::from_u128(1)));
    }

    #[test]
    fn consent_is_answerable_as_of_any_instant_and_withdrawal_wins_over_older_grants() {
        let t0 = Utc::now();
        let grant = given::<ConsentLedger>(&[]).when(ConsentCommand::Grant(change(t0))).events();
        let withdraw =
            given::<ConsentLedger>(&grant).when(ConsentCommand::Withdraw(change(t0 + Duration::hours(1)))).events();
        // A grant recorded later but effective before the withdrawal does not override it.
        let late_old_grant =
            given::<ConsentLedger>(&[]).when(ConsentCommand::Grant(change(t0 + Duration::minutes(30)))).events();
        let all: Vec<_> = grant.iter().chain(&withdraw).chain(&late_old_grant).cloned().collect();
        let key = (Purpose::MarketingEmail, Channel::Email);
        assert!(!state_as_of(&all, t0 - Duration::seconds(1)).contains_key(&key));
        assert!(state_as_of(&all, t0).get(&key).unwrap().granted);
        assert!(
            state_as_of(&all, t0 + Duration::minutes(45)).get(&key).unwrap().granted,
            "grant at +30m applies until +1h"
        );
        assert!(!state_as_of(&all, t0 + Duration::hours(2)).get(&key).unwrap().granted);
        // Re-granting later is a new fact and applies from then on.
        let regrant =
            given::<ConsentLedger>(&all).when(ConsentCommand::Grant(change(t0 + Duration::hours(3)))).events();
        let all: Vec<_> = all.into_iter().chain(regrant).collect();
        assert!(state_as_of(&all, t0 + Duration::hours(4)).get(&key).unwrap().granted);
        assert!(!state_as_of(&all, t0 + Duration::hours(2)).get(&key).unwrap().granted, "history is unchanged");
    }

    #[test]
    fn at_the_same_instant_a_withdrawal_wins() {
        let t = Utc::now();
        let mut all = given::<ConsentLedger>(&[]).when(ConsentCommand::Withdraw(change(t))).events();
        all.extend(given::<ConsentLedger>(&all).when(ConsentCommand::Grant(change(t))).events());
        assert!(!state_as_of(&all, t).get(&(Purpose::MarketingEmail, Channel::Email)).unwrap().granted);
    }

    #[test]
    fn a_blank_notice_version_is_rejected() {
        let mut c = change(Utc::now());
        c.notice_version = " ".into();
        let e = given::<ConsentLedger>(&[]).when(ConsentCommand::Grant(c)).then_reject("INVALID");
        assert_eq!(e.field(), Some("noticeVersion"));
    }
}
