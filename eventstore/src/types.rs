//! The envelope and its parts: what goes in (`NewEvent`), what is stored (`StoredEvent`, bytes
//! exactly as hashed) and what comes out (`RecordedEvent`, decrypted and upcast).

use crate::error::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A place in the log's single total order.
///
/// On PostgreSQL it is `(writing transaction id, sequence)`: events are read in that order and
/// only once no older transaction is running. On SQLite, where commits are serialised, both
/// parts are the row position. Compare positions, never their parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Position {
    pub commit: i64,
    pub seq: i64,
}

impl Position {
    /// Before the first event.
    pub const START: Position = Position { commit: 0, seq: 0 };
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.commit, self.seq)
    }
}

impl FromStr for Position {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || StoreError::Invalid("position must look like \"<commit>.<seq>\"".into());
        let (c, q) = s.split_once('.').ok_or_else(bad)?;
        let commit: i64 = c.parse().map_err(|_| bad())?;
        let seq: i64 = q.parse().map_err(|_| bad())?;
        if commit < 0 || seq < 0 {
            return Err(bad());
        }
        Ok(Position { commit, seq })
    }
}

/// What the appender believes the stream's version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append unconditionally.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event has exactly this version (versions start at 0).
    Exact(u64),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `user`, `system`, `api_key`, `public`.
    pub kind: String,
    pub id: Option<Uuid>,
    pub role: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Actor { kind: "system".into(), id: None, role: None }
    }
}

/// Why and in what context. Never personal data: actors are ids, reasons are business reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub actor: Actor,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
    /// Which surface wrote it: `graphql`, `cli`, `demo-seed`, `test`, ...
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Metadata {
    pub fn system(source: &str) -> Self {
        Metadata {
            actor: Actor::system(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            request_id: None,
            source: source.into(),
            reason: None,
        }
    }
}

/// An event to append. `payload` may contain clear personal-data markers; the store encrypts
/// them under `data_subject`'s keys before anything is written.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub store_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: Value,
    pub metadata: Metadata,
    pub data_subject: Option<Uuid>,
}

/// An event as a backend writes it: payload already sealed, serialised to its final text.
#[derive(Debug, Clone)]
pub struct SealedEvent {
    pub event_id: Uuid,
    pub store_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: String,
    pub metadata: String,
}

/// An event exactly as stored (ciphertext included): what hashes are computed over.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub position: Position,
    pub stream_id: String,
    pub version: u64,
    pub event_id: Uuid,
    pub store_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// An event as readers see it: personal data opened (or marked erased), upcast to the current
/// schema version.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub position: Position,
    pub stream_id: String,
    pub version: u64,
    pub event_id: Uuid,
    pub store_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: Value,
    pub metadata: Metadata,
    pub recorded_at: DateTime<Utc>,
}

/// The result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// Version of the stream's last event after the append.
    pub version: u64,
    /// Position of the last event written; wait for projections to reach it to read your write.
    pub position: Position,
    /// When the events were recorded (one instant for the whole append, microseconds), as the
    /// log holds it.
    pub recorded_at: DateTime<Utc>,
}

/// Truncates to microseconds: what both databases store exactly, and what is hashed.
pub fn now_micros() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("current time is in range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_their_opaque_string_and_order_by_commit_first() {
        let p = Position { commit: 7, seq: 3 };
        assert_eq!(p.to_string().parse::<Position>().unwrap(), p);
        assert!(Position { commit: 7, seq: 3 } < Position { commit: 8, seq: 1 });
        for bad in ["", "1", "a.b", "1.-2", "1.2.3"] {
            assert!(bad.parse::<Position>().is_err(), "{bad}");
        }
    }
}
