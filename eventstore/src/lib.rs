//! The event log of InventoryConnect.
//!
//! [`Database`] connects to SQLite (embedded default) or PostgreSQL and runs migrations. Both
//! implement [`backend::Backend`], which deals only in stored bytes. [`EventStore`] sits on top and
//! is what everyone else uses: it encrypts personal data before every append, opens it (or marks
//! it erased) and applies upcasters on every read, and verifies the per-stream hash chains. No
//! caller can reach the log around it, so no caller can write plaintext personal data or read an
//! un-upcast payload.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod backend;
pub mod bundle;
pub mod chain;
pub mod crypto;
pub mod erasures;
pub mod error;
mod group;
pub mod keycheck;
pub mod ledger;
mod migrate;
pub mod postgres;
pub mod rotation;
pub mod sqlite;
pub mod states;
mod tail;
/// Throwaway test databases and the backend contract macro: the `testing` feature only, never
/// in the release binary.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;
pub mod upcast;

pub use accounts::Accounts;
pub use crypto::{KeyRecord, MasterKey};
pub use error::{Result, StoreError};
pub use keycheck::KeyCheck;
pub use types::{Actor, AppendResult, ExpectedVersion, Metadata, NewEvent, Position, RecordedEvent, StoredEvent};
pub use upcast::{Upcaster, Upcasters};

use backend::Backend;
use chain::{ChainBreak, ChainVerifier};
use crypto::{FieldContext, KeyState};
use domain::KeyClass;
use postgres::PostgresBackend;
use sqlite::SqliteBackend;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::watch;
use types::SealedEvent;
use uuid::Uuid;

/// A connected, migrated database.
#[derive(Clone)]
pub enum Database {
    Sqlite(Arc<SqliteBackend>),
    Postgres(Arc<PostgresBackend>),
}

/// A job lock held while this lives (see [`Database::try_job_lock`]).
pub struct JobLock {
    _conn: Option<sqlx::PgConnection>,
}

impl Database {
    /// Takes the lock of a job that one server at a time must run (retention, …): on
    /// PostgreSQL a session advisory lock on a connection of its own, released when the
    /// returned guard drops (or the process dies); on SQLite (one server) always granted.
    /// `None` when another server holds it.
    pub async fn try_job_lock(&self, key: i64) -> Result<Option<JobLock>> {
        match self {
            Self::Sqlite(_) => Ok(Some(JobLock { _conn: None })),
            Self::Postgres(b) => {
                let mut conn = b.pool().acquire().await?.detach();
                let got: bool =
                    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut conn).await?;
                Ok(got.then_some(JobLock { _conn: Some(conn) }))
            }
        }
    }

    /// After an erasure reached the read models: makes sure the purged values are gone from
    /// storage too, not only from query results. SQLite (`secure_delete` on, so freed cells are
    /// zeroed) checkpoints the WAL into the database file and truncates it; PostgreSQL vacuums
    /// the purged tables so no dead row version keeps a value.
    pub async fn scrub(&self, tables: &[&'static str]) -> Result<()> {
        match self {
            Self::Sqlite(b) => {
                // A reader holding an old snapshot can keep the checkpoint from finishing: retry.
                for attempt in 0..50 {
                    let (busy, _, _): (i64, i64, i64) =
                        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(b.writer()).await?;
                    if busy == 0 {
                        return Ok(());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await;
                }
                Err(StoreError::Invalid("the WAL could not be checkpointed: readers kept it busy".into()))
            }
            Self::Postgres(b) => {
                for table in tables {
                    if !table.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                        return Err(StoreError::Invalid(format!("not a table name: {table}")));
                    }
                    sqlx::query(&format!("VACUUM {table}")).execute(b.pool()).await?;
                }
                Ok(())
            }
        }
    }

    /// `postgres://…` selects PostgreSQL; `sqlite://path` (or `sqlite:path`) SQLite.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(Arc::new(PostgresBackend::connect(url, 16).await?)))
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(Arc::new(SqliteBackend::open(url).await?)))
        } else {
            Err(StoreError::Config("database URL must start with postgres:// or sqlite:".into()))
        }
    }

    /// Opens an existing, migrated database without creating or changing anything: for read-only
    /// commands (`verify`, `projections status`, exports).
    pub async fn open_existing(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(Arc::new(PostgresBackend::connect_with(url, 4, true).await?)))
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(Arc::new(SqliteBackend::open_with(url, true).await?)))
        } else {
            Err(StoreError::Config("database URL must start with postgres:// or sqlite:".into()))
        }
    }

    /// A bare connection to a PostgreSQL database (no migration, no checks): for restoring into.
    pub async fn connect_raw(url: &str) -> Result<RawPostgres> {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?;
        Ok(RawPostgres(pool))
    }

    pub fn backend(&self) -> Arc<dyn Backend> {
        match self {
            Self::Sqlite(b) => b.clone(),
            Self::Postgres(b) => b.clone(),
        }
    }

    /// Runs one SQL statement as is. For tests that tamper with stored rows, and operations.
    pub async fn execute_raw(&self, sql: &str) -> Result<u64> {
        Ok(match self {
            Self::Sqlite(b) => sqlx::raw_sql(sql).execute(b.writer()).await?.rows_affected(),
            Self::Postgres(b) => sqlx::raw_sql(sql).execute(b.pool()).await?.rows_affected(),
        })
    }
}

