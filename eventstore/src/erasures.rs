//! The erasure ledger: every erasure, recorded outside the database it erased from.
//!
//! A backup taken before an erasure still holds the subject's live keys (and read-model rows).
//! Restoring it must not bring the subject back, so each erasure is also written here — a file
//! of JSON lines, appended and flushed to disk before any key is destroyed — and at startup and
//! after `restore` every key an entry names is destroyed again before the server answers
//! (`commands::privacy::reapply_erasures`). Entries hold only pseudonymous ids, never personal
//! data. Keep the file on storage that is not restored with the database (the default is the
//! data directory, next to the master key).

use crate::{KeyRecord, Result, StoreError};
use chrono::{DateTime, Utc};
use domain::KeyClass;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// One erasure as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRecord {
    pub store_id: Uuid,
    /// `customer` or `staff`.
    pub subject_kind: String,
    pub subject_id: Uuid,
    pub request_id: Uuid,
    /// The key classes destroyed.
    pub classes: Vec<KeyClass>,
    /// The destroyed keys' ids (a restored copy holds them live again).
    pub key_ids: Vec<Uuid>,
    pub at: DateTime<Utc>,
}

/// The append-only file of erasures.
#[derive(Debug, Clone)]
pub struct ErasureLedger {
    path: PathBuf,
}

impl ErasureLedger {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and flushes it to disk before returning.
    pub async fn record(&self, record: &ErasureRecord) -> Result<()> {
        let path = self.path.clone();
        let mut line = serde_json::to_string(record).map_err(|e| StoreError::Invalid(e.to_string()))?;
        line.push('\n');
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            f.write_all(line.as_bytes())?;
            f.sync_all()
        })
        .await
        .map_err(|e| StoreError::Config(format!("erasure ledger: {e}")))?
        .map_err(|e| StoreError::Config(format!("cannot write the erasure ledger {}: {e}", self.path.display())))
    }

    /// Every entry, oldest first. A missing file is an empty ledger; a line that does not parse
    /// is an error naming the line (an erasure must never be skipped silently).
    pub async fn entries(&self) -> Result<Vec<ErasureRecord>> {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(StoreError::Config(format!("cannot read the erasure ledger {}: {e}", self.path.display())))
            }
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|_| {
                    StoreError::Config(format!(
                        "the erasure ledger {} has an unreadable entry at line {}",
                        self.path.display(),
                        i + 1
                    ))
                })
            })
            .collect()
    }
}

/// The keys of `records` that are live although an erasure destroyed them.
pub fn resurrected<'a>(records: &'a [KeyRecord], entry: &ErasureRecord) -> Vec<&'a KeyRecord> {
    records.iter().filter(|r| r.wrapped.is_some() && entry.classes.contains(&r.class)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u128) -> ErasureRecord {
        ErasureRecord {
            store_id: Uuid::from_u128(1),
            subject_kind: "customer".into(),
            subject_id: Uuid::from_u128(n),
            request_id: Uuid::from_u128(100 + n),
            classes: vec![KeyClass::Profile, KeyClass::ConsentEvidence],
            key_ids: vec![Uuid::from_u128(200 + n)],
            at: "2026-03-01T10:00:00Z".parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn entries_are_appended_and_read_back_in_order_and_a_damaged_line_is_an_error() {
        let path = std::env::temp_dir().join(format!("ic-erasures-{}", Uuid::new_v4().simple())).join("ledger.jsonl");
        let ledger = ErasureLedger::new(&path);
        assert!(ledger.entries().await.unwrap().is_empty(), "no file yet: no erasures");
        ledger.record(&entry(1)).await.unwrap();
        ledger.record(&entry(2)).await.unwrap();
        assert_eq!(ledger.entries().await.unwrap(), vec![entry(1), entry(2)]);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"store_id\": 5}\n").unwrap();
        let err = ledger.entries().await.unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
