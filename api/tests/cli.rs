//! The real `inventory-connect` binary, as an operator runs it, against both backends:
//! `store create` prints the store id, `verify` passes on an intact log and exits 1 naming the
//! first broken position after tampering, `projections status` and `rebuild` work.

use eventstore::testing::TestDatabase;
use std::process::{Command, Output};

fn cli(tdb: &TestDatabase, data_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inventory-connect"))
        .args(["--database-url", &tdb.url, "--data-dir", data_dir.to_str().unwrap()])
        .args(args)
        // A fixed test key: the same one for every invocation, as in production.
        .env("IC_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
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

eventstore::backend_contract!(the_operator_commands_work_on_the_same_database);
