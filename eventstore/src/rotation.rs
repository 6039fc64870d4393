//! Master-key rotation: every data key and the ledger's signing key are unwrapped with the old
//! master key and wrapped again under the new one, and the key-check value replaced — all in one
//! transaction, so the database is never half under one key and half under the other. The data
//! keys themselves do not change, so no event is re-encrypted and every hash stays as it was.

use crate::crypto::KeyRecord;
use crate::error::{Result, StoreError};
use crate::{Database, MasterKey};
use chrono::Utc;
use sqlx::Row;
use uuid::Uuid;

/// What a rotation re-wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub data_keys: u64,
    pub ledger_keys: u64,
}

macro_rules! rotate_sql {
    ($name:ident, $db:ty) => {
        async fn $name(tx: &mut sqlx::Transaction<'static, $db>, old: &MasterKey, new: &MasterKey) -> Result<Rotation> {
            let rows = sqlx::query("SELECT store_id, subject_id, key_class, key_id, wrapped_key, fingerprint FROM data_keys WHERE wrapped_key IS NOT NULL")
                .fetch_all(&mut **tx)
                .await?;
            let mut data_keys = 0;
            for r in &rows {
                let record = KeyRecord {
                    store_id: r.try_get("store_id")?,
                    subject_id: r.try_get("subject_id")?,
                    class: crate::backend::parse_class(r.try_get("key_class")?)?,
                    key_id: r.try_get("key_id")?,
                    wrapped: r.try_get("wrapped_key")?,
                    fingerprint: r.try_get("fingerprint")?,
                    created_at: Utc::now(),
                    destroyed_at: None,
                };
                // A key the old master cannot open means the old key is wrong: nothing changes.
                let rewrapped = old.rewrap(&record, new).map_err(|_| StoreError::WrongMasterKey)?;
                if let Some(w) = rewrapped {
                    sqlx::query("UPDATE data_keys SET wrapped_key = $1 WHERE key_id = $2")
                        .bind(w)
                        .bind::<Uuid>(record.key_id)
                        .execute(&mut **tx)
                        .await?;
                    data_keys += 1;
                }
            }
            let ledger = sqlx::query("SELECT name, wrapped_key FROM ledger_keys").fetch_all(&mut **tx).await?;
            let mut ledger_keys = 0;
            for r in &ledger {
                let name: String = r.try_get("name")?;
                let wrapped: Vec<u8> = r.try_get("wrapped_key")?;
                let secret = old.unwrap_secret(&name, &wrapped).map_err(|_| StoreError::WrongMasterKey)?;
                sqlx::query("UPDATE ledger_keys SET wrapped_key = $1 WHERE name = $2")
                    .bind(new.wrap_secret(&name, &secret))
                    .bind(&name)
                    .execute(&mut **tx)
                    .await?;
                ledger_keys += 1;
            }
            sqlx::query("UPDATE key_check SET check_value = $1 WHERE singleton = 1").bind(new.check_value()).execute(&mut **tx).await?;
            Ok(Rotation { data_keys, ledger_keys })
        }
    };
}

rotate_sql!(rotate_sqlite, sqlx::Sqlite);
rotate_sql!(rotate_postgres, sqlx::Postgres);

impl Database {
    /// Re-wraps every key under `new`, atomically. `old` must be the database's current key.
    pub async fn rotate_master_key(&self, old: &MasterKey, new: &MasterKey) -> Result<Rotation> {
        self.check_master_key(old).await?;
        match self {
            Database::Sqlite(b) => {
                let mut tx = b.writer().begin_with("BEGIN IMMEDIATE").await?;
                let r = rotate_sqlite(&mut tx, old, new).await?;
                tx.commit().await?;
                Ok(r)
            }
            Database::Postgres(b) => {
                let mut tx = b.pool().begin().await?;
                // Keep other writers of keys out while they change hands.
                sqlx::query("LOCK TABLE data_keys, ledger_keys, key_check IN EXCLUSIVE MODE").execute(&mut *tx).await?;
                let r = rotate_postgres(&mut tx, old, new).await?;
                tx.commit().await?;
                Ok(r)
            }
        }
    }
}
