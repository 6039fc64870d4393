//! PostgreSQL backend: the production path.
//!
//! Ordering: sequences are allocated before commit, so transactions can commit out of position
//! order. Each event records its writing transaction id (`xid8`), readers order the log by
//! `(tx_id, position)` and only read rows with `tx_id < pg_snapshot_xmin(pg_current_snapshot())`
//! — below the oldest transaction still running. A transaction that could still commit is never
//! below that horizon, so nothing can later appear before what a reader already passed. The
//! checkpoint is the `(tx_id, position)` pair.
//!
//! The price: the horizon is cluster-wide, so any long-running transaction that holds an xid —
//! in this database or another on the same server (a `CREATE DATABASE`, a bulk import) — delays
//! (never breaks) delivery until it ends. Sessions get `idle_in_transaction_session_timeout`, and
//! projections report their lag. Verification reads everything committed (`read_committed`) and
//! does not wait for the horizon.
//!
//! Appends: group commit (see [`crate::group`] and `append.rs`). Wake-ups: local readers are woken
//! after each commit; other servers by a `pg_notify` sent after it and a LISTEN task.

mod append;

pub use append::PendingAppend;

use crate::backend::{parse_class, validate_batches, Backend, StreamBatch};
use crate::crypto::KeyRecord;
use crate::error::{Result, StoreError};
use crate::group::GroupCommit;
use crate::group::Heads;
use crate::migrate;
use crate::types::{AppendResult, Position, StoredEvent};
use append::PgWriter;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::KeyClass;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

const CHANNEL: &str = "ic_events";
const MIGRATION_LOCK: i64 = 0x1c_e7e7_5701;

pub struct PostgresBackend {
    pool: PgPool,
    wake: watch::Sender<u64>,
    writer: Arc<PgWriter>,
    committer: GroupCommit,
    listener: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        if let Some(h) = self.listener.lock().ok().and_then(|mut g| g.take()) {
            h.abort();
        }
    }
}

const COLUMNS: &str = "position, tx_id::text::bigint AS commit_pos, stream_id, version, event_id, store_id, event_type, schema_version, payload, metadata, recorded_at, prev_hash, hash";

