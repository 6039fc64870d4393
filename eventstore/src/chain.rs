//! The per-stream hash chain: each event stores the hash of its stream predecessor and its own
//! hash over exactly the bytes stored (ciphertext included), so erasing a key never breaks
//! verification, while changing any stored byte does.

use crate::types::{Position, StoredEvent};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use uuid::Uuid;

/// `prev_hash` of a stream's first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// The fields an event hash covers, in a fixed, length-prefixed encoding.
pub struct HashInput<'a> {
    pub prev_hash: &'a [u8],
    pub stream_id: &'a str,
    pub version: u64,
    pub event_id: Uuid,
    pub store_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub payload: &'a str,
    pub metadata: &'a str,
    pub recorded_at: DateTime<Utc>,
}

pub fn event_hash(i: &HashInput<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(b"ic-event-v1");
    field(i.prev_hash);
    field(i.stream_id.as_bytes());
    field(&i.version.to_be_bytes());
    field(i.event_id.as_bytes());
    field(i.store_id.as_bytes());
    field(i.event_type.as_bytes());
    field(&i.schema_version.to_be_bytes());
    field(i.payload.as_bytes());
    field(i.metadata.as_bytes());
    field(&i.recorded_at.timestamp_micros().to_be_bytes());
    h.finalize().into()
}

/// One event's place in its stream's chain, computed before insert.
pub struct Link {
    pub version: u64,
    pub prev_hash: Vec<u8>,
    pub hash: [u8; 32],
}

/// Chains `events` onto a stream whose last event is `head` (version, hash), or onto nothing.
/// Both backends insert exactly these links, so the chain is defined in one place.
pub fn link(
    stream_id: &str,
    head: Option<(u64, Vec<u8>)>,
    events: &[crate::types::SealedEvent],
    recorded_at: DateTime<Utc>,
) -> Vec<Link> {
    let (mut version, mut prev) = match head {
        Some((v, h)) => (v + 1, h),
        None => (0, GENESIS.to_vec()),
    };
    let mut links = Vec::with_capacity(events.len());
    for e in events {
        let hash = event_hash(&HashInput {
            prev_hash: &prev,
            stream_id,
            version,
            event_id: e.event_id,
            store_id: e.store_id,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            payload: &e.payload,
            metadata: &e.metadata,
            recorded_at,
        });
        links.push(Link { version, prev_hash: std::mem::replace(&mut prev, hash.to_vec()), hash });
        version += 1;
    }
    links
}

pub fn stored_hash(e: &StoredEvent) -> [u8; 32] {
    event_hash(&HashInput {
        prev_hash: &e.prev_hash,
        stream_id: &e.stream_id,
        version: e.version,
        event_id: e.event_id,
        store_id: e.store_id,
        event_type: &e.event_type,
        schema_version: e.schema_version,
        payload: &e.payload,
        metadata: &e.metadata,
        recorded_at: e.recorded_at,
    })
}

/// Why an event fails verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("event at {position} (stream {stream_id} v{version}): stored bytes do not match its hash")]
    HashMismatch { position: Position, stream_id: String, version: u64 },
    #[error("event at {position} (stream {stream_id} v{version}): does not link to its predecessor's hash")]
    BrokenLink { position: Position, stream_id: String, version: u64 },
    #[error("event at {position} (stream {stream_id} v{version}): expected version {expected}")]
    VersionGap { position: Position, stream_id: String, version: u64, expected: u64 },
}

impl ChainBreak {
    pub fn position(&self) -> Position {
        match self {
            Self::HashMismatch { position, .. }
            | Self::BrokenLink { position, .. }
            | Self::VersionGap { position, .. } => *position,
        }
    }
}

/// Checks events in log order, remembering the last hash of every stream.
#[derive(Default)]
pub struct ChainVerifier {
    heads: HashMap<String, (u64, Vec<u8>)>,
    pub checked: u64,
}

impl ChainVerifier {
    pub fn check(&mut self, e: &StoredEvent) -> Result<(), ChainBreak> {
        let (expected_version, expected_prev) = match self.heads.get(&e.stream_id) {
            Some((v, h)) => (v + 1, h.as_slice()),
            None => (0, GENESIS.as_slice()),
        };
        let at = |pos: Position| (pos, e.stream_id.clone(), e.version);
        if e.version != expected_version {
            let (position, stream_id, version) = at(e.position);
            return Err(ChainBreak::VersionGap { position, stream_id, version, expected: expected_version });
        }
        if stored_hash(e).as_slice() != e.hash.as_slice() {
            let (position, stream_id, version) = at(e.position);
            return Err(ChainBreak::HashMismatch { position, stream_id, version });
        }
        if e.prev_hash.as_slice() != expected_prev {
            let (position, stream_id, version) = at(e.position);
            return Err(ChainBreak::BrokenLink { position, stream_id, version });
        }
        self.heads.insert(e.stream_id.clone(), (e.version, e.hash.clone()));
        self.checked += 1;
        Ok(())
    }

    pub fn streams(&self) -> usize {
        self.heads.len()
    }
}
