//! The storage contract both databases implement. It deals in stored bytes only (ciphertext,
//! exact payload text); encryption and upcasting happen above it, in [`crate::EventStore`], so
//! no backend can forget them.

use crate::crypto::KeyRecord;
use crate::error::{Result, StoreError};
use crate::types::{AppendResult, ExpectedVersion, Position, SealedEvent, StoredEvent};

/// Events for one stream within an atomic multi-stream append.
#[derive(Debug, Clone)]
pub struct StreamBatch {
    pub stream_id: String,
    pub expected: ExpectedVersion,
    pub events: Vec<SealedEvent>,
}
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::KeyClass;
use tokio::sync::watch;
use uuid::Uuid;

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Appends to several streams in one transaction: all or nothing. Each stream's version
    /// must match its `expected`, so a decision spanning aggregates (a sale and its items) is
    /// committed only if none of them changed since it was read. Streams are written in input
    /// order, so later batches get higher positions; results are in input order.
    /// `new_keys` are data keys created for these events; they are inserted in the same
    /// transaction, and if any of them already exists the append fails with `KeyRace`.
    async fn append_streams(&self, batches: Vec<StreamBatch>, new_keys: Vec<KeyRecord>) -> Result<Vec<AppendResult>>;

    /// Appends a batch atomically to one stream if its version matches `expected`.
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<SealedEvent>,
    ) -> Result<AppendResult> {
        let batch = StreamBatch { stream_id: stream_id.to_owned(), expected, events };
        Ok(self.append_streams(vec![batch], vec![]).await?.remove(0))
    }

    /// Events of one stream with version >= `from_version`, in version order.
    async fn read_stream(&self, stream_id: &str, from_version: u64, limit: usize) -> Result<Vec<StoredEvent>>;

    /// Events after `after` in the log's one total order. Never skips: an event that becomes
    /// visible later always sorts after everything returned now.
    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<StoredEvent>>;

    /// Every committed event after `after` in the same order, without waiting for older
    /// transactions to finish. For verification and audits of what is stored now; tailing
    /// readers must use [`Backend::read_all`].
    async fn read_committed(&self, after: Position, limit: usize) -> Result<Vec<StoredEvent>>;

    /// How many events [`Backend::read_committed`] would return after `after`, counted by the
    /// database on the log's order index (no event row leaves it).
    async fn count_committed(&self, after: Position) -> Result<u64>;

    /// Changes (at least) whenever events may have become readable; wakes subscribers.
    fn wakeups(&self) -> watch::Receiver<u64>;

    /// All key records of one subject (live and destroyed).
    async fn subject_keys(&self, store_id: Uuid, subject_id: Uuid) -> Result<Vec<KeyRecord>>;

    /// Destroys the subject's keys of these classes (wrapped key erased); returns their records.
    async fn destroy_keys(
        &self,
        store_id: Uuid,
        subject_id: Uuid,
        classes: &[KeyClass],
        at: DateTime<Utc>,
    ) -> Result<Vec<KeyRecord>>;

    /// Whether every migration this build knows has been applied.
    async fn migrations_applied(&self) -> Result<bool>;
}

pub(crate) fn check_expected(stream_id: &str, expected: ExpectedVersion, current: Option<u64>) -> Result<()> {
    let ok = match (expected, current) {
        (ExpectedVersion::Any, _) => true,
        (ExpectedVersion::NoStream, None) => true,
        (ExpectedVersion::Exact(v), Some(c)) => v == c,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            stream_id: stream_id.to_owned(),
            expected: expected.to_string(),
            actual: current.map_or_else(|| "no stream".to_owned(), |v| v.to_string()),
        })
    }
}

pub(crate) fn parse_class(s: &str) -> Result<KeyClass> {
    KeyClass::parse(s).ok_or_else(|| StoreError::Invalid(format!("unknown key class {s:?}")))
}

/// True when a database error is a unique violation of the stream/version constraint.
pub(crate) fn is_version_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.constraint() == Some("events_stream_version_key")
        || (db.is_unique_violation() && db.message().contains("stream_id")))
}

/// Checks a multi-stream append before touching the database.
pub(crate) fn validate_batches(batches: &[StreamBatch]) -> Result<()> {
    if batches.is_empty() || batches.iter().any(|b| b.events.is_empty()) {
        return Err(StoreError::Invalid("cannot append an empty batch".into()));
    }
    let mut ids: Vec<&str> = batches.iter().map(|b| b.stream_id.as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::Invalid("a stream appears twice in one append".into()));
    }
    Ok(())
}

pub(crate) fn is_duplicate_event(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.constraint() == Some("events_event_id_key")
        || (db.is_unique_violation() && db.message().contains("event_id")))
}
