//! The auditor's commands: `verify`, `ledger seal|key`, `audit bundle|verify-bundle|export`.

use super::*;

/// `verify [--trusted-head FILE] [--public-key K]`: chains, the Merkle tree, the trusted head.
pub(super) async fn verify(cli: &Cli, trusted_head: &Option<PathBuf>, public_key: &Option<String>) -> Result<i32> {
    // Read the trusted head first: a bad file is "could not check" (2), before any work.
    let trusted_text = match trusted_head {
        None => None,
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("error: cannot read the trusted head {}: {e}", path.display());
                return Ok(2);
            }
        },
    };
    let (db, store) = open_read_only(cli).await?;
    let report = store.verify().await?;
    if let Some(broken) = report.broken {
        println!("BROKEN at position {}: {broken}", broken.position());
        println!("({} events before it verified)", report.events);
        return Ok(1);
    }
    let ledger = eventstore::ledger::Ledger::new(&db, store.master_key());
    let trusted = match &trusted_text {
        None => None,
        Some(text) => {
            let key = match public_key {
                Some(k) => k.clone(),
                None => ledger.signer().await?.verifier_key(),
            };
            let verifier = match ledger::NoteVerifier::parse(&key) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(2);
                }
            };
            match verifier.verify_checkpoint(text) {
                Ok(cp) => Some(cp),
                Err(e @ (ledger::NoteError::BadSignature(_) | ledger::NoteError::NoSignature(_))) => {
                    println!("BROKEN: the trusted head does not verify: {e}");
                    return Ok(1);
                }
                Err(e) => {
                    eprintln!("error: the trusted head is not a signed checkpoint: {e}");
                    return Ok(2);
                }
            }
        }
    };
    match ledger.check(trusted.as_ref()).await? {
        Err(problem) => {
            println!("BROKEN: {problem}");
            Ok(1)
        }
        Ok(size) => {
            println!(
                "OK: verified {} events in {} streams; head {}; Merkle tree of {size} events{}",
                report.events,
                report.streams,
                report.head,
                match &trusted {
                    Some(t) => format!(" extends the trusted head of {} events", t.size),
                    None => String::new(),
                }
            );
            Ok(0)
        }
    }
}

/// `ledger seal|key`.
pub(super) async fn ledger(cli: &Cli, command: &LedgerCommand) -> Result<i32> {
    let (db, store) = open(cli).await?;
    let ledger = eventstore::ledger::Ledger::new(&db, store.master_key());
    match command {
        LedgerCommand::Key => println!("{}", ledger.signer().await?.verifier_key()),
        LedgerCommand::Seal { out } => {
            let head = ledger.seal_all(Duration::from_secs(30)).await?;
            match out {
                Some(path) => {
                    std::fs::write(path, &head.checkpoint)?;
                    eprintln!("sealed {} events; checkpoint written to {}", head.tree_size, path.display());
                }
                None => print!("{}", head.checkpoint),
            }
        }
    }
    Ok(0)
}

/// `audit verify-bundle`: no database, what an outside auditor runs.
pub(super) fn verify_bundle(dir: &Path, trusted_head: &Option<PathBuf>, public_key: &Option<String>) -> Result<i32> {
    // No database: this is what an outside auditor runs on their own machine.
    let trusted = match trusted_head {
        None => None,
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("error: cannot read the trusted head {}: {e}", p.display());
                return Ok(2);
            }
        },
    };
    match eventstore::bundle::verify_bundle(dir, trusted.as_deref(), public_key.as_deref()) {
        Ok(eventstore::bundle::BundleVerdict::Verified { events, heads }) => {
            println!(
                "OK: {events} events, every hash chain intact; {heads} signed heads verified{}",
                if trusted.is_some() { "; the log extends the trusted head" } else { "" }
            );
            Ok(0)
        }
        Ok(eventstore::bundle::BundleVerdict::Broken(what)) => {
            println!("BROKEN: {what}");
            Ok(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(2)
        }
    }
}

/// `audit bundle --out DIR`.
pub(super) async fn bundle(cli: &Cli, out: &Path) -> Result<i32> {
    let (db, store) = open(cli).await?;
    let ledger = eventstore::ledger::Ledger::new(&db, store.master_key());
    let (events, heads) = eventstore::bundle::write_bundle(&db, &ledger, out).await?;
    println!("wrote {events} events and {heads} signed heads to {}", out.display());
    Ok(0)
}

/// `audit export --store S [--from T] [--to T] --out FILE`.
pub(super) async fn export(
    cli: &Cli,
    store_id: &uuid::Uuid,
    from: &Option<chrono::DateTime<chrono::Utc>>,
    to: &Option<chrono::DateTime<chrono::Utc>>,
    out: &Path,
) -> Result<i32> {
    use std::io::Write;
    // Read-only and straight from the log (the same fold as the audit read model), so
    // the export is complete whether or not a server has projected everything.
    let (db, store) = open_read_only(cli).await?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut memos: std::collections::HashMap<String, projections::audit::Memo> = Default::default();
    let (mut after, mut n) = (Position::START, 0u64);
    loop {
        let page = db.backend().read_committed(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in store.open_batch(page).await? {
            if e.store_id != *store_id {
                continue;
            }
            let memo = memos.entry(e.stream_id.clone()).or_default();
            let (r, next) = projections::audit::entry(&e, memo);
            *memo = next;
            let at = e.recorded_at;
            if from.is_some_and(|f| at < f) || to.is_some_and(|t| at >= t) {
                continue;
            }
            let line = serde_json::json!({
                "eventId": r.event_id, "position": format!("{}.{}", r.commit_pos, r.seq_pos),
                "recordedAt": at,
                "actor": {"kind": r.actor_kind, "id": r.actor_id, "role": r.actor_role},
                "eventType": r.event_type, "summary": r.summary,
                "entity": {"type": r.entity_type, "id": r.entity_id, "label": r.entity_label},
                "streamId": r.stream_id, "streamVersion": r.stream_version, "reason": r.reason,
                "correlationId": r.correlation_id, "causationId": r.causation_id, "requestId": r.request_id,
                "changes": r.changes,
            });
            writeln!(file, "{line}")?;
            n += 1;
        }
    }
    file.flush()?;
    println!("wrote {n} audit entries to {}", out.display());
    Ok(0)
}
