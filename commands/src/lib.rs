//! The write side: command handlers.
//!
//! A handler loads an aggregate's own stream, folds it into state, asks the pure domain to
//! `decide`, and appends the resulting events with the version it read as the expected version.
//! If someone else appended in between, the append is a conflict and the whole cycle is retried
//! on fresh state (the decision may now differ, e.g. the item was sold meanwhile). Nothing here
//! reads read models to decide.
#![forbid(unsafe_code)]

pub mod customers;
pub mod idempotency;
pub mod password;
pub mod privacy;
pub mod references;
pub mod sales;
pub mod staff;
pub mod stores;

use domain::aggregate::{decode, encode, Aggregate};
use domain::{DomainError, StoreId};
use eventstore::{Actor, EventStore, ExpectedVersion, Metadata, NewEvent, Position, RecordedEvent, StoreError};
use idempotency::Once;
use std::time::Duration;
use uuid::Uuid;

/// How many times a command is re-decided after a version conflict before giving up. Hot
/// streams (a store's invoice book) admit one writer per round, so a burst of N concurrent
/// confirmations needs up to N rounds; backoff is capped, so 30 rounds stay well under a second.
pub(crate) const MAX_ATTEMPTS: u32 = 30;

/// Who is acting, for which tenant, and why. Becomes every event's metadata.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub store_id: StoreId,
    pub actor: Actor,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
    pub source: String,
    pub reason: Option<String>,
    /// A fingerprint of the request's canonical input (without its idempotency key): a key
    /// reused with different input is refused instead of replaying the first result.
    pub input_hash: Option<String>,
}