/// A bare PostgreSQL connection (see [`Database::connect_raw`]).
pub struct RawPostgres(sqlx::PgPool);

impl RawPostgres {
    /// Whether the database has any table in its public schema.
    pub async fn has_tables(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(&self.0)
            .await?;
        Ok(n > 0)
    }
}

/// Keys gathered while sealing one append.
#[derive(Default)]
struct SealingKeys {
    /// (store, subject, class) → the live key, or `None` when it was destroyed.
    known: HashMap<(Uuid, Uuid, KeyClass), Option<crypto::DataKey>>,
    /// Subjects whose stored keys were already loaded.
    loaded: std::collections::HashSet<(Uuid, Uuid)>,
    /// Keys created for this append; written in its transaction.
    created: Vec<KeyRecord>,
}

/// The outcome of verifying the whole log.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub events: u64,
    pub streams: usize,
    pub head: Position,
    /// The first event that fails verification, if any.
    pub broken: Option<ChainBreak>,
}

/// The event log as the rest of the system sees it.
#[derive(Clone)]
pub struct EventStore {
    backend: Arc<dyn Backend>,
    master: MasterKey,
    upcasters: Arc<Upcasters>,
    states: Arc<states::States>,
    tail: Arc<tail::SharedReads>,
}

const PAGE: usize = 1000;

impl EventStore {
    pub fn new(db: &Database, master: MasterKey, upcasters: Upcasters) -> Self {
        Self {
            backend: db.backend(),
            master,
            upcasters: Arc::new(upcasters),
            states: Arc::default(),
            tail: Arc::default(),
        }
    }

    /// States kept in memory between commands (see [`states::States`]); shared by clones.
    pub fn states(&self) -> &states::States {
        &self.states
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.master
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Appends a batch atomically, encrypting personal data first.
    #[tracing::instrument(skip_all, fields(stream_id = %stream_id, events = events.len()), err(level = "debug"))]
    pub async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        Ok(self.append_streams(vec![(stream_id.to_owned(), expected, events)]).await?.remove(0))
    }

