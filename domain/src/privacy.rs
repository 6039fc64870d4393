//! Privacy requests (policy §6): a data subject's request to access, erase, rectify, restrict or
//! port their data, handled as a case. Every step is an event on the request's own stream
//! (`privacy_request-<uuid>`); the request is due 30 days after it was received.
//!
//! An erasure is recorded before anything is destroyed: `ErasureStarted` names the keys about
//! to be destroyed (class, key id, fingerprint), then the keys are destroyed, then
//! `ErasureCompleted` is appended together with the subject's own erased event. A crash in
//! between leaves a started request, which running the erasure again finishes.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::values::Text;
use crate::{CustomerId, DomainError, KeyClass, Pii, StoreId, UserId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long the store has to answer a request (policy §6: one month).
pub const RESPONSE_DAYS: i64 = 30;

pub use crate::ids::PrivacyRequestId;

/// What the subject asked for (policy §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestKind {
    Access,
    Erasure,
    Rectification,
    Restriction,
    Portability,
}

/// Whose data the request is about: a customer, or a staff member (policy §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    Customer(CustomerId),
    Staff(UserId),
}

impl Subject {
    pub fn as_uuid(&self) -> Uuid {
        match self {
            Self::Customer(c) => c.as_uuid(),
            Self::Staff(u) => u.as_uuid(),
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Customer(_) => "customer",
            Self::Staff(_) => "staff",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestStatus {
    Open,
    InProgress,
    Completed,
}

/// A data key an erasure destroys, as named in the request and in the certificate. The
/// fingerprint is taken while the key still exists; the key id stays in the key store as a
/// destroyed record anyone with database access can check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestroyedKey {
    pub class: KeyClass,
    pub key_id: Uuid,
    pub fingerprint: String,
}

#[derive(Debug, Clone)]
pub struct OpenPrivacyRequest {
    pub request_id: PrivacyRequestId,
    pub store_id: StoreId,
    pub subject: Subject,
    pub kind: RequestKind,
    /// How the request reached the store: email, phone, in store, post, web form.
    pub received_via: String,
    /// How the subject's identity was checked (personal data: kept under the subject's key).
    pub identity_verified_by: Option<String>,
    pub notes: Option<String>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum PrivacyRequestCommand {
    Open(OpenPrivacyRequest),
    /// Records the erasure (and the keys it will destroy) before anything is destroyed.
    StartErasure {
        keys: Vec<DestroyedKey>,
        at: DateTime<Utc>,
    },
    CompleteErasure {
        at: DateTime<Utc>,
    },
    /// An access or portability request answered with an export of these sections; the
    /// request is then complete.
    RecordExport {
        sections: Vec<String>,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum PrivacyRequestEvent {
    PrivacyRequestOpened {
        request_id: PrivacyRequestId,
        store_id: StoreId,
        subject: Subject,
        kind: RequestKind,
        received_via: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity_verified_by: Option<Pii<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<Pii<String>>,
        received_at: DateTime<Utc>,
        due_at: DateTime<Utc>,
    },
    ErasureStarted {
        request_id: PrivacyRequestId,
        subject: Subject,
        keys: Vec<DestroyedKey>,
        at: DateTime<Utc>,
    },
    ErasureCompleted {
        request_id: PrivacyRequestId,
        subject: Subject,
        keys: Vec<DestroyedKey>,
        at: DateTime<Utc>,
    },
    /// The subject's data was exported (the sections, never the content).
    SubjectDataExported {
        request_id: PrivacyRequestId,
        subject: Subject,
        sections: Vec<String>,
        at: DateTime<Utc>,
    },
}

impl PrivacyRequestEvent {
    pub fn request_id(&self) -> PrivacyRequestId {
        match self {
            Self::PrivacyRequestOpened { request_id, .. }
            | Self::ErasureStarted { request_id, .. }
            | Self::ErasureCompleted { request_id, .. }
            | Self::SubjectDataExported { request_id, .. } => *request_id,
        }
    }
    pub fn subject(&self) -> Subject {
        match self {
            Self::PrivacyRequestOpened { subject, .. }
            | Self::ErasureStarted { subject, .. }
            | Self::ErasureCompleted { subject, .. }
            | Self::SubjectDataExported { subject, .. } => *subject,
        }
    }
}

impl DomainEvent for PrivacyRequestEvent {
    fn data_subject(&self) -> Option<Uuid> {
        Some(self.subject().as_uuid())
    }
}

#[derive(Debug, Clone, Default)]
pub struct PrivacyRequest {
    pub state: Option<PrivacyRequestState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyRequestState {
    pub id: PrivacyRequestId,
    pub store_id: StoreId,
    pub subject: Subject,
    pub kind: RequestKind,
    pub status: RequestStatus,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// The keys named when the erasure started.
    pub keys: Vec<DestroyedKey>,
    pub completed_at: Option<DateTime<Utc>>,
}

const RECEIVED_VIA: [&str; 7] = ["email", "phone", "in_store", "post", "web_form", "staff", "retention"];

impl Aggregate for PrivacyRequest {
    type Command = PrivacyRequestCommand;
    type Event = PrivacyRequestEvent;
    const KIND: &'static str = "privacy request";

    fn decide(&self, command: &PrivacyRequestCommand) -> Result<Vec<PrivacyRequestEvent>, DomainError> {
        match (command, &self.state) {
            (PrivacyRequestCommand::Open(_), Some(_)) => Err(DomainError::AlreadyExists { kind: Self::KIND }),
            (PrivacyRequestCommand::Open(c), None) => {
                let via = c.received_via.trim().to_lowercase();
                if !RECEIVED_VIA.contains(&via.as_str()) {
                    return Err(DomainError::invalid(
                        "receivedVia",
                        format!("must be one of {}", RECEIVED_VIA.join(", ")),
                    ));
                }
                let text = |field: &'static str, raw: &Option<String>, max: usize| {
                    raw.as_deref()
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Text::parse(field, s, max).map(|t| Pii::profile(t.into_inner())))
                        .transpose()
                };
                Ok(vec![PrivacyRequestEvent::PrivacyRequestOpened {
                    request_id: c.request_id,
                    store_id: c.store_id,
                    subject: c.subject,
                    kind: c.kind,
                    received_via: via,
                    identity_verified_by: text("identityVerifiedBy", &c.identity_verified_by, 200)?,
                    notes: text("notes", &c.notes, 2000)?,
                    received_at: c.received_at,
                    due_at: c.received_at + Duration::days(RESPONSE_DAYS),
                }])
            }
            (_, None) => Err(DomainError::NotFound { kind: Self::KIND }),
            (PrivacyRequestCommand::StartErasure { keys, at }, Some(s)) => {
                if s.kind != RequestKind::Erasure {
                    return Err(DomainError::invalid("privacyRequestId", "is not an erasure request"));
                }
                match s.status {
                    // Already recorded: running it again finishes it, with the keys named then.
                    RequestStatus::InProgress | RequestStatus::Completed => Ok(vec![]),
                    RequestStatus::Open => Ok(vec![PrivacyRequestEvent::ErasureStarted {
                        request_id: s.id,
                        subject: s.subject,
                        keys: keys.clone(),
                        at: *at,
                    }]),
                }
            }
            (PrivacyRequestCommand::RecordExport { sections, at }, Some(s)) => {
                if !matches!(s.kind, RequestKind::Access | RequestKind::Portability) {
                    return Err(DomainError::invalid("privacyRequestId", "is not an access or portability request"));
                }
                // A completed request may be answered again (a new copy): each export is a fact.
                Ok(vec![PrivacyRequestEvent::SubjectDataExported {
                    request_id: s.id,
                    subject: s.subject,
                    sections: sections.clone(),
                    at: *at,
                }])
            }
            (PrivacyRequestCommand::CompleteErasure { at }, Some(s)) => match s.status {
                RequestStatus::Completed => Ok(vec![]),
                RequestStatus::Open => {
                    Err(DomainError::IllegalTransition { action: "complete an erasure", state: "OPEN".into() })
                }
                RequestStatus::InProgress => Ok(vec![PrivacyRequestEvent::ErasureCompleted {
                    request_id: s.id,
                    subject: s.subject,
                    keys: s.keys.clone(),
                    at: *at,
                }]),
            },
        }
    }

    fn evolve(mut self, event: &PrivacyRequestEvent) -> Self {
        match event {
            PrivacyRequestEvent::PrivacyRequestOpened {
                request_id,
                store_id,
                subject,
                kind,
                received_at,
                due_at,
                ..
            } => {
                self.state = Some(PrivacyRequestState {
                    id: *request_id,
                    store_id: *store_id,
                    subject: *subject,
                    kind: *kind,
                    status: RequestStatus::Open,
                    received_at: *received_at,
                    due_at: *due_at,
                    keys: Vec::new(),
                    completed_at: None,
                })
            }
            PrivacyRequestEvent::ErasureStarted { keys, .. } => {
                if let Some(s) = &mut self.state {
                    s.status = RequestStatus::InProgress;
                    s.keys = keys.clone();
                }
            }
            PrivacyRequestEvent::ErasureCompleted { at, .. } | PrivacyRequestEvent::SubjectDataExported { at, .. } => {
                if let Some(s) = &mut self.state {
                    s.status = RequestStatus::Completed;
                    s.completed_at = Some(*at);
                }
            }
        }
        self
    }
}

/// Which key classes an erasure destroys now. `LegalHold` stays until its retention ends.
pub const ERASED_NOW: [KeyClass; 2] = [KeyClass::Profile, KeyClass::ConsentEvidence];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn open(kind: RequestKind) -> PrivacyRequestCommand {
        PrivacyRequestCommand::Open(OpenPrivacyRequest {
            request_id: PrivacyRequestId::from_uuid(Uuid::from_u128(7)),
            store_id: StoreId::from_uuid(Uuid::from_u128(1)),
            subject: Subject::Customer(CustomerId::from_uuid(Uuid::from_u128(2))),
            kind,
            received_via: "Email".into(),
            identity_verified_by: Some("replied from the address on file".into()),
            notes: None,
            received_at: at("2026-03-01T10:00:00Z"),
        })
    }

    fn key() -> DestroyedKey {
        DestroyedKey { class: KeyClass::Profile, key_id: Uuid::from_u128(9), fingerprint: "ab".repeat(32) }
    }

    #[test]
    fn a_request_is_due_thirty_days_after_it_was_received_and_keeps_identity_checks_personal() {
        let events = given::<PrivacyRequest>(&[]).when(open(RequestKind::Erasure)).events();
        let PrivacyRequestEvent::PrivacyRequestOpened { due_at, received_via, identity_verified_by, .. } = &events[0]
        else {
            panic!()
        };
        assert_eq!(*due_at, at("2026-03-31T10:00:00Z"));
        assert_eq!(received_via, "email");
        assert_eq!(identity_verified_by.as_ref().unwrap().class(), KeyClass::Profile);
    }

    #[test]
    fn an_unknown_channel_is_refused() {
        let PrivacyRequestCommand::Open(mut c) = open(RequestKind::Access) else { unreachable!() };
        c.received_via = "carrier pigeon".into();
        given::<PrivacyRequest>(&[]).when(PrivacyRequestCommand::Open(c)).then_reject("INVALID");
    }

    #[test]
    fn an_erasure_is_started_once_and_completed_once() {
        let opened = given::<PrivacyRequest>(&[]).when(open(RequestKind::Erasure)).events();
        let started = given::<PrivacyRequest>(&opened)
            .when(PrivacyRequestCommand::StartErasure { keys: vec![key()], at: at("2026-03-02T00:00:00Z") })
            .events();
        let history: Vec<_> = opened.iter().chain(&started).cloned().collect();
        // Starting again (a retry after a crash) changes nothing and keeps the keys named first.
        given::<PrivacyRequest>(&history)
            .when(PrivacyRequestCommand::StartErasure { keys: vec![], at: at("2026-03-03T00:00:00Z") })
            .then_expect(&[]);
        let completed = given::<PrivacyRequest>(&history)
            .when(PrivacyRequestCommand::CompleteErasure { at: at("2026-03-03T00:00:00Z") })
            .events();
        let PrivacyRequestEvent::ErasureCompleted { keys, .. } = &completed[0] else { panic!() };
        assert_eq!(keys, &vec![key()]);
        let all: Vec<_> = history.iter().chain(&completed).cloned().collect();
        let done = given::<PrivacyRequest>(&all)
            .when(PrivacyRequestCommand::CompleteErasure { at: at("2026-03-04T00:00:00Z") })
            .then_expect(&[]);
        assert_eq!(done.state.unwrap().status, RequestStatus::Completed);
    }

    #[test]
    fn only_erasure_requests_erase_and_none_completes_before_it_starts() {
        let access = given::<PrivacyRequest>(&[]).when(open(RequestKind::Access)).events();
        given::<PrivacyRequest>(&access)
            .when(PrivacyRequestCommand::StartErasure { keys: vec![], at: at("2026-03-02T00:00:00Z") })
            .then_reject("INVALID");
        let erasure = given::<PrivacyRequest>(&[]).when(open(RequestKind::Erasure)).events();
        given::<PrivacyRequest>(&erasure)
            .when(PrivacyRequestCommand::CompleteErasure { at: at("2026-03-02T00:00:00Z") })
            .then_reject("ILLEGAL_TRANSITION");
    }

    #[test]
    fn an_access_request_is_answered_by_an_export_and_an_erasure_request_is_not() {
        let access = given::<PrivacyRequest>(&[]).when(open(RequestKind::Access)).events();
        let export =
            PrivacyRequestCommand::RecordExport { sections: vec!["profile".into()], at: at("2026-03-02T00:00:00Z") };
        let done = given::<PrivacyRequest>(&access).when(export.clone()).events();
        let all: Vec<_> = access.iter().chain(&done).cloned().collect();
        let state = PrivacyRequest::replay(&all).state.unwrap();
        assert_eq!((state.status, state.completed_at), (RequestStatus::Completed, Some(at("2026-03-02T00:00:00Z"))));
        let erasure = given::<PrivacyRequest>(&[]).when(open(RequestKind::Erasure)).events();
        given::<PrivacyRequest>(&erasure).when(export).then_reject("INVALID");
    }

    #[test]
    fn subjects_serialise_with_their_kind() {
        let s = Subject::Staff(UserId::from_uuid(Uuid::from_u128(3)));
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(v["kind"], "staff");
        assert_eq!(serde_json::from_value::<Subject>(v).unwrap(), s);
    }
}