fn row_to_event(r: &PgRow) -> Result<StoredEvent> {
    Ok(StoredEvent {
        position: Position { commit: r.try_get("commit_pos")?, seq: r.try_get("position")? },
        stream_id: r.try_get("stream_id")?,
        version: r.try_get::<i64, _>("version")? as u64,
        event_id: r.try_get("event_id")?,
        store_id: r.try_get("store_id")?,
        event_type: r.try_get("event_type")?,
        schema_version: r.try_get::<i32, _>("schema_version")? as u32,
        payload: r.try_get("payload")?,
        metadata: r.try_get("metadata")?,
        recorded_at: r.try_get("recorded_at")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn row_to_key(r: &PgRow) -> Result<KeyRecord> {
    Ok(KeyRecord {
        store_id: r.try_get("store_id")?,
        subject_id: r.try_get("subject_id")?,
        class: parse_class(r.try_get("key_class")?)?,
        key_id: r.try_get("key_id")?,
        wrapped: r.try_get("wrapped_key")?,
        fingerprint: r.try_get("fingerprint")?,
        created_at: r.try_get("created_at")?,
        destroyed_at: r.try_get("destroyed_at")?,
    })
}

/// Deadlocks and serialisation failures between concurrent multi-stream appends mean "someone
/// else changed one of these streams": a conflict, retried by the caller on fresh state.
pub(crate) fn is_concurrency_failure(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01") | Some("40001")))
}

impl PostgresBackend {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        Self::connect_with(url, max_connections, false).await
    }

    /// With `existing_only`, nothing is migrated (read-only commands never change a database).
    pub async fn connect_with(url: &str, max_connections: u32, existing_only: bool) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Config("invalid PostgreSQL database URL".into()))?
            // A session idle inside a transaction would hold the read horizon back for everyone.
            .options([("idle_in_transaction_session_timeout", "60s")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        // The committer's own connections (opened when first needed). Its statements have the
        // same shape every time, so they keep one generic plan: planning the group statement
        // anew cost more than executing it (measured: the 1-writer append went from 0.83 to
        // 0.97 of a raw INSERT). Reads keep custom plans, which suit skewed filters.
        let appends = PgPoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(options.options([("plan_cache_mode", "force_generic_plan")]));
        let wake = watch::channel(0).0;
        let (announce, requests) = tokio::sync::mpsc::channel(1);
        tokio::spawn(append::announce(appends.clone(), requests));
        let writer = Arc::new(PgWriter { pool: appends, heads: Heads::default(), wake: wake.clone(), announce });
        let committer = GroupCommit::start(writer.clone());
        let backend = Self { pool, wake, writer, committer, listener: std::sync::Mutex::new(None) };
        if existing_only {
            match backend.migrations_applied().await {
                Ok(true) => {
                    let applied: Vec<(i64, String, Option<String>)> =
                        sqlx::query_as("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
                            .fetch_all(&backend.pool)
                            .await?;
                    migrate::check_applied(migrate::POSTGRES, &applied)?;
                }
                Ok(false) => {
                    return Err(StoreError::Config(
                        "the database is not migrated to this version; start `serve` once".into(),
                    ))
                }
                Err(_) => {
                    return Err(StoreError::Config(
                        "not an InventoryConnect database (no schema_migrations table)".into(),
                    ))
                }
            }
        } else {
            backend.migrate().await?;
        }
        backend.start_listener().await?;
        Ok(backend)
    }

    async fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        // Several servers may start at once: one migrates, the others wait.
        sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await?;
        let result = async {
            sqlx::query(migrate::CREATE_TABLE).execute(&mut *conn).await?;
            // Databases from before checksums were recorded lack the column.
            sqlx::query("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum TEXT")
                .execute(&mut *conn)
                .await?;
            let applied: Vec<(i64, String, Option<String>)> =
                sqlx::query_as("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
                    .fetch_all(&mut *conn)
                    .await?;
            for (version, sum) in migrate::check_applied(migrate::POSTGRES, &applied)? {
                sqlx::query("UPDATE schema_migrations SET checksum = $1 WHERE version = $2")
                    .bind(sum)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
            }
            for m in migrate::POSTGRES {
                let done: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *conn)
                    .await?;
                if done.is_none() {
                    tracing::info!(version = m.version, name = m.name, "applying PostgreSQL migration");
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
                    sqlx::query(
                        "INSERT INTO schema_migrations (version, name, applied_at, checksum) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(m.version)
                    .bind(m.name)
                    .bind(Utc::now().timestamp_micros())
                    .bind(migrate::checksum(m))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                }
            }
            Ok::<_, StoreError>(())
        }
        .await;
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await?;
        result
    }

    async fn start_listener(&self) -> Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        let wake = self.wake.clone();
        let handle = tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(_) => wake.send_modify(|v| *v = v.wrapping_add(1)),
                    Err(e) => {
                        tracing::warn!(error = %e, "event notification listener failed; retrying");
                        // Readers still poll, so a lost notification only delays them.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        *self.listener.lock().expect("listener lock") = Some(handle);
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn notify(&self) {
        self.wake.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Writes the batches in an open transaction (no group); `commit` makes them visible.
    /// Tests use it to hold a transaction open.
    pub async fn append_uncommitted(
        &self,
        batches: Vec<StreamBatch>,
        new_keys: Vec<KeyRecord>,
    ) -> Result<PendingAppend> {
        validate_batches(&batches)?;
        self.writer.append_uncommitted(batches, new_keys).await
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    #[tracing::instrument(skip_all, fields(streams = batches.len()), err(level = "debug"))]
    async fn append_streams(&self, batches: Vec<StreamBatch>, new_keys: Vec<KeyRecord>) -> Result<Vec<AppendResult>> {
        validate_batches(&batches)?;
        self.committer.append(batches, new_keys).await
    }

    async fn read_stream(&self, stream_id: &str, from_version: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3"
        ))
        .bind(stream_id)
        .bind(from_version as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let events: Vec<StoredEvent> = rows.iter().map(row_to_event).collect::<Result<_>>()?;
        self.writer.heads.saw_read(stream_id, &events, limit);
        Ok(events)
    }

    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events
             WHERE (tx_id, position) > ($1::text::xid8, $2)
               AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY tx_id, position LIMIT $3"
        ))
        .bind(after.commit.to_string())
        .bind(after.seq)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn read_committed(&self, after: Position, limit: usize) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE (tx_id, position) > ($1::text::xid8, $2) ORDER BY tx_id, position LIMIT $3"
        ))
        .bind(after.commit.to_string())
        .bind(after.seq)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn count_committed(&self, after: Position) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE (tx_id, position) > ($1::text::xid8, $2)")
            .bind(after.commit.to_string())
            .bind(after.seq)
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    async fn subject_keys(&self, store_id: Uuid, subject_id: Uuid) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM data_keys WHERE store_id = $1 AND subject_id = $2")
            .bind(store_id)
            .bind(subject_id)
            .fetch_all(&self.pool)
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
        let classes: Vec<&str> = classes.iter().map(KeyClass::as_str).collect();
        let rows = sqlx::query(
            "UPDATE data_keys SET wrapped_key = NULL, destroyed_at = COALESCE(destroyed_at, $4)
             WHERE store_id = $1 AND subject_id = $2 AND key_class = ANY($3) RETURNING *",
        )
        .bind(store_id)
        .bind(subject_id)
        .bind(&classes)
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_key).collect()
    }

    async fn migrations_applied(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations").fetch_one(&self.pool).await?;
        Ok(n as usize == migrate::POSTGRES.len())
    }
}
