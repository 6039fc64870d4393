//! The operator's maintenance commands: backups, restores, master-key rotation, and a reset
//! token for a locked-out owner.

use super::*;

/// `backup --out FILE`.
pub(super) async fn backup(cli: &Cli, out: &Path) -> Result<i32> {
    if out.exists() {
        eprintln!("error: {} exists; a backup never overwrites a file", out.display());
        return Ok(2);
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
        eprintln!("error: no directory {} for the backup", dir.display());
        return Ok(2);
    }
    let (db, _) = open_read_only(cli).await?;
    match &db {
        Database::Sqlite(_) => {
            // VACUUM INTO: a transactionally consistent copy while the server runs.
            let path = out.to_str().ok_or("the backup path is not UTF-8")?.replace('\'', "''");
            db.execute_raw(&format!("VACUUM INTO '{path}'")).await?;
        }
        Database::Postgres(_) => {
            let url = cli.database_url.clone().unwrap_or_default();
            let status = std::process::Command::new("pg_dump")
                .args(["--format=custom", "--no-owner", "--file"])
                .arg(out)
                .arg(url)
                .status();
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => return Err(format!("pg_dump failed ({s})").into()),
                Err(e) => return Err(format!("pg_dump is needed for PostgreSQL backups: {e}").into()),
            }
        }
    }
    println!("backup written to {}", out.display());
    Ok(0)
}

/// `restore FILE`: into an empty target only, verified before success.
pub(super) async fn restore(cli: &Cli, file: &Path) -> Result<i32> {
    if !file.exists() {
        eprintln!("error: no backup at {}", file.display());
        return Ok(2);
    }
    let url = match &cli.database_url {
        Some(u) => u.clone(),
        None => format!("sqlite://{}", cli.data_dir.join("inventory-connect.db").display()),
    };
    if url.starts_with("sqlite:") {
        let target = PathBuf::from(url.trim_start_matches("sqlite://").trim_start_matches("sqlite:"));
        if target.exists() {
            eprintln!("error: {} exists; restore only into an empty target", target.display());
            return Ok(2);
        }
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::copy(file, &target)?;
    } else {
        // The target database must exist and be empty.
        let db = Database::connect_raw(&url).await?;
        if db.has_tables().await? {
            eprintln!("error: the target database is not empty; restore only into an empty one");
            return Ok(2);
        }
        let status = std::process::Command::new("pg_restore")
            .args(["--no-owner", "--exit-on-error", "--dbname"])
            .arg(&url)
            .arg(file)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(format!("pg_restore failed ({s})").into()),
            Err(e) => return Err(format!("pg_restore is needed for PostgreSQL restores: {e}").into()),
        }
    }
    let (db, store) = open_read_only(cli).await?;
    let report = store.verify().await?;
    if let Some(broken) = report.broken {
        println!("BROKEN: the restored log fails verification at position {}: {broken}", broken.position());
        return Ok(1);
    }
    let ledger = eventstore::ledger::Ledger::new(&db, store.master_key());
    if let Err(problem) = ledger.check(None).await? {
        println!("BROKEN: {problem}");
        return Ok(1);
    }
    // A backup older than an erasure holds the subject's keys and rows again: destroy and purge
    // them before anyone reads the restored copy.
    let ledger = eventstore::erasures::ErasureLedger::new(cli.erasure_ledger_path());
    let reapplied = commands::privacy::reapply_erasures(&store, &eventstore::Accounts::new(&db), &ledger).await?;
    if reapplied > 0 {
        let read = projections::ReadDb::new(&db);
        projections::catch_up_all(&read, &store).await?;
        db.scrub(&crate::app::erasure_tables()).await?;
    }
    println!(
        "restored and verified {} events in {} streams; {reapplied} erasure(s) re-applied from {}",
        report.events,
        report.streams,
        ledger.path().display()
    );
    Ok(0)
}

