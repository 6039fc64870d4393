//! The master-key check: a database remembers which master key it was initialised with (as an
//! HMAC check value, which reveals nothing about the key) and refuses any other. Without it, a
//! server started once with a mistyped `IC_MASTER_KEY` would wrap new customers' data keys under
//! the wrong key and fail on the old ones — data written that way is unreadable under either key.

use crate::crypto::MasterKey;
use crate::error::{Result, StoreError};
use crate::{Database, KeyRecord};
use chrono::Utc;
use sqlx::Row;

const LABEL: &str = "key-check-v1";

impl MasterKey {
    /// The value recorded to recognise this key later.
    pub fn check_value(&self) -> String {
        crate::crypto::hex(&self.derive(LABEL))
    }
}

/// What [`Database::check_master_key`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// The database had no check value; this key's was recorded now.
    Recorded,
    /// The key is the one the database was initialised with.
    Matches,
}

impl Database {
    /// The recorded check value, if the database was initialised. Reads only.
    pub async fn key_check_value(&self) -> Result<Option<String>> {
        let sql = "SELECT check_value FROM key_check WHERE singleton = 1";
        Ok(match self {
            Self::Sqlite(b) => sqlx::query_scalar(sql).fetch_optional(b.reader()).await?,
            Self::Postgres(b) => sqlx::query_scalar(sql).fetch_optional(b.pool()).await?,
        })
    }

    /// Refuses a master key other than the one this database was initialised with
    /// (`StoreError::WrongMasterKey`), before anything is written with it. The first call on a
    /// database records the key's check value; on a database that already holds data keys (made
    /// before check values existed) the key must first unwrap one of them.
    pub async fn check_master_key(&self, key: &MasterKey) -> Result<KeyCheck> {
        let expected = key.check_value();
        if let Some(found) = self.key_check_value().await? {
            return if constant_time_eq(found.as_bytes(), expected.as_bytes()) {
                Ok(KeyCheck::Matches)
            } else {
                Err(StoreError::WrongMasterKey)
            };
        }
        if let Some(record) = self.any_live_key().await? {
            key.unwrap_key(&record).map_err(|_| StoreError::WrongMasterKey)?;
        }
        let sql =
            "INSERT INTO key_check (singleton, check_value, created_at) VALUES (1, $1, $2) ON CONFLICT DO NOTHING";
        let now = Utc::now().timestamp_micros();
        match self {
            Self::Sqlite(b) => sqlx::query(sql).bind(&expected).bind(now).execute(b.writer()).await.map(|_| ())?,
            Self::Postgres(b) => sqlx::query(sql).bind(&expected).bind(now).execute(b.pool()).await.map(|_| ())?,
        }
        // Two first starts may race: whichever recorded first decides.
        match self.key_check_value().await? {
            Some(v) if constant_time_eq(v.as_bytes(), expected.as_bytes()) => Ok(KeyCheck::Recorded),
            _ => Err(StoreError::WrongMasterKey),
        }
    }

    /// Like [`Database::check_master_key`], but never records anything: for read-only commands.
    pub async fn verify_master_key(&self, key: &MasterKey) -> Result<()> {
        match self.key_check_value().await? {
            Some(found) if constant_time_eq(found.as_bytes(), key.check_value().as_bytes()) => Ok(()),
            Some(_) => Err(StoreError::WrongMasterKey),
            None => match self.any_live_key().await? {
                Some(record) => key.unwrap_key(&record).map(|_| ()).map_err(|_| StoreError::WrongMasterKey),
                None => Ok(()),
            },
        }
    }

    async fn any_live_key(&self) -> Result<Option<KeyRecord>> {
        let sql = "SELECT store_id, subject_id, key_class, key_id, wrapped_key, fingerprint FROM data_keys
                   WHERE wrapped_key IS NOT NULL LIMIT 1";
        macro_rules! record {
            ($row:expr) => {
                match $row {
                    None => None,
                    Some(r) => Some(KeyRecord {
                        store_id: r.try_get("store_id")?,
                        subject_id: r.try_get("subject_id")?,
                        class: crate::backend::parse_class(r.try_get("key_class")?)?,
                        key_id: r.try_get("key_id")?,
                        wrapped: r.try_get("wrapped_key")?,
                        fingerprint: r.try_get("fingerprint")?,
                        created_at: Utc::now(),
                        destroyed_at: None,
                    }),
                }
            };
        }
        Ok(match self {
            Self::Sqlite(b) => record!(sqlx::query(sql).fetch_optional(b.reader()).await?),
            Self::Postgres(b) => record!(sqlx::query(sql).fetch_optional(b.pool()).await?),
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
