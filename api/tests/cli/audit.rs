//! The auditor's commands as a process: `verify` against a saved head reports every kind of
//! tampering, and an offline bundle is checked with no database.

use super::*;

/// Two stores (two streams of two events each), sealed into a head saved as `head.txt`; returns the head's path.
fn sealed_log(tdb: &TestDatabase, dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (name, email) in [("Ledger One", "one@shop.test"), ("Ledger Two", "two@shop.test")] {
        let out = cli(
            tdb,
            dir,
            &["store", "create", "--name", name, "--owner-email", email, "--owner-password", "cli-password-1"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let head = dir.join("head.txt");
    let out = cli(tdb, dir, &["ledger", "seal", "--out", head.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    head
}

/// SQL that disables the immutability triggers, then runs `tamper`.
fn tampering(tdb: &TestDatabase, tamper: &str) -> String {
    let disable = if tdb.url.starts_with("postgres") {
        "ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete;"
    } else {
        "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;"
    };
    format!("{disable} {tamper}")
}

/// Swaps the log order of the events at positions `a` and `b` (all their content moves).
fn swap(tdb: &TestDatabase, a: i64, b: i64) -> String {
    let cols = "stream_id, version, event_id, store_id, event_type, schema_version, payload, metadata, recorded_at, prev_hash, hash";
    let pos = format!("CASE position WHEN {a} THEN {b} ELSE {a} END");
    if tdb.url.starts_with("postgres") {
        let tx = format!("CASE position WHEN {a} THEN (SELECT tx_id FROM sw WHERE position = {b}) ELSE (SELECT tx_id FROM sw WHERE position = {a}) END");
        format!("CREATE TEMP TABLE sw AS SELECT * FROM events WHERE position IN ({a}, {b}); DELETE FROM events WHERE position IN ({a}, {b});
                 INSERT INTO events (position, tx_id, {cols}) OVERRIDING SYSTEM VALUE SELECT {pos}, {tx}, {cols} FROM sw;")
    } else {
        format!("CREATE TEMP TABLE sw AS SELECT * FROM events WHERE position IN ({a}, {b}); DELETE FROM events WHERE position IN ({a}, {b});
                 INSERT INTO events (position, {cols}) SELECT {pos}, {cols} FROM sw;")
    }
}

pub(super) async fn verify_against_a_saved_head_reports_every_kind_of_tampering(tdb: &TestDatabase) {
    // An intact log verifies against its head.
    let dir = temp_dir();
    let head = sealed_log(tdb, &dir);
    let ok = cli(tdb, &dir, &["verify", "--trusted-head", head.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).contains("extends the trusted head of 4 events"), "{}", stdout(&ok));
    // Not a checkpoint, or no file: could not check.
    std::fs::write(dir.join("junk.txt"), "hello\n").unwrap();
    assert_eq!(
        cli(tdb, &dir, &["verify", "--trusted-head", dir.join("junk.txt").to_str().unwrap()]).status.code(),
        Some(2)
    );
    assert_eq!(cli(tdb, &dir, &["verify", "--trusted-head", "/nonexistent/head.txt"]).status.code(), Some(2));

    let positions = |db: &eventstore::Database| {
        let db = db.clone();
        async move {
            let events = db.backend().read_committed(eventstore::Position::START, 100).await.unwrap();
            events.iter().map(|e| e.position.seq).collect::<Vec<i64>>()
        }
    };
    type Case = (&'static str, fn(&TestDatabase, &[i64]) -> String, &'static str);
    let cases: [Case; 4] = [
        (
            "delete the newest event",
            |t, p| tampering(t, &format!("DELETE FROM events WHERE position = {};", p[3])),
            "deleted",
        ),
        // The newest event of the first store's stream: its chain alone cannot tell.
        (
            "delete an event in the middle",
            |t, p| tampering(t, &format!("DELETE FROM events WHERE position = {};", p[1])),
            "BROKEN",
        ),
        // The two stores' first events: different streams, so only the tree sees the new order.
        ("swap two events", |t, p| tampering(t, &swap(t, p[0], p[2])), "BROKEN"),
        (
            "change one byte",
            |t, _| tampering(t, "UPDATE events SET payload = replace(payload, 'Ledger Two', 'Ledger Twx');"),
            "BROKEN",
        ),
    ];
    for (what, tamper, says) in cases {
        let fresh = another(tdb).await;
        let dir = temp_dir();
        let head = sealed_log(&fresh, &dir);
        let db = eventstore::Database::connect(&fresh.url).await.unwrap();
        let p = positions(&db).await;
        assert_eq!(p.len(), 4);
        db.execute_raw(&tamper(&fresh, &p)).await.unwrap_or_else(|e| panic!("{what}: {e:?}"));
        // Against the saved head…
        let out = cli(&fresh, &dir, &["verify", "--trusted-head", head.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}{}", stdout(&out), stderr(&out));
        assert!(stdout(&out).contains(says), "{what}: {}", stdout(&out));
        // …and even without one (the stored tree remembers), plain verify fails too.
        let out = cli(&fresh, &dir, &["verify"]);
        assert_eq!(out.status.code(), Some(1), "{what} (plain verify): {}{}", stdout(&out), stderr(&out));
        let _ = std::fs::remove_dir_all(&dir);
    }

    // Deleting the newest events *and* the ledger's own rows is caught by the saved head only.
    let fresh = another(tdb).await;
    let dir = temp_dir();
    let head = sealed_log(&fresh, &dir);
    let db = eventstore::Database::connect(&fresh.url).await.unwrap();
    let p = positions(&db).await;
    db.execute_raw(&tampering(&fresh, &format!("DELETE FROM events WHERE position = {}; DELETE FROM ledger_heads; DELETE FROM ledger_nodes; DELETE FROM ledger_leaves;", p[3]))).await.unwrap();
    let out = cli(&fresh, &dir, &["verify", "--trusted-head", head.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("only 3"), "{}", stdout(&out));

    // A head re-signed by someone else's key (a forged root) fails its signature.
    let text = std::fs::read_to_string(&head).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let forged_root = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    lines[2] = forged_root;
    std::fs::write(dir.join("forged.txt"), lines.join("\n") + "\n").unwrap();
    let out = cli(&fresh, &dir, &["verify", "--trusted-head", dir.join("forged.txt").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("does not verify"), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

pub(super) async fn an_outside_auditor_checks_a_bundle_with_no_database(tdb: &TestDatabase) {
    let dir = temp_dir();
    let head = sealed_log(tdb, &dir);
    let bundle = dir.join("bundle");
    let out = cli(tdb, &dir, &["audit", "bundle", "--out", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // verify-bundle needs no database: point it at one that does not exist.
    let offline = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_inventory-connect"))
            .args(["--database-url", "sqlite:///nonexistent/dir/none.db", "audit", "verify-bundle"])
            .args(args)
            .env_remove("IC_MASTER_KEY")
            .output()
            .unwrap()
    };
    let b = bundle.to_str().unwrap();
    let ok = offline(&[b, "--trusted-head", head.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).contains("4 events"), "{}", stdout(&ok));
    assert_eq!(offline(&["/nonexistent/bundle"]).status.code(), Some(2));

    let events = std::fs::read_to_string(bundle.join("events.jsonl")).unwrap();
    // One changed byte in a stored payload.
    std::fs::write(bundle.join("events.jsonl"), events.replacen("Ledger One", "Ledger 0ne", 1)).unwrap();
    let out = offline(&[b]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("do not match its hash"), "{}", stdout(&out));
    // The newest event removed (bundle and heads edited to match): the saved head still knows.
    let kept: Vec<&str> = events.lines().take(3).collect();
    std::fs::write(bundle.join("events.jsonl"), kept.join("\n") + "\n").unwrap();
    std::fs::write(bundle.join("heads.jsonl"), "").unwrap();
    let out = offline(&[b, "--trusted-head", head.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("deleted"), "{}", stdout(&out));

    // The trail exports as JSON Lines.
    let store_id = {
        let db = eventstore::Database::connect(&tdb.url).await.unwrap();
        db.backend().read_committed(eventstore::Position::START, 1).await.unwrap()[0].store_id
    };
    let export = dir.join("trail.jsonl");
    let out = cli(tdb, &dir, &["audit", "export", "--store", &store_id.to_string(), "--out", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&export).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "the first store's two events");
    assert_eq!(lines[0]["eventType"], "StoreOpened");
    let _ = std::fs::remove_dir_all(&dir);
}
