//! Audit bundles: everything an outside auditor needs to check the log on their own machine,
//! with no database — every event exactly as stored (ciphertext included), the signed tree
//! heads, and the ledger's verifier key. [`verify_bundle`] re-checks every stream's hash chain,
//! recomputes the Merkle tree, checks every head's signature and root, and (given one) that the
//! log extends a head the auditor saved earlier.

use crate::chain::ChainVerifier;
use crate::error::{Result, StoreError};
use crate::ledger::Ledger;
use crate::types::{Position, StoredEvent};
use crate::Database;
use chrono::DateTime;
use ledger::tree;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;
use uuid::Uuid;

#[derive(Debug, Serialize, Deserialize)]
struct EventLine {
    position: String,
    stream_id: String,
    version: u64,
    event_id: Uuid,
    store_id: Uuid,
    event_type: String,
    schema_version: u32,
    payload: String,
    metadata: String,
    /// Microseconds since the Unix epoch, as hashed.
    recorded_at: i64,
    prev_hash: String,
    hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct HeadLine {
    tree_size: u64,
    root_hash: String,
    timestamp: String,
    checkpoint: String,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// Writes `events.jsonl`, `heads.jsonl` and `ledger-key.txt` into `dir` (created if missing).
/// Seals first, so the newest head covers the events written. Returns (events, heads).
pub async fn write_bundle(db: &Database, ledger: &Ledger, dir: &Path) -> Result<(u64, u64)> {
    let io = |e: std::io::Error| StoreError::Config(format!("cannot write the bundle: {e}"));
    std::fs::create_dir_all(dir).map_err(io)?;
    ledger.seal_all(std::time::Duration::from_secs(30)).await?;
    let mut events = std::io::BufWriter::new(std::fs::File::create(dir.join("events.jsonl")).map_err(io)?);
    let mut after = Position::START;
    let mut n = 0u64;
    loop {
        let page = db.backend().read_committed(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in page {
            let line = EventLine {
                position: e.position.to_string(),
                stream_id: e.stream_id,
                version: e.version,
                event_id: e.event_id,
                store_id: e.store_id,
                event_type: e.event_type,
                schema_version: e.schema_version,
                payload: e.payload,
                metadata: e.metadata,
                recorded_at: e.recorded_at.timestamp_micros(),
                prev_hash: ledger::hex(&e.prev_hash),
                hash: ledger::hex(&e.hash),
            };
            serde_json::to_writer(&mut events, &line).map_err(|e| StoreError::Config(e.to_string()))?;
            events.write_all(b"\n").map_err(io)?;
            n += 1;
        }
    }
    events.flush().map_err(io)?;
    let mut heads = std::io::BufWriter::new(std::fs::File::create(dir.join("heads.jsonl")).map_err(io)?);
    let mut h = 0u64;
    let mut before = None;
    loop {
        let page = ledger.heads(before, 1000).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.tree_size);
        for head in page {
            let line = HeadLine {
                tree_size: head.tree_size,
                root_hash: ledger::hex(&head.root_hash),
                timestamp: head.sealed_at.to_rfc3339(),
                checkpoint: head.checkpoint,
            };
            serde_json::to_writer(&mut heads, &line).map_err(|e| StoreError::Config(e.to_string()))?;
            heads.write_all(b"\n").map_err(io)?;
            h += 1;
        }
        if before == Some(0) {
            break;
        }
    }
    heads.flush().map_err(io)?;
    std::fs::write(dir.join("ledger-key.txt"), format!("{}\n", ledger.signer().await?.verifier_key())).map_err(io)?;
    Ok((n, h))
}

/// What a bundle check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleVerdict {
    /// Every check passed: (events, heads checked).
    Verified { events: u64, heads: u64 },
    /// Tampering or forgery: what and where.
    Broken(String),
}

/// Why the bundle's events are not an extension of the head `cp` (`None` when they are).
fn not_extended(cp: &ledger::Checkpoint, leaves: &[tree::Hash], head: &str) -> Option<String> {
    if cp.size > leaves.len() as u64 {
        return Some(format!(
            "{head} covers {} events but the bundle has only {}: events were deleted",
            cp.size,
            leaves.len()
        ));
    }
    (tree::root(&leaves[..cp.size as usize]) != cp.root).then(|| {
        format!(
            "the log is not an extension of {head} of {} events: events were changed, removed or reordered",
            cp.size
        )
    })
}

/// Checks a bundle offline. `Err` means it could not be checked (missing or unreadable files).
pub fn verify_bundle(
    dir: &Path,
    trusted_head: Option<&str>,
    public_key: Option<&str>,
) -> std::result::Result<BundleVerdict, String> {
    let open = |name: &str| std::fs::File::open(dir.join(name)).map_err(|e| format!("cannot read {name}: {e}"));
    let key = match public_key {
        Some(k) => k.to_owned(),
        None => std::fs::read_to_string(dir.join("ledger-key.txt"))
            .map_err(|e| format!("cannot read ledger-key.txt: {e}"))?,
    };
    let verifier = ledger::NoteVerifier::parse(key.trim()).map_err(|e| e.to_string())?;
    let mut chains = ChainVerifier::default();
    let mut leaves = Vec::new();
    for (i, line) in std::io::BufReader::new(open("events.jsonl")?).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        let e: EventLine =
            serde_json::from_str(&line).map_err(|_| format!("events.jsonl line {} is not an event", i + 1))?;
        let position: Position =
            e.position.parse().map_err(|_| format!("events.jsonl line {}: bad position", i + 1))?;
        let (Some(prev_hash), Some(hash)) = (unhex(&e.prev_hash), unhex(&e.hash)) else {
            return Err(format!("events.jsonl line {}: bad hash", i + 1));
        };
        let stored = StoredEvent {
            position,
            stream_id: e.stream_id,
            version: e.version,
            event_id: e.event_id,
            store_id: e.store_id,
            event_type: e.event_type,
            schema_version: e.schema_version,
            payload: e.payload,
            metadata: e.metadata,
            recorded_at: DateTime::from_timestamp_micros(e.recorded_at).unwrap_or_default(),
            prev_hash,
            hash,
        };
        if let Err(broken) = chains.check(&stored) {
            return Ok(BundleVerdict::Broken(broken.to_string()));
        }
        leaves.push(tree::leaf_hash(&stored.hash));
    }
    let mut heads = 0u64;
    for (i, line) in std::io::BufReader::new(open("heads.jsonl")?).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        let h: HeadLine =
            serde_json::from_str(&line).map_err(|_| format!("heads.jsonl line {} is not a head", i + 1))?;
        let cp = match verifier.verify_checkpoint(&h.checkpoint) {
            Ok(cp) => cp,
            Err(e) => return Ok(BundleVerdict::Broken(format!("head of {} events: {e}", h.tree_size))),
        };
        if let Some(problem) = not_extended(&cp, &leaves, "a signed head") {
            return Ok(BundleVerdict::Broken(problem));
        }
        heads += 1;
    }
    if let Some(text) = trusted_head {
        let cp = match verifier.verify_checkpoint(text) {
            Ok(cp) => cp,
            Err(e) => return Ok(BundleVerdict::Broken(format!("the trusted head does not verify: {e}"))),
        };
        if let Some(problem) = not_extended(&cp, &leaves, "the trusted head") {
            return Ok(BundleVerdict::Broken(problem));
        }
    }
    Ok(BundleVerdict::Verified { events: leaves.len() as u64, heads })
}