    /// Appends to several streams atomically (see [`backend::Backend::append_streams`]). Data
    /// keys created for new subjects are written in the same transaction, so a key exists only
    /// if its events do; if a concurrent append created the same subject's key first, the
    /// batch is sealed again under that key and retried.
    #[tracing::instrument(skip_all, fields(streams = batches.len()), err(level = "debug"))]
    pub async fn append_streams(
        &self,
        batches: Vec<(String, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<AppendResult>> {
        let mut attempt = 0;
        let events: usize = batches.iter().map(|(_, _, e)| e.len()).sum();
        loop {
            let (sealed, new_keys) = self.seal_batches(&batches).await?;
            match self.backend.append_streams(sealed, new_keys).await {
                Err(StoreError::KeyRace) if attempt < 5 => attempt += 1,
                result => {
                    match &result {
                        Ok(_) => metrics::counter!("ic_events_appended_total").increment(events as u64),
                        Err(StoreError::Conflict { .. }) => metrics::counter!("ic_append_conflicts_total").increment(1),
                        Err(_) => {}
                    }
                    return result;
                }
            }
        }
    }

    /// Seals every event; returns the stored forms and the data keys created for them.
    pub async fn seal_batches(
        &self,
        batches: &[(String, ExpectedVersion, Vec<NewEvent>)],
    ) -> Result<(Vec<backend::StreamBatch>, Vec<KeyRecord>)> {
        let mut keys = SealingKeys::default();
        let mut sealed = Vec::with_capacity(batches.len());
        for (stream_id, expected, events) in batches {
            let mut out = Vec::with_capacity(events.len());
            for e in events {
                out.push(self.seal_one(stream_id, e, &mut keys).await?);
            }
            sealed.push(backend::StreamBatch { stream_id: stream_id.clone(), expected: *expected, events: out });
        }
        Ok((sealed, keys.created))
    }

    async fn seal_one(&self, stream_id: &str, e: &NewEvent, keys: &mut SealingKeys) -> Result<SealedEvent> {
        let mut payload = e.payload.clone();
        let classes = crypto::classes_to_seal(&payload)?;
        if !classes.is_empty() {
            let subject = e
                .data_subject
                .ok_or_else(|| StoreError::Crypto("payload holds personal data but names no data subject".into()))?;
            let subject_keys = self.keys_for_sealing(e.store_id, subject, &classes, keys).await?;
            let ctx = FieldContext { store_id: e.store_id, stream_id, event_id: e.event_id };
            crypto::seal(&mut payload, &ctx, subject, &subject_keys)?;
        }
        Ok(SealedEvent {
            event_id: e.event_id,
            store_id: e.store_id,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            payload: payload.to_string(),
            metadata: serde_json::to_string(&e.metadata).expect("metadata serialises"),
        })
    }

    /// The subject's keys for these classes: loaded, or created (and remembered for the append).
    async fn keys_for_sealing(
        &self,
        store_id: Uuid,
        subject: Uuid,
        classes: &BTreeSet<KeyClass>,
        keys: &mut SealingKeys,
    ) -> Result<HashMap<KeyClass, crypto::DataKey>> {
        let missing = classes.iter().any(|c| !keys.known.contains_key(&(store_id, subject, *c)));
        if missing && keys.loaded.insert((store_id, subject)) {
            for record in self.backend.subject_keys(store_id, subject).await? {
                let key = self.master.unwrap_key(&record)?;
                keys.known.insert((store_id, subject, record.class), key);
            }
        }
        let mut out = HashMap::new();
        for class in classes {
            let known = keys.known.entry((store_id, subject, *class)).or_insert_with(|| {
                let fresh = self.master.new_data_key(store_id, subject, *class, types::now_micros());
                let key = self.master.unwrap_key(&fresh).ok().flatten();
                keys.created.push(fresh);
                key
            });
            match known {
                Some(key) => out.insert(*class, key.clone()),
                // The key exists but was destroyed: the subject was erased.
                None => return Err(StoreError::SubjectErased),
            };
        }
        Ok(out)
    }

    /// All events of a stream from `from_version`, opened and upcast.
    pub async fn read_stream(&self, stream_id: &str, from_version: u64) -> Result<Vec<RecordedEvent>> {
        let mut out = Vec::new();
        let mut next = from_version;
        loop {
            let page = self.backend.read_stream(stream_id, next, PAGE).await?;
            let done = page.len() < PAGE;
            if let Some(last) = page.last() {
                next = last.version + 1;
            }
            out.extend(self.open_batch(page).await?);
            if done {
                return Ok(out);
            }
        }
    }

    /// Up to `limit` events after `after`, in the log's total order, opened and upcast.
    pub async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<RecordedEvent>> {
        let page = self.backend.read_all(after, limit).await?;
        self.open_batch(page).await
    }

    /// [`Self::read_all`] for followers of the log's tail (the projection runners, which one
    /// append wakes together): calls for the same page while it is being read share that read
    /// (see [`tail::SharedReads`]); clones of this store share them.
    pub async fn read_tail(&self, after: Position, limit: usize) -> Result<Arc<Vec<RecordedEvent>>> {
        self.tail.read(after, limit, || self.read_all(after, limit)).await
    }

    /// How many reads of the tail [`Self::read_tail`] has made (joined ones not counted), in
    /// this store and its clones.
    pub fn tail_reads(&self) -> u64 {
        self.tail.made()
    }

    /// Decrypts (or marks erased) and upcasts stored events. Keys are loaded once per subject.
    pub async fn open_batch(&self, stored: Vec<StoredEvent>) -> Result<Vec<RecordedEvent>> {
        let mut parsed = Vec::with_capacity(stored.len());
        let mut needed: BTreeSet<(Uuid, Uuid)> = BTreeSet::new();
        for e in stored {
            let payload: serde_json::Value = serde_json::from_str(&e.payload)
                .map_err(|err| StoreError::Corrupt { position: e.position, reason: format!("payload: {err}") })?;
            for (subject, _) in crypto::keys_to_open(&payload)? {
                needed.insert((e.store_id, subject));
            }
            parsed.push((e, payload));
        }
        let mut keys: HashMap<Uuid, HashMap<(Uuid, KeyClass), KeyState>> = HashMap::new();
        for (store_id, subject) in needed {
            let per_store = keys.entry(store_id).or_default();
            for record in self.backend.subject_keys(store_id, subject).await? {
                let state = match self.master.unwrap_key(&record)? {
                    Some(k) => KeyState::Live(k),
                    None => KeyState::Destroyed(record.destroyed_at),
                };
                per_store.insert((subject, record.class), state);
            }
        }
        let empty = HashMap::new();
        parsed
            .into_iter()
            .map(|(e, mut payload)| {
                let ctx = FieldContext { store_id: e.store_id, stream_id: &e.stream_id, event_id: e.event_id };
                crypto::open(&mut payload, &ctx, keys.get(&e.store_id).unwrap_or(&empty))?;
                let metadata: Metadata = serde_json::from_str(&e.metadata)
                    .map_err(|err| StoreError::Corrupt { position: e.position, reason: format!("metadata: {err}") })?;
                let (schema_version, payload) = self.upcasters.apply(&e.event_type, e.schema_version, payload);
                Ok(RecordedEvent {
                    position: e.position,
                    stream_id: e.stream_id,
                    version: e.version,
                    event_id: e.event_id,
                    store_id: e.store_id,
                    event_type: e.event_type,
                    schema_version,
                    payload,
                    metadata,
                    recorded_at: e.recorded_at,
                })
            })
            .collect()
    }

    /// Crypto-shreds a subject: destroys their keys of these classes. Returns the destroyed
    /// records (fingerprints, times) for the deletion certificate.
    #[tracing::instrument(skip_all, fields(store_id = %store_id, subject_id = %subject_id), err)]
    pub async fn destroy_subject_keys(
        &self,
        store_id: Uuid,
        subject_id: Uuid,
        classes: &[KeyClass],
    ) -> Result<Vec<KeyRecord>> {
        self.backend.destroy_keys(store_id, subject_id, classes, types::now_micros()).await
    }

    /// Every key record of a subject (live and destroyed), with fingerprints.
    pub async fn subject_keys(&self, store_id: Uuid, subject_id: Uuid) -> Result<Vec<KeyRecord>> {
        self.backend.subject_keys(store_id, subject_id).await
    }

    pub fn wakeups(&self) -> watch::Receiver<u64> {
        self.backend.wakeups()
    }

    /// How many committed events lie after `after` (for progress and lag reports): counted by
    /// the database, so a million-event log costs one index scan, not a million rows read.
    pub async fn count_after(&self, after: Position) -> Result<u64> {
        self.backend.count_committed(after).await
    }

    /// Re-checks every stream's hash chain over the stored bytes; stops at the first break.
    pub async fn verify(&self) -> Result<VerifyReport> {
        let mut verifier = ChainVerifier::default();
        let mut head = Position::START;
        loop {
            let page = self.backend.read_committed(head, PAGE).await?;
            let done = page.len() < PAGE;
            for e in &page {
                if let Err(broken) = verifier.check(e) {
                    return Ok(VerifyReport {
                        events: verifier.checked,
                        streams: verifier.streams(),
                        head,
                        broken: Some(broken),
                    });
                }
                head = e.position;
            }
            if done {
                return Ok(VerifyReport { events: verifier.checked, streams: verifier.streams(), head, broken: None });
            }
        }
    }
}