impl CommandContext {
    pub fn system(store_id: StoreId, source: &str) -> Self {
        Self {
            store_id,
            actor: Actor::system(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            request_id: None,
            source: source.into(),
            reason: None,
            input_hash: None,
        }
    }

    fn metadata(&self) -> Metadata {
        Metadata {
            actor: self.actor.clone(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            request_id: self.request_id,
            source: self.source.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// Why a command did not complete.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The domain rejected the command. Caller: user error in the payload; nothing was written.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// Still conflicting after every retry (extreme contention). Caller: `CONFLICT`; the client
    /// may retry later.
    #[error("too much concurrent modification of {stream_id}")]
    Contention { stream_id: String },
    /// Infrastructure failure or corrupt data. Caller: log it, answer `INTERNAL`.
    #[error("event store failure")]
    Store(#[from] StoreError),
}

/// Loads an aggregate from its stream. Streams of another store read as absent: a tenant can
/// never act on (or learn of) another tenant's aggregate.
pub async fn load<A: Aggregate>(
    store: &EventStore,
    store_id: StoreId,
    stream_id: &str,
) -> Result<(A, ExpectedVersion), CommandError> {
    // A kept state (aggregates without personal data only): read what came after it.
    let kept = if A::KEEP_STATE { store.states().get::<A>(stream_id, store_id.as_uuid()) } else { None };
    let (mut state, mut expected, from) = match kept {
        Some((version, state)) => (state, ExpectedVersion::Exact(version), version + 1),
        None => (A::default(), ExpectedVersion::NoStream, 0),
    };
    let recorded = store.read_stream(stream_id, from).await?;
    if recorded.iter().any(|e| e.store_id != store_id.as_uuid()) {
        // The same answer as for a missing aggregate, and never writable.
        return Err(DomainError::NotFound { kind: A::KIND }.into());
    }
    for e in &recorded {
        let event = decode::<A::Event>(&e.event_type, &e.payload)
            .map_err(|err| StoreError::Corrupt { position: e.position, reason: err.to_string() })?;
        state = state.evolve(&event);
        expected = ExpectedVersion::Exact(e.version);
    }
    if let (true, ExpectedVersion::Exact(version), false) = (A::KEEP_STATE, expected, recorded.is_empty()) {
        store.states().put(stream_id, store_id.as_uuid(), version, state.clone());
    }
    Ok((state, expected))
}

/// Runs one command against one aggregate: load → decide → append, retrying on conflict.
/// `position` is `None` when the command changed nothing.
pub async fn execute<A: Aggregate>(
    store: &EventStore,
    ctx: &CommandContext,
    stream_id: &str,
    command: &A::Command,
) -> Result<Once, CommandError> {
    execute_once::<A>(store, ctx, None, A::KIND, Uuid::nil(), stream_id, command).await
}

/// [`execute`] at most once per idempotency `key` (scoped to `mutation`): a retry returns the
/// first request's `entity_id` and position and writes nothing.
#[tracing::instrument(skip_all, fields(stream_id = %stream_id, store_id = %ctx.store_id, kind = A::KIND), err(level = "info"))]
pub async fn execute_once<A: Aggregate>(
    store: &EventStore,
    ctx: &CommandContext,
    key: Option<&str>,
    mutation: &str,
    entity_id: Uuid,
    stream_id: &str,
    command: &A::Command,
) -> Result<Once, CommandError> {
    idempotency::once(store, ctx, key, mutation, entity_id, |mut d| async move {
        d.decide::<A>(stream_id, std::slice::from_ref(command)).await?;
        Ok(d)
    })
    .await
}

/// Domain events as events to append, with the command's metadata.
pub fn to_new_events<E: domain::DomainEvent>(ctx: &CommandContext, events: &[E]) -> Vec<NewEvent> {
    let metadata = ctx.metadata();
    events
        .iter()
        .map(|e| {
            let enc = encode(e);
            NewEvent {
                event_id: Uuid::now_v7(),
                store_id: ctx.store_id.as_uuid(),
                event_type: enc.event_type,
                schema_version: enc.schema_version,
                payload: enc.payload,
                metadata: metadata.clone(),
                data_subject: enc.data_subject,
            }
        })
        .collect()
}

/// [`execute_once`] for a command that creates its aggregate under an id this server has just
/// generated (a UUID v7, e.g. `ItemId::new_v7()`): such a stream cannot exist yet, so it is
/// decided on the empty state without reading it. The append still expects "no stream": were
/// the id ever taken, the append would conflict and the retry loads the stream as usual. When
/// the stream is created by a single event, `Once::created` holds it as the log does.
#[tracing::instrument(skip_all, fields(stream_id = %stream_id, store_id = %ctx.store_id, kind = A::KIND), err(level = "info"))]
pub async fn execute_new<A: Aggregate>(
    store: &EventStore,
    ctx: &CommandContext,
    key: Option<&str>,
    mutation: &str,
    entity_id: Uuid,
    stream_id: &str,
    command: &A::Command,
) -> Result<Once, CommandError> {
    let mut first = true;
    idempotency::once(store, ctx, key, mutation, entity_id, |mut d| {
        let fresh = std::mem::replace(&mut first, false);
        async move {
            if fresh {
                d.decide_new::<A>(stream_id, std::slice::from_ref(command))?;
            } else {
                d.decide::<A>(stream_id, std::slice::from_ref(command)).await?;
            }
            Ok(d)
        }
    })
    .await
}

/// A decision spanning several aggregates, appended atomically: each stream is loaded, decided
/// on, and appended with the version it was loaded at.
pub struct MultiDecision<'a> {
    store: &'a EventStore,
    ctx: &'a CommandContext,
    batches: Vec<(String, ExpectedVersion, Vec<NewEvent>)>,
    /// The stream [`Self::decide_new`] created, reported back as recorded after the commit.
    created: Option<String>,
}

impl<'a> MultiDecision<'a> {
    pub fn new(store: &'a EventStore, ctx: &'a CommandContext) -> Self {
        Self { store, ctx, batches: Vec::new(), created: None }
    }

    /// Loads `stream_id`, decides each command in turn on the evolving state, and stages the
    /// events. Returns the resulting state.
    pub async fn decide<A: Aggregate>(&mut self, stream_id: &str, commands: &[A::Command]) -> Result<A, CommandError> {
        let (mut state, expected) = load::<A>(self.store, self.ctx.store_id, stream_id).await?;
        let mut all = Vec::new();
        for command in commands {
            let events = state.decide(command)?;
            state = events.iter().fold(state, A::evolve);
            all.extend(events);
        }
        self.stage(stream_id.to_owned(), expected, &all);
        Ok(state)
    }

    /// [`Self::decide`] for a stream that cannot exist yet (see [`execute_new`]): decided on the
    /// empty state, nothing read, staged with "no stream" expected.
    pub fn decide_new<A: Aggregate>(&mut self, stream_id: &str, commands: &[A::Command]) -> Result<A, CommandError> {
        let mut state = A::default();
        let mut all = Vec::new();
        for command in commands {
            let events = state.decide(command)?;
            state = events.iter().fold(state, A::evolve);
            all.extend(events);
        }
        self.stage(stream_id.to_owned(), ExpectedVersion::NoStream, &all);
        self.created = Some(stream_id.to_owned());
        Ok(state)
    }

    /// Stages already-decided events for a stream.
    pub fn stage<E: domain::DomainEvent>(&mut self, stream_id: String, expected: ExpectedVersion, events: &[E]) {
        if !events.is_empty() {
            self.batches.push((stream_id, expected, to_new_events(self.ctx, events)));
        }
    }

    /// True when nothing has been staged.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Appends everything staged in one transaction.
    pub async fn commit(self) -> Result<Option<Position>, StoreError> {
        Ok(self.commit_recorded().await?.0)
    }

    /// [`Self::commit`], also returning the event that created the stream of
    /// [`Self::decide_new`] as the log now holds it, when it was a single event (an append
    /// reports only its last event's position, so only then is every field known exactly).
    pub async fn commit_recorded(self) -> Result<(Option<Position>, Option<RecordedEvent>), StoreError> {
        if self.batches.is_empty() {
            return Ok((None, None));
        }
        let created = self.created.as_ref().and_then(|stream| {
            let at = self.batches.iter().position(|(s, _, events)| s == stream && events.len() == 1)?;
            Some((at, self.batches[at].2[0].clone()))
        });
        let results = self.store.append_streams(self.batches).await?;
        let position = results.iter().map(|r| r.position).max();
        let created = created.map(|(at, e)| RecordedEvent {
            position: results[at].position,
            stream_id: self.created.clone().unwrap_or_default(),
            version: results[at].version,
            event_id: e.event_id,
            store_id: e.store_id,
            event_type: e.event_type,
            schema_version: e.schema_version,
            payload: e.payload,
            metadata: e.metadata,
            recorded_at: results[at].recorded_at,
        });
        Ok((position, created))
    }
}

/// A short, growing, jittered pause between retries so contending writers spread out.
pub(crate) async fn backoff(attempt: u32) {
    let base = 200u64 << attempt.min(6);
    // Jitter from the clock's sub-second nanos is enough to de-synchronise retries.
    let jitter = u64::from(chrono::Utc::now().timestamp_subsec_nanos()) % base;
    tokio::time::sleep(Duration::from_micros(base + jitter)).await;
}
