//! SQLite backend: the zero-setup embedded default.
//!
//! One writer connection (SQLite allows one writer at a time; queuing in the pool is cheaper
//! than busy-waiting on the file lock) and a pool of readers. WAL mode, and `secure_delete` so
//! erased bytes are overwritten rather than left in free pages. Write transactions start with
//! `BEGIN IMMEDIATE`, so another process cannot slip a write between our read and our insert.
//! Positions are allocated inside the write transaction, so they are in commit order and
//! `position > checkpoint` never skips.

mod append;

use crate::backend::{parse_class, validate_batches, Backend, StreamBatch};
use crate::crypto::KeyRecord;
use crate::error::{Result, StoreError};
use crate::group::GroupCommit;
use crate::migrate;
use crate::types::{AppendResult, Position, StoredEvent};
use append::SqliteWriter;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::KeyClass;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::Row;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

pub struct SqliteBackend {
    writer: SqlitePool,
    reader: SqlitePool,
    wake: watch::Sender<u64>,
    appender: Arc<SqliteWriter>,
    committer: GroupCommit,
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
        let wake = watch::channel(0).0;
        let appender = Arc::new(SqliteWriter { pool: writer.clone(), wake: wake.clone(), heads: Default::default() });
        let committer = GroupCommit::start(appender.clone());
        let backend = Self {
            reader: SqlitePoolOptions::new().max_connections(4).test_before_acquire(false).connect_lazy_with(options),
            writer,
            wake,
            appender,
            committer,
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
        self.committer.append(batches, new_keys).await
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
        let events: Vec<StoredEvent> = rows.iter().map(row_to_event).collect::<Result<_>>()?;
        self.appender.heads.saw_read(stream_id, &events, limit);
        Ok(events)
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

    async fn count_committed(&self, after: Position) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE position > ?1")
            .bind(after.seq)
            .fetch_one(&self.reader)
            .await?;
        Ok(n as u64)
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
