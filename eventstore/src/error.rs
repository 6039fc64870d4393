//! The event store's one error type. Each variant says how a caller handles it.

use crate::types::Position;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream's version was not the expected one: someone else appended first.
    /// Caller: reload the stream, decide again, retry (the command layer does this).
    #[error("wrong expected version for stream {stream_id}: expected {expected}, actual {actual}")]
    Conflict { stream_id: String, expected: String, actual: String },
    /// An event id was appended twice. Caller: treat as a bug in id generation; do not retry.
    #[error("event id already exists in the log")]
    DuplicateEvent,
    /// New personal data for a subject whose keys were destroyed. Caller: user error; the
    /// subject was erased and cannot receive new personal data.
    #[error("the data subject has been erased")]
    SubjectErased,
    /// A concurrent append created the same subject's data key first. Caller: none needed —
    /// `EventStore` seals the events again under that key and retries.
    #[error("a concurrent append created this data key first")]
    KeyRace,
    /// A ciphertext failed authentication (tampered, moved, or wrong master key), or a payload
    /// marks personal data without a data subject. Caller: internal error; investigate.
    #[error("cryptographic integrity failure: {0}")]
    Crypto(String),
    /// A stored row cannot be understood (bad JSON, unknown schema version without upcaster).
    /// Caller: internal error.
    #[error("corrupt event at {position}: {reason}")]
    Corrupt { position: Position, reason: String },
    /// Invalid input to the store itself (empty batch, bad position string). Caller: bug or
    /// bad client input; report as BAD_USER_INPUT where it came from a client.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The database failed. Caller: internal error; log it, never show its text to clients.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// The master key is not the one this database was initialised with. Caller: refuse to run
    /// (exit 2) before writing anything; the operator must supply the right key.
    #[error("the master key does not match the one this database was initialised with; set IC_MASTER_KEY to that key (nothing was written)")]
    WrongMasterKey,
    /// Configuration problem (bad URL, bad master key). Caller: fail at startup.
    #[error("configuration: {0}")]
    Config(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
