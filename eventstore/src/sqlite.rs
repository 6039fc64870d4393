//! SQLite backend: the zero-setup embedded default.
//!
//! One writer connection (SQLite allows one writer at a time; queuing in the pool is cheaper
//! than busy-waiting on the file lock) and a pool of readers. WAL mode, and `secure_delete` so
//! erased bytes are overwritten rather than left in free pages. Write transactions start with
//! `BEGIN IMMEDIATE`, so another process cannot slip a write between our read and our insert.
//! Positions are allocated inside the write transaction, so they are in commit order and
//! `position > checkpoint` never skips.

use crate::backend::{
    check_expected, is_duplicate_event, is_version_conflict, parse_class, validate_batches, Backend, StreamBatch,
};
use crate::chain::link;
use crate::crypto::KeyRecord;
use crate::error::{Result, StoreError};
use crate::migrate;
use crate::types::{now_micros, AppendResult, Position, StoredEvent};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::KeyClass;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

pub struct SqliteBackend {
    writer: SqlitePool,
    reader: SqlitePool,
    wake: watch::Sender<u64>,
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).unwrap_or_default()
}

const COLUMNS: &str = "position, stream_id, version, event_id, store_id, event_type, schema_version, payload, metadata, recorded_at, prev_hash, hash";

fn row_to_event(r: &SqliteRow) -> Result<StoredEvent> {
    let position: i64 = r.try_get("position")?;
    Ok(StoredEvent {
        position: Position { commit: position, seq: position },
        stream_id: r.try_get("stream_id")?,
        version: r.try_get::<i64, _>("version")? as u64,
        event_id: r.try_get("event_id")?,
        store_id: r.try_get("store_id")?,
        event_type: r.try_get("event_type")?,
        schema_version: r.try_get::<i64, _>("schema_version")? as u32,
        payload: r.try_get("payload")?,
        metadata: r.try_get("metadata")?,
        recorded_at: from_micros(r.try_get("recorded_at")?),
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn row_to_key(r: &SqliteRow) -> Result<KeyRecord> {
    Ok(KeyRecord {
        store_id: r.try_get("store_id")?,
        subject_id: r.try_get("subject_id")?,
        class: parse_class(r.try_get("key_class")?)?,
        key_id: r.try_get("key_id")?,
        wrapped: r.try_get("wrapped_key")?,
        fingerprint: r.try_get("fingerprint")?,
        created_at: from_micros(r.try_get("created_at")?),
        destroyed_at: r.try_get::<Option<i64>, _>("destroyed_at")?.map(from_micros),
    })
}

impl SqliteBackend {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or `sqlite::memory:`
    /// is not supported: readers and the writer need a shared file) and migrates it.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, false).await
    }

    /// With `existing_only`, a missing file is an error and nothing is migrated (read-only
    /// commands must never create or change a database).
    pub async fn open_with(url: &str, existing_only: bool) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::Config("invalid SQLite database URL".into()))?
            .create_if_missing(!existing_only)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("secure_delete", "ON");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.clone())
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(_) if existing_only => {
                    StoreError::Config("no InventoryConnect database at that path (nothing was created)".into())
                }
                other => other.into(),
            })?;
        let backend = Self {
            reader: SqlitePoolOptions::new().max_connections(4).test_before_acquire(false).connect_lazy_with(options),
            writer,
            wake: watch::channel(0).0,
        };
        if existing_only {
            backend.require_migrated().await?;
        } else {
            backend.migrate().await?;
        }
        Ok(backend)
    }

    async fn require_migrated(&self) -> Result<()> {
        match self.migrations_applied().await {
            Ok(true) => {
                let applied: Vec<(i64, String, Option<String>)> =
                    sqlx::query_as("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
                        .fetch_all(&self.reader)
                        .await?;
                migrate::check_applied(migrate::SQLITE, &applied).map(|_| ())
            }
            Ok(false) => {
                Err(StoreError::Config("the database is not migrated to this version; start `serve` once".into()))
            }
            Err(_) => Err(StoreError::Config("not an InventoryConnect database (no schema_migrations table)".into())),
        }
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(migrate::CREATE_TABLE).execute(&mut *tx).await?;
        // Databases from before checksums were recorded lack the column.
        let has_checksum: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info('schema_migrations') WHERE name = 'checksum'")
                .fetch_one(&mut *tx)
                .await?;
        if has_checksum == 0 {
            sqlx::query("ALTER TABLE schema_migrations ADD COLUMN checksum TEXT").execute(&mut *tx).await?;
        }
        let applied: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
                .fetch_all(&mut *tx)
                .await?;
        for (version, sum) in migrate::check_applied(migrate::SQLITE, &applied)? {
            sqlx::query("UPDATE schema_migrations SET checksum = ?1 WHERE version = ?2")
                .bind(sum)
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
        for m in migrate::SQLITE {
            let done: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?1")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await?;
            if done.is_none() {
                tracing::info!(version = m.version, name = m.name, "applying SQLite migration");
                sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO schema_migrations (version, name, applied_at, checksum) VALUES (?1, ?2, ?3, ?4)",
                )
                .bind(m.version)
                .bind(m.name)
                .bind(micros(Utc::now()))
                .bind(migrate::checksum(m))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The single writer pool: read models on SQLite are written through it too.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Wakes subscribers of this process (after a read-model or log write done elsewhere).
    pub fn notify(&self) {
        self.wake.send_modify(|v| *v = v.wrapping_add(1));
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    #[tracing::instrument(skip_all, fields(streams = batches.len()), err(level = "debug"))]
    async fn append_streams(&self, batches: Vec<StreamBatch>, new_keys: Vec<KeyRecord>) -> Result<Vec<AppendResult>> {
        validate_batches(&batches)?;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for k in &new_keys {
            insert_new_key(&mut tx, k).await?;
        }
        let mut results = Vec::with_capacity(batches.len());
        for batch in &batches {
            results.push(insert_stream(&mut tx, batch).await?);
        }
        tx.commit().await?;
        self.notify();
        Ok(results)
    }

    async fn read_stream(&self, stream_id: &str, from_version: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id = ?1 AND version >= ?2 ORDER BY version LIMIT ?3"
        ))
        .bind(stream_id)
        .bind(from_version as i64)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"))
            .bind(after.seq)
            .bind(limit as i64)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn read_committed(&self, after: Position, limit: usize) -> Result<Vec<StoredEvent>> {
        self.read_all(after, limit).await
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    async fn subject_keys(&self, store_id: Uuid, subject_id: Uuid) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM data_keys WHERE store_id = ?1 AND subject_id = ?2")
            .bind(store_id)
            .bind(subject_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(row_to_key).collect()
    }

    async fn destroy_keys(
        &self,
        store_id: Uuid,
        subject_id: Uuid,
        classes: &[KeyClass],
        at: DateTime<Utc>,
    ) -> Result<Vec<KeyRecord>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut out = Vec::new();
        for class in classes {
            let row = sqlx::query(
                "UPDATE data_keys SET wrapped_key = NULL, destroyed_at = COALESCE(destroyed_at, ?4)
                 WHERE store_id = ?1 AND subject_id = ?2 AND key_class = ?3 RETURNING *",
            )
            .bind(store_id)
            .bind(subject_id)
            .bind(class.as_str())
            .bind(micros(at))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                out.push(row_to_key(&row)?);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn migrations_applied(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations").fetch_one(&self.reader).await?;
        Ok(n as usize == migrate::SQLITE.len())
    }
}

/// Checks the stream's version and inserts its events, inside the caller's transaction.
async fn insert_stream(tx: &mut sqlx::Transaction<'_, Sqlite>, batch: &StreamBatch) -> Result<AppendResult> {
    let (stream_id, expected, events) = (batch.stream_id.as_str(), batch.expected, &batch.events);
    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, hash FROM events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1")
            .bind(stream_id)
            .fetch_optional(&mut **tx)
            .await?;
    check_expected(stream_id, expected, last.as_ref().map(|(v, _)| *v as u64))?;
    let recorded_at = now_micros();
    let links = link(stream_id, last.map(|(v, h)| (v as u64, h)), events, recorded_at);
    let rows: Vec<_> = events.iter().zip(&links).collect();
    // One multi-row INSERT per chunk: a statement per event costs a round trip to SQLite's
    // worker thread each (measured: 5x slower for 100-event batches). 11 binds per row stays far
    // below SQLite's 32766-variable limit at 500 rows.
    let mut position = 0i64;
    for chunk in rows.chunks(500) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (stream_id, version, event_id, store_id, event_type, schema_version, payload, metadata, recorded_at, prev_hash, hash) ",
        );
        qb.push_values(chunk, |mut b, (e, l)| {
            b.push_bind(stream_id)
                .push_bind(l.version as i64)
                .push_bind(e.event_id)
                .push_bind(e.store_id)
                .push_bind(&e.event_type)
                .push_bind(e.schema_version as i64)
                .push_bind(&e.payload)
                .push_bind(&e.metadata)
                .push_bind(micros(recorded_at))
                .push_bind(l.prev_hash.as_slice())
                .push_bind(l.hash.as_slice());
        });
        qb.push(" RETURNING position");
        let positions: Vec<i64> = qb.build_query_scalar().fetch_all(&mut **tx).await.map_err(|err| {
            if is_duplicate_event(&err) {
                StoreError::DuplicateEvent
            } else if is_version_conflict(&err) {
                StoreError::Conflict {
                    stream_id: stream_id.into(),
                    expected: expected.to_string(),
                    actual: "changed".into(),
                }
            } else {
                err.into()
            }
        })?;
        position = position.max(positions.into_iter().max().unwrap_or(0));
    }
    let version = links.last().expect("a non-empty batch").version;
    Ok(AppendResult { version, position: Position { commit: position, seq: position } })
}

/// Inserts a data key created for this append; `KeyRace` if the subject got one meanwhile.
async fn insert_new_key(tx: &mut sqlx::Transaction<'_, Sqlite>, k: &KeyRecord) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO data_keys (store_id, subject_id, key_class, key_id, wrapped_key, fingerprint, created_at, destroyed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL) ON CONFLICT (store_id, subject_id, key_class) DO NOTHING",
    )
    .bind(k.store_id)
    .bind(k.subject_id)
    .bind(k.class.as_str())
    .bind(k.key_id)
    .bind(&k.wrapped)
    .bind(&k.fingerprint)
    .bind(micros(k.created_at))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        Ok(())
    } else {
        Err(StoreError::KeyRace)
    }
}
