//! Idempotency keys: a retried mutation returns the first result and writes nothing new.
//!
//! A key is claimed by appending `IdempotencyKeyUsed` to its own stream with expected version
//! "no stream", in the same atomic append as the command's events. A second request with the
//! key finds the claim and gets the first request's entity and position back; two concurrent
//! requests race on the claim stream and exactly one wins (the other retries, then replays).
//! The key itself is stored only as a hash, scoped to the store and the mutation.

use crate::{backoff, CommandContext, CommandError, MultiDecision, MAX_ATTEMPTS};
use domain::aggregate::{decode, DomainEvent};
use domain::DomainError;
use eventstore::{EventStore, ExpectedVersion, Position, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum IdempotencyEvent {
    IdempotencyKeyUsed {
        mutation: String,
        entity_id: Uuid,
        /// SHA-256 of the first request's canonical input (absent in claims made before it was
        /// recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_hash: Option<String>,
    },
}

impl DomainEvent for IdempotencyEvent {}

pub fn key_stream(ctx: &CommandContext, key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(ctx.store_id.as_uuid().as_bytes())
        .chain_update(b"\0")
        .chain_update(key.as_bytes())
        .finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("idem-{hex}")
}

/// The result of an idempotent command: done now, or done before by the same key.
#[derive(Debug, Clone)]
pub struct Once {
    pub entity_id: Uuid,
    pub position: Option<Position>,
    /// True when this request replayed an earlier one and wrote nothing.
    pub replayed: bool,
    /// The event that created the entity's stream, exactly as the log now holds it, when the
    /// request created the stream with a single event ([`crate::execute_new`]): a payload can
    /// fold it instead of reading the stream back. `None` otherwise.
    pub created: Option<eventstore::RecordedEvent>,
}

fn validate_key(key: &str) -> Result<(), CommandError> {
    if key.trim().is_empty() || key.len() > 200 {
        return Err(DomainError::invalid("idempotencyKey", "must be 1 to 200 characters").into());
    }
    Ok(())
}

/// Looks up a key. `Some` means it was used: for this mutation (replay) or another (error).
pub async fn previous(
    store: &EventStore,
    ctx: &CommandContext,
    key: &str,
    mutation: &str,
) -> Result<Option<Once>, CommandError> {
    validate_key(key)?;
    let recorded = store.read_stream(&key_stream(ctx, key), 0).await?;
    let Some(claim) = recorded.first() else { return Ok(None) };
    let IdempotencyEvent::IdempotencyKeyUsed { mutation: used_for, entity_id, input_hash } =
        decode(&claim.event_type, &claim.payload)
            .map_err(|e| StoreError::Corrupt { position: claim.position, reason: e.to_string() })?;
    if used_for != mutation {
        return Err(DomainError::invalid("idempotencyKey", "was already used for a different operation").into());
    }
    if let (Some(first), Some(now)) = (&input_hash, &ctx.input_hash) {
        if first != now {
            return Err(DomainError::IdempotencyKeyReused.into());
        }
    }
    // The claim is staged last, so its position is the highest of the first request's
    // transaction: the same position that request returned.
    Ok(Some(Once { entity_id, position: Some(claim.position), replayed: true, created: None }))
}

impl MultiDecision<'_> {
    /// Stages the claim of `key` for `mutation` on `entity_id`, atomically with the rest. Call it
    /// last: the claim's position then equals the position the whole append returns.
    pub fn claim(&mut self, key: &str, mutation: &str, entity_id: Uuid) {
        let event = IdempotencyEvent::IdempotencyKeyUsed {
            mutation: mutation.to_owned(),
            entity_id,
            input_hash: self.ctx.input_hash.clone(),
        };
        self.stage(key_stream(self.ctx, key), ExpectedVersion::NoStream, &[event]);
    }
}

/// Runs `decide` (which stages into a fresh [`MultiDecision`]) at most once per key.
/// Without a key it simply runs, with conflict retries.
pub async fn once<'a, F, Fut>(
    store: &'a EventStore,
    ctx: &'a CommandContext,
    key: Option<&str>,
    mutation: &str,
    entity_id: Uuid,
    mut decide: F,
) -> Result<Once, CommandError>
where
    F: FnMut(MultiDecision<'a>) -> Fut,
    Fut: std::future::Future<Output = Result<MultiDecision<'a>, CommandError>>,
{
    for attempt in 0..MAX_ATTEMPTS {
        if let Some(key) = key {
            if let Some(done) = previous(store, ctx, key, mutation).await? {
                return Ok(done);
            }
        }
        let mut d = match decide(MultiDecision::new(store, ctx)).await {
            Ok(d) => d,
            // A concurrent request with the same key may have committed between our key check
            // and our load (so the decision now sees its effect and refuses): replay it.
            Err(rejected @ CommandError::Rejected(_)) => match key {
                Some(key) => return previous(store, ctx, key, mutation).await?.ok_or(rejected),
                None => return Err(rejected),
            },
            Err(e) => return Err(e),
        };
        if d.is_empty() {
            // Nothing changed: not worth claiming the key for.
            return Ok(Once { entity_id, position: None, replayed: false, created: None });
        }
        if let Some(key) = key {
            d.claim(key, mutation, entity_id);
        }
        match d.commit_recorded().await {
            Ok((position, created)) => return Ok(Once { entity_id, position, replayed: false, created }),
            Err(StoreError::Conflict { .. }) => backoff(attempt).await,
            Err(StoreError::SubjectErased) => return Err(DomainError::Erased { kind: "data subject" }.into()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(CommandError::Contention { stream_id: mutation.to_owned() })
}