/// `keys rotate-master`.
pub(super) async fn rotate_master(cli: &Cli) -> Result<i32> {
    let Ok(new_b64) = std::env::var("IC_NEW_MASTER_KEY") else {
        eprintln!("error: set IC_NEW_MASTER_KEY to the new master key (base64, 32 bytes); it is never a flag, so it stays out of process lists");
        return Ok(2);
    };
    let new = MasterKey::from_base64(&new_b64)?;
    let (db, store) = open(cli).await?;
    let rotation = db.rotate_master_key(store.master_key(), &new).await?;
    // The record: what was re-wrapped and which key check is now in force (a prefix of
    // an HMAC of the key, which reveals nothing of it).
    let event = eventstore::NewEvent {
        event_id: uuid::Uuid::now_v7(),
        store_id: uuid::Uuid::nil(),
        event_type: "MasterKeyRotated".into(),
        schema_version: 1,
        payload: serde_json::json!({
            "data_keys": rotation.data_keys, "ledger_keys": rotation.ledger_keys,
            "key_check": &new.check_value()[..16],
        }),
        metadata: eventstore::Metadata::system("cli"),
        data_subject: None,
    };
    let rotated = EventStore::new(&db, new.clone(), Upcasters::default());
    rotated.append("system-keys", eventstore::ExpectedVersion::Any, vec![event]).await?;
    if std::env::var("IC_MASTER_KEY").is_err() {
        // The local key file follows the database.
        std::fs::write(cli.data_dir.join("master.key"), new.to_base64())?;
    }
    println!(
        "Re-wrapped {} data keys and {} ledger key(s) under the new master key. Start every server and command with IC_MASTER_KEY set to it.",
        rotation.data_keys, rotation.ledger_keys
    );
    Ok(0)
}

/// `staff reset-password --email E [--store S]`.
pub(super) async fn reset_password(cli: &Cli, email: &str, store_filter: &Option<uuid::Uuid>) -> Result<i32> {
    let (db, store) = open(cli).await?;
    let read = ReadDb::new(&db);
    projections::catch_up_all(&read, &store).await?;
    let members: Vec<_> = read
        .staff_by_email(email)
        .await?
        .into_iter()
        .filter(|m| store_filter.is_none_or(|s| s == m.store_id))
        .collect();
    let member = match members.as_slice() {
        [] => {
            eprintln!(
                "error: no staff member with that email{}",
                if store_filter.is_some() { " in that store" } else { "" }
            );
            return Ok(2);
        }
        [one] => one.clone(),
        several => {
            eprintln!("error: that email is staff of several stores; choose one with --store:");
            for m in several {
                eprintln!("  {}", m.store_id);
            }
            return Ok(2);
        }
    };
    let accounts = eventstore::Accounts::new(&db);
    let ctx = commands::CommandContext::system(domain::StoreId::from_uuid(member.store_id), "cli");
    let by = domain::store::RosterActor::System;
    let user = domain::UserId::from_uuid(member.user_id);
    match commands::staff::issue_password_reset(&store, &accounts, &ctx, by, user).await {
        Ok((token, expires_at, _)) => {
            println!("{token}");
            eprintln!(
                "One-time reset token for staff member {} (valid until {expires_at}). The member sets a new \
                 password with the resetPassword mutation.",
                member.user_id
            );
            Ok(0)
        }
        Err(commands::CommandError::Rejected(e)) => {
            eprintln!("error: {e}");
            Ok(2)
        }
        Err(e) => Err(e.into()),
    }
}

/// `retention run [--as-of T]`: the job once, in this process (projections caught up first).
pub(super) async fn retention(cli: &Cli, as_of: Option<chrono::DateTime<chrono::Utc>>) -> Result<i32> {
    let (db, store) = open(cli).await?;
    let (_stop, shutdown) = watch::channel(false);
    let settings = app::Settings { erasure_ledger: Some(cli.erasure_ledger_path()), ..app::Settings::default() };
    let state = app::AppState::start_with(db, store, shutdown, settings).await?;
    let Some(runs) = crate::retention::run_all(&state, as_of.unwrap_or_else(chrono::Utc::now)).await? else {
        eprintln!("error: another server is running the retention job; try again later");
        return Ok(2);
    };
    for run in runs {
        let domain::retention::RetentionEvent::RetentionRun {
            store_id,
            legal_hold_destroyed,
            audit_entries_removed,
            profiles_shredded,
            ..
        } = run;
        println!(
            "store {store_id}: {} legal-hold key(s) destroyed, {audit_entries_removed} audit entr(y/ies) removed, {} customer profile(s) shredded",
            legal_hold_destroyed.len(),
            profiles_shredded.len()
        );
    }
    Ok(0)
}
