//! The real `inventory-connect` binary, as an operator runs it, against both backends:
//! `store create` prints the store id, `verify` passes on an intact log and exits 1 naming the
//! first broken position after tampering, `projections status` and `rebuild` work.

use eventstore::testing::TestDatabase;
use std::process::{Command, Output};

#[path = "cli/audit.rs"]
mod audit;
#[path = "cli/privacy.rs"]
mod privacy;
#[path = "cli/server.rs"]
mod server;
use audit::{
    an_outside_auditor_checks_a_bundle_with_no_database, verify_against_a_saved_head_reports_every_kind_of_tampering,
};
use privacy::{
    a_backup_older_than_an_erasure_never_brings_the_subject_back,
    a_certificate_from_the_cli_is_the_api_document_and_verifies_offline,
    a_compliance_officer_proves_an_erasure_end_to_end,
};
use server::sigterm_lets_the_request_in_flight_finish_and_exits_0;

/// A fixed test key: the same one for every invocation, as in production.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OTHER_KEY: &str = "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

fn cli(tdb: &TestDatabase, data_dir: &std::path::Path, args: &[&str]) -> Output {
    cli_with_key(tdb, data_dir, Some(KEY), args)
}

fn cli_with_key(tdb: &TestDatabase, data_dir: &std::path::Path, key: Option<&str>, args: &[&str]) -> Output {
    cli_at(&tdb.url, data_dir, key, args)
}

fn cli_at(url: &str, data_dir: &std::path::Path, key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inventory-connect"));
    cmd.args(["--database-url", url, "--data-dir", data_dir.to_str().unwrap()]).args(args).env("RUST_LOG", "warn");
    match key {
        Some(k) => cmd.env("IC_MASTER_KEY", k),
        None => cmd.env_remove("IC_MASTER_KEY"),
    };
    cmd.output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ic-cli-{}", uuid::Uuid::new_v4().simple()))
}

/// Counts rows of the log and the key store, to prove a refused command wrote nothing.
async fn rows(tdb: &TestDatabase) -> (i64, i64, i64) {
    let db = eventstore::Database::connect(&tdb.url).await.unwrap();
    let count = |table: &'static str| {
        let db = db.clone();
        async move {
            match &db {
                eventstore::Database::Sqlite(b) => {
                    sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(b.reader()).await
                }
                eventstore::Database::Postgres(b) => {
                    sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(b.pool()).await
                }
            }
            .unwrap()
        }
    };
    (count("events").await, count("data_keys").await, count("credentials").await)
}

