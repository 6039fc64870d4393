//! The aggregate contract and the event codec.
//!
//! `decide` holds all business rules and returns the events a command produces (or a
//! [`DomainError`]); `evolve` only applies an event to state and never fails, so any stream that
//! was once accepted always replays. Both are pure.

use crate::DomainError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use uuid::Uuid;

/// An event enum of one aggregate. Variants are past-tense facts serialised with
/// `#[serde(tag = "type")]`; the variant name is the stored event type and is never renamed.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync {
    /// The schema version written for this event now. Older stored versions are upcast on read.
    fn schema_version(&self) -> u32 {
        1
    }
    /// The data subject whose keys encrypt this event's personal fields, if it has any.
    fn data_subject(&self) -> Option<Uuid> {
        None
    }
}

/// An event split into its stored parts: type name and payload (without the tag).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    pub event_type: String,
    pub schema_version: u32,
    pub payload: Value,
    pub data_subject: Option<Uuid>,
}

/// Why a stored event could not be turned back into a domain event. Callers: internal error
/// (a missing upcaster or a corrupted row), never a user error.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("event payload is not a JSON object")]
    NotAnObject,
    /// `reason` says where and what kind of error, never the offending value: a decoded payload
    /// holds decrypted personal data, and serde's own messages quote values.
    #[error("cannot decode event of type {event_type}: {reason}")]
    Decode { event_type: String, reason: String },
}

pub fn encode<E: DomainEvent>(event: &E) -> EncodedEvent {
    let mut value = serde_json::to_value(event).expect("domain events serialise to JSON");
    let map = value.as_object_mut().expect("domain events are tagged enums of structs");
    let event_type = match map.remove("type") {
        Some(Value::String(t)) => t,
        _ => unreachable!("domain events carry a string `type` tag"),
    };
    EncodedEvent {
        event_type,
        schema_version: event.schema_version(),
        payload: value,
        data_subject: event.data_subject(),
    }
}

pub fn decode<E: DomainEvent>(event_type: &str, payload: &Value) -> Result<E, CodecError> {
    let mut map = payload.as_object().cloned().ok_or(CodecError::NotAnObject)?;
    map.insert("type".into(), Value::String(event_type.to_owned()));
    serde_json::from_value(Value::Object(map)).map_err(|e| CodecError::Decode {
        event_type: event_type.to_owned(),
        reason: format!("{:?} error (line {}, column {})", e.classify(), e.line(), e.column()),
    })
}

/// A consistency boundary rebuilt from its own stream.
pub trait Aggregate: Default + Clone + fmt::Debug + Send + Sync + 'static {
    type Command;
    type Event: DomainEvent;
    /// Human name of the kind, used in errors ("item", "customer").
    const KIND: &'static str;
    /// Whether a server may keep this aggregate's state in memory between commands and read
    /// only the events after it (`eventstore::states`). Only for aggregates whose state holds
    /// no personal data — an erasure must never leave plaintext behind in a cache — and whose
    /// streams grow without end.
    const KEEP_STATE: bool = false;

    /// All business rules: the events this command produces in this state, or why not.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, DomainError>;

    /// Applies one event. Never fails: a stored fact is a fact.
    fn evolve(self, event: &Self::Event) -> Self;

    fn replay<'a, I>(events: I) -> Self
    where
        I: IntoIterator<Item = &'a Self::Event>,
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::default(), Self::evolve)
    }
}

#[cfg(test)]
mod codec_tests {
    use super::*;
    use crate::customer::CustomerEvent;

    #[test]
    fn decode_errors_never_quote_the_payload() {
        let payload = serde_json::json!({"customer_id": "Ann Secretname", "store_id": 5});
        let err = decode::<CustomerEvent>("CustomerRegistered", &payload).unwrap_err().to_string();
        assert!(!err.contains("Secretname"), "{err}");
        assert!(err.contains("CustomerRegistered"));
    }
}

/// Given/when/then for aggregate tests: `given(events).when(cmd).then_expect(events)`.
pub mod testing {
    use super::*;

    pub struct Given<A: Aggregate>(A);

    pub fn given<A: Aggregate>(events: &[A::Event]) -> Given<A> {
        Given(A::replay(events))
    }

    pub struct When<A: Aggregate>(Result<Vec<A::Event>, DomainError>, A);

    impl<A: Aggregate> Given<A> {
        pub fn when(self, command: A::Command) -> When<A> {
            When(self.0.decide(&command), self.0)
        }
    }

    impl<A: Aggregate> When<A>
    where
        A::Event: PartialEq,
    {
        #[track_caller]
        pub fn then_expect(self, expected: &[A::Event]) -> A {
            match self.0 {
                Ok(events) => {
                    assert_eq!(events, expected);
                    events.iter().fold(self.1, A::evolve)
                }
                Err(e) => panic!("expected events, command was rejected: {e}"),
            }
        }

        #[track_caller]
        pub fn then_reject(self, code: &str) -> DomainError {
            match self.0 {
                Ok(events) => panic!("expected rejection {code}, got events {events:?}"),
                Err(e) => {
                    assert_eq!(e.code(), code, "rejected with {e}");
                    e
                }
            }
        }

        pub fn events(self) -> Vec<A::Event> {
            self.0.expect("command accepted")
        }
    }
}