async fn a_different_master_key_is_refused_before_anything_is_written(tdb: &TestDatabase) {
    let dir = temp_dir();
    let created = cli(
        tdb,
        &dir,
        &[
            "store",
            "create",
            "--name",
            "Key Shop",
            "--owner-email",
            "key@shop.test",
            "--owner-password",
            "cli-password-1",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let before = rows(tdb).await;
    for args in [
        &["verify"][..],
        &["projections", "status"],
        &[
            "store",
            "create",
            "--name",
            "Second",
            "--owner-email",
            "two@shop.test",
            "--owner-password",
            "cli-password-2",
        ],
        &["serve", "--listen", "127.0.0.1:0"],
    ] {
        let out = cli_with_key(tdb, &dir, Some(OTHER_KEY), args);
        assert_eq!(out.status.code(), Some(2), "{args:?} must refuse: {}", stderr(&out));
        assert!(stderr(&out).contains("master key does not match"), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(rows(tdb).await, before, "nothing was written under the wrong key");
    // Without any key, an initialised database is refused and no key file is generated.
    let out = cli_with_key(tdb, &dir, None, &["verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("IC_MASTER_KEY"), "{}", stderr(&out));
    assert!(!dir.join("master.key").exists(), "no key file is invented for an initialised database");
    // The right key still works.
    assert!(cli(tdb, &dir, &["verify"]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

async fn a_locked_out_owner_gets_a_reset_token_from_the_cli(tdb: &TestDatabase) {
    let dir = temp_dir();
    let created = cli(
        tdb,
        &dir,
        &[
            "store",
            "create",
            "--name",
            "Reset Shop",
            "--owner-email",
            "boss@shop.test",
            "--owner-password",
            "cli-password-1",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let out = cli(tdb, &dir, &["staff", "reset-password", "--email", "nobody@shop.test"]);
    assert_eq!(out.status.code(), Some(2), "an unknown email is a clear error");
    let out = cli(tdb, &dir, &["staff", "reset-password", "--email", "boss@shop.test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    assert!(token.starts_with("icr_"), "prints only the token: {token:?}");
    // The token sets a new password, once.
    let db = eventstore::Database::connect(&tdb.url).await.unwrap();
    let key = eventstore::MasterKey::from_base64(KEY).unwrap();
    let store = eventstore::EventStore::new(&db, key, eventstore::Upcasters::default());
    let accounts = eventstore::Accounts::new(&db);
    commands::staff::reset_password(&store, &accounts, &token, "Fresh-Start-Harbor-2027", "test").await.unwrap();
    assert!(commands::staff::reset_password(&store, &accounts, &token, "Fresh-Start-Harbor-2028", "test")
        .await
        .is_err());
    let (_, hash) = {
        let read = projections::ReadDb::new(&db);
        projections::catch_up_all(&read, &store).await.unwrap();
        let member = read.staff_by_email("boss@shop.test").await.unwrap().remove(0);
        accounts.credential(member.user_id).await.unwrap().unwrap()
    };
    assert!(commands::password::verify("Fresh-Start-Harbor-2027", &hash));
    let _ = std::fs::remove_dir_all(&dir);
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn the_operator_commands_work_on_the_same_database(tdb: &TestDatabase) {
    let dir = std::env::temp_dir().join(format!("ic-cli-{}", uuid::Uuid::new_v4().simple()));
    let created = cli(
        tdb,
        &dir,
        &[
            "store",
            "create",
            "--name",
            "CLI Watches",
            "--owner-email",
            "cli@shop.test",
            "--owner-password",
            "cli-password-1",
        ],
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let store_id = stdout(&created).trim().to_owned();
    assert!(uuid::Uuid::parse_str(&store_id).is_ok(), "prints the store id: {store_id:?}");
    let bad = cli(
        tdb,
        &dir,
        &["store", "create", "--name", "X", "--owner-email", "not-an-email", "--owner-password", "cli-password-1"],
    );
    assert_eq!(bad.status.code(), Some(2), "invalid input is a clear error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("email"));

    let verified = cli(tdb, &dir, &["verify"]);
    assert!(verified.status.success());
    assert!(stdout(&verified).starts_with("OK: verified 2 events"), "{}", stdout(&verified));

    let status = cli(tdb, &dir, &["projections", "status"]);
    assert!(status.status.success());
    for name in ["directory", "inventory", "customers", "sales"] {
        assert!(stdout(&status).contains(name), "{}", stdout(&status));
    }
    let rebuilt = cli(tdb, &dir, &["projections", "rebuild", "directory"]);
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    assert_eq!(cli(tdb, &dir, &["projections", "rebuild", "nope"]).status.code(), Some(2));

    // Tamper with the stored store event: verify names it and exits 1.
    let db = eventstore::Database::connect(&tdb.url).await.unwrap();
    let disable = match db {
        eventstore::Database::Sqlite(_) => "DROP TRIGGER events_no_update",
        eventstore::Database::Postgres(_) => "ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete",
    };
    db.execute_raw(disable).await.unwrap();
    db.execute_raw("UPDATE events SET payload = replace(payload, 'CLI Watches', 'CLI Watchez')").await.unwrap();
    let broken = cli(tdb, &dir, &["verify"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(stdout(&broken).starts_with("BROKEN at position"), "{}", stdout(&broken));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh database of the same backend as `tdb`.
async fn another(tdb: &TestDatabase) -> TestDatabase {
    if tdb.url.starts_with("postgres") {
        TestDatabase::postgres().await.expect("PostgreSQL is there: this test runs on it")
    } else {
        TestDatabase::sqlite()
    }
}

async fn logs_are_plain_text_off_a_terminal_or_json_on_request(tdb: &TestDatabase) {
    let dir = temp_dir();
    let run = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_inventory-connect"))
            .args([
                "--database-url",
                &tdb.url,
                "--data-dir",
                dir.to_str().unwrap(),
                "--log-format",
                format,
                "ledger",
                "key",
            ])
            .env("IC_MASTER_KEY", KEY)
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    };
    // The first command that may write migrates a fresh database and logs each migration.
    let pretty = stderr(&run("pretty"));
    assert!(pretty.contains("migration"), "{pretty}");
    assert!(!pretty.contains('\u{1b}'), "no colour codes when stderr is not a terminal");
    let db2 = another(tdb).await;
    let json_out = Command::new(env!("CARGO_BIN_EXE_inventory-connect"))
        .args([
            "--database-url",
            &db2.url,
            "--data-dir",
            dir.to_str().unwrap(),
            "--log-format",
            "json",
            "ledger",
            "key",
        ])
        .env("IC_MASTER_KEY", KEY)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let lines: Vec<String> = stderr(&json_out).lines().filter(|l| l.starts_with('{')).map(str::to_owned).collect();
    assert!(!lines.is_empty(), "{}", stderr(&json_out));
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
    assert_eq!(
        cli(tdb, &dir, &["--log-format", "xml", "verify"]).status.code(),
        Some(2),
        "a bad format is a usage error"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn read_only_commands_never_create_or_change_a_database(tdb: &TestDatabase) {
    let dir = temp_dir();
    // A mistyped SQLite path: an error, and no file appears.
    let missing = dir.join("typo.db");
    let out = Command::new(env!("CARGO_BIN_EXE_inventory-connect"))
        .args([
            "--database-url",
            &format!("sqlite://{}", missing.display()),
            "--data-dir",
            dir.to_str().unwrap(),
            "verify",
        ])
        .env_remove("IC_MASTER_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no InventoryConnect database"), "{}", stderr(&out));
    assert!(!missing.exists(), "verify created a database");
    assert!(!dir.join("master.key").exists(), "verify wrote a key file");
    // An empty PostgreSQL database (or SQLite file that is not ours): refused, not migrated.
    let empty = another(tdb).await;
    if empty.url.starts_with("postgres") {
        for args in [&["verify"][..], &["projections", "status"]] {
            let out = cli(&empty, &dir, args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        }
        let pool = sqlx::PgPool::connect(&empty.url).await.unwrap();
        let tables: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(tables, 0, "nothing was migrated");
        pool.close().await;
    }
    // On an initialised database, read-only commands work and write nothing.
    let created = cli(
        tdb,
        &dir,
        &[
            "store",
            "create",
            "--name",
            "RO Shop",
            "--owner-email",
            "ro@shop.test",
            "--owner-password",
            "cli-password-1",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let before = rows(tdb).await;
    assert!(cli(tdb, &dir, &["verify"]).status.success());
    assert!(cli(tdb, &dir, &["projections", "status"]).status.success());
    assert_eq!(rows(tdb).await, before);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn a_changed_migration_or_a_newer_database_refuses_to_run(tdb: &TestDatabase) {
    let dir = temp_dir();
    let created = cli(
        tdb,
        &dir,
        &[
            "store",
            "create",
            "--name",
            "Mig Shop",
            "--owner-email",
            "mig@shop.test",
            "--owner-password",
            "cli-password-1",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let db = eventstore::Database::connect(&tdb.url).await.unwrap();
    db.execute_raw("UPDATE schema_migrations SET checksum = 'not-what-was-applied' WHERE version = 3").await.unwrap();
    for args in [&["verify"][..], &["serve", "--listen", "127.0.0.1:0"], &["ledger", "key"]] {
        let out = cli(tdb, &dir, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("was changed after it was applied"), "{args:?}: {}", stderr(&out));
    }
    // Put it back: the checksum is the file's again, and everything runs.
    db.execute_raw("UPDATE schema_migrations SET checksum = NULL WHERE version = 3").await.unwrap();
    assert!(cli(tdb, &dir, &["ledger", "key"]).status.success(), "a missing checksum is recorded, not refused");
    db.execute_raw(
        "INSERT INTO schema_migrations (version, name, applied_at, checksum) VALUES (999, '0999_future.sql', 0, 'x')",
    )
    .await
    .unwrap();
    let out = cli(tdb, &dir, &["ledger", "key"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("newer version"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

async fn rotating_the_master_key_keeps_every_secret_readable_under_the_new_key_only(tdb: &TestDatabase) {
    let dir = temp_dir();
    let created = cli(
        tdb,
        &dir,
        &[
            "store",
            "create",
            "--name",
            "Key Rotation",
            "--owner-email",
            "rot@shop.test",
            "--owner-password",
            "cli-password-1",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let key_before = stdout(&cli(tdb, &dir, &["ledger", "key"]));
    let head = sealed_head(tdb, &dir);
    // Without the new key: a clear usage error.
    assert_eq!(cli(tdb, &dir, &["keys", "rotate-master"]).status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_inventory-connect"))
        .args(["--database-url", &tdb.url, "--data-dir", dir.to_str().unwrap(), "keys", "rotate-master"])
        .env("IC_MASTER_KEY", KEY)
        .env("IC_NEW_MASTER_KEY", OTHER_KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Re-wrapped 1 data keys and 1 ledger key(s)"), "{}", stdout(&out));
    // The old key is refused now; the new one opens everything.
    assert_eq!(cli_with_key(tdb, &dir, Some(KEY), &["verify"]).status.code(), Some(2));
    let verified = cli_with_key(tdb, &dir, Some(OTHER_KEY), &["verify", "--trusted-head", head.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(0), "{}{}", stdout(&verified), stderr(&verified));
    assert_eq!(
        stdout(&cli_with_key(tdb, &dir, Some(OTHER_KEY), &["ledger", "key"])),
        key_before,
        "the same signing key"
    );
    // Personal data written before the rotation decrypts under the new key.
    let db = eventstore::Database::connect(&tdb.url).await.unwrap();
    let store = eventstore::EventStore::new(
        &db,
        eventstore::MasterKey::from_base64(OTHER_KEY).unwrap(),
        eventstore::Upcasters::default(),
    );
    let all = store.read_all(eventstore::Position::START, 100).await.unwrap();
    let joined = all.iter().find(|e| e.event_type == "StaffJoined").unwrap();
    assert_eq!(joined.payload["email"]["$pii"]["value"], "rot@shop.test", "{}", joined.payload);
    assert!(all.iter().any(|e| e.event_type == "MasterKeyRotated"), "the rotation is recorded");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn a_backup_restores_into_an_empty_target_and_verifies(tdb: &TestDatabase) {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let created = cli(
        tdb,
        &dir,
        &[
            "store",
            "create",
            "--name",
            "Backup Shop",
            "--owner-email",
            "bk@shop.test",
            "--owner-password",
            "cli-password-1",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let head = sealed_head(tdb, &dir);
    let file = dir.join("backup.bin");
    let out = cli(tdb, &dir, &["backup", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cli(tdb, &dir, &["backup", "--out", file.to_str().unwrap()]).status.code(), Some(2), "never overwrites");
    // Into an empty target of the same backend.
    let target = if tdb.url.starts_with("postgres") {
        let t = another(tdb).await;
        let url = t.url.clone();
        std::mem::forget(t); // dropped below, after use
        url
    } else {
        format!("sqlite://{}", dir.join("restored.db").display())
    };
    let out = cli_at(&target, &dir, Some(KEY), &["restore", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("restored and verified 2 events"), "{}", stdout(&out));
    let out = cli_at(&target, &dir, Some(KEY), &["verify", "--trusted-head", head.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "the restored log extends the head saved before: {}", stdout(&out));
    // Not into a target that holds data.
    let out = cli_at(&target, &dir, Some(KEY), &["restore", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    if target.starts_with("postgres") {
        let admin = eventstore::testing::postgres_admin_url();
        let name = target.rsplit('/').next().unwrap().to_owned();
        let pool = sqlx::PgPool::connect(&admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&pool).await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Seals and saves a head as `head.txt` in `dir`.
fn sealed_head(tdb: &TestDatabase, dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let head = dir.join("head.txt");
    let out = cli(tdb, dir, &["ledger", "seal", "--out", head.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    head
}

eventstore::backend_contract!(
    the_operator_commands_work_on_the_same_database,
    a_different_master_key_is_refused_before_anything_is_written,
    a_locked_out_owner_gets_a_reset_token_from_the_cli,
    sigterm_lets_the_request_in_flight_finish_and_exits_0,
    verify_against_a_saved_head_reports_every_kind_of_tampering,
    an_outside_auditor_checks_a_bundle_with_no_database,
    logs_are_plain_text_off_a_terminal_or_json_on_request,
    read_only_commands_never_create_or_change_a_database,
    a_changed_migration_or_a_newer_database_refuses_to_run,
    rotating_the_master_key_keeps_every_secret_readable_under_the_new_key_only,
    a_backup_restores_into_an_empty_target_and_verifies,
    a_backup_older_than_an_erasure_never_brings_the_subject_back,
    a_certificate_from_the_cli_is_the_api_document_and_verifies_offline,
    a_compliance_officer_proves_an_erasure_end_to_end,
);

#[tokio::test]
async fn the_binary_reaches_postgres_over_tls() {
    let Some(tdb) = TestDatabase::postgres().await else { return };
    let dir = temp_dir();
    let tls = format!("{}?sslmode=require", tdb.url);
    let out = cli_at(
        &tls,
        &dir,
        Some(KEY),
        &[
            "store",
            "create",
            "--name",
            "TLS Shop",
            "--owner-email",
            "tls@shop.test",
            "--owner-password",
            "cli-password-1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli_at(&tls, &dir, Some(KEY), &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
