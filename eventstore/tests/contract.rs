//! The event-store contract, run against both backends: every test below exists once and is
//! instantiated for SQLite (`sqlite::…`) and PostgreSQL (`postgres::…`).

use domain::pii::Pii;
use domain::KeyClass;
use eventstore::backend::StreamBatch;
use eventstore::testing::TestDatabase;
use eventstore::{
    Database, EventStore, ExpectedVersion, MasterKey, Metadata, NewEvent, Position, StoreError, Upcaster, Upcasters,
};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

const STORE: Uuid = Uuid::from_u128(0x5703e);

async fn open(tdb: &TestDatabase) -> (Database, EventStore) {
    let db = Database::connect(&tdb.url).await.expect("connect");
    let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
    (db, store)
}

fn event(event_type: &str, payload: Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        store_id: STORE,
        event_type: event_type.into(),
        schema_version: 1,
        payload,
        metadata: Metadata::system("test"),
        data_subject: None,
    }
}

fn personal(subject: Uuid, name: &str, email: &str, phone: &str) -> NewEvent {
    NewEvent {
        data_subject: Some(subject),
        ..event(
            "CustomerRegistered",
            json!({
                "customer_id": subject,
                "name": Pii::profile(name.to_owned()),
                "email": Pii::profile(email.to_owned()),
                "phone": Pii::profile(phone.to_owned()),
                "tags": ["vip"],
            }),
        )
    }
}

/// Tailing reads on PostgreSQL wait for every older transaction in the cluster (other tests'
/// `CREATE DATABASE` included), so a test reading right after an append polls.
async fn read_all_eventually(store: &EventStore, at_least: usize) -> Vec<eventstore::RecordedEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let events = store.read_all(Position::START, 10_000).await.unwrap();
        if events.len() >= at_least || std::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn expected_version_mismatch_is_a_typed_conflict(tdb: &TestDatabase) {
    let (_db, store) = open(tdb).await;
    let r = store.append("s-1", ExpectedVersion::NoStream, vec![event("A", json!({"n": 0}))]).await.unwrap();
    assert_eq!(r.version, 0);
    let err = store.append("s-1", ExpectedVersion::NoStream, vec![event("A", json!({}))]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let err = store.append("s-1", ExpectedVersion::Exact(5), vec![event("A", json!({}))]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let err = store.append("s-2", ExpectedVersion::Exact(0), vec![event("A", json!({}))]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let r = store.append("s-1", ExpectedVersion::Exact(0), vec![event("A", json!({"n": 1}))]).await.unwrap();
    assert_eq!(r.version, 1);
    let r = store.append("s-1", ExpectedVersion::Any, vec![event("A", json!({"n": 2}))]).await.unwrap();
    assert_eq!(r.version, 2);
    let events = store.read_stream("s-1", 0).await.unwrap();
    let ns: Vec<_> = events.iter().map(|e| e.payload["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, vec![0, 1, 2], "nothing was overwritten by the rejected appends");
    assert_eq!(store.read_stream("s-1", 2).await.unwrap().len(), 1);
}

async fn a_failing_batch_leaves_nothing_behind(tdb: &TestDatabase) {
    let (_db, store) = open(tdb).await;
    let first = event("A", json!({"n": 0}));
    let dup_id = first.event_id;
    store.append("s-1", ExpectedVersion::NoStream, vec![first]).await.unwrap();
    // The third event reuses an id already in the log: the whole batch must fail.
    let mut third = event("A", json!({"n": 3}));
    third.event_id = dup_id;
    let batch = vec![event("A", json!({"n": 1})), event("A", json!({"n": 2})), third];
    let err = store.append("s-1", ExpectedVersion::Exact(0), batch).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateEvent), "{err:?}");
    assert_eq!(store.read_stream("s-1", 0).await.unwrap().len(), 1);
    assert_eq!(read_all_eventually(&store, 1).await.len(), 1);
    let err = store.append("s-1", ExpectedVersion::Any, vec![]).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    // The stream still accepts the next version afterwards.
    store.append("s-1", ExpectedVersion::Exact(0), vec![event("A", json!({"n": 1}))]).await.unwrap();
}

async fn a_multi_stream_append_is_all_or_nothing(tdb: &TestDatabase) {
    let (_db, store) = open(tdb).await;
    store.append("item-1", ExpectedVersion::NoStream, vec![event("Acquired", json!({}))]).await.unwrap();
    // The item moved on since it was read (expected 5, is 0): nothing of the batch is written.
    let err = store
        .append_streams(vec![
            ("sale-1".into(), ExpectedVersion::NoStream, vec![event("SaleConfirmed", json!({}))]),
            ("item-1".into(), ExpectedVersion::Exact(5), vec![event("ItemSold", json!({}))]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(store.read_stream("sale-1", 0).await.unwrap().is_empty());
    assert_eq!(store.read_stream("item-1", 0).await.unwrap().len(), 1);
    let results = store
        .append_streams(vec![
            ("sale-1".into(), ExpectedVersion::NoStream, vec![event("SaleConfirmed", json!({}))]),
            ("item-1".into(), ExpectedVersion::Exact(0), vec![event("ItemSold", json!({}))]),
        ])
        .await
        .unwrap();
    assert_eq!((results[0].version, results[1].version), (0, 1), "results in input order");
    let err = store
        .append_streams(vec![
            ("x".into(), ExpectedVersion::Any, vec![event("A", json!({}))]),
            ("x".into(), ExpectedVersion::Any, vec![event("A", json!({}))]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "a stream twice in one append: {err:?}");
}

/// An append across hundreds of streams (more than one statement's worth of streams and of
/// rows), some new and some continuing: every stream chained onto its own head, each result
/// naming its own stream's last event, in input order; one stale expectation among them and
/// nothing is written.
async fn a_wide_multi_stream_append_chains_every_stream(tdb: &TestDatabase) {
    let (_db, store) = open(tdb).await;
    let n = 700;
    for i in (0..n).step_by(2) {
        store.append(&format!("w-{i}"), ExpectedVersion::NoStream, vec![event("A", json!({"i": i}))]).await.unwrap();
    }
    let batches = |stale: Option<usize>| -> Vec<(String, ExpectedVersion, Vec<NewEvent>)> {
        (0..n)
            .map(|i| {
                let expected = match (i % 2, stale == Some(i)) {
                    (_, true) => ExpectedVersion::Exact(7),
                    (0, _) => ExpectedVersion::Exact(0),
                    _ => ExpectedVersion::NoStream,
                };
                let events = (0..1 + i % 3).map(|k| event("B", json!({"i": i, "k": k}))).collect();
                (format!("w-{i}"), expected, events)
            })
            .collect()
    };
    let before = store.count_after(eventstore::Position::START).await.unwrap();
    let err = store.append_streams(batches(Some(333))).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(store.count_after(eventstore::Position::START).await.unwrap(), before, "nothing written");
    let results = store.append_streams(batches(None)).await.unwrap();
    assert_eq!(results.len(), n);
    for (i, r) in results.iter().enumerate() {
        let stream = store.read_stream(&format!("w-{i}"), 0).await.unwrap();
        let versions: Vec<u64> = stream.iter().map(|e| e.version).collect();
        assert_eq!(versions, (0..=r.version).collect::<Vec<u64>>(), "stream w-{i}");
        assert_eq!(r.version as usize, i % 3 + usize::from(i % 2 == 0), "stream w-{i}");
        assert_eq!(stream.last().unwrap().position, r.position, "stream w-{i}: the result names its last event");
        assert_eq!(stream.last().unwrap().recorded_at, r.recorded_at, "stream w-{i}");
    }
    assert!(store.verify().await.unwrap().broken.is_none(), "every stream's chain holds");
}

/// `count_after` (counted by the database) agrees with reading the log, from every position.
async fn counting_after_a_position_agrees_with_reading_the_log(tdb: &TestDatabase) {
    let (_db, store) = open(tdb).await;
    assert_eq!(store.count_after(eventstore::Position::START).await.unwrap(), 0);
    for i in 0..12 {
        let events = (0..1 + i % 3).map(|k| event("C", json!({"i": i, "k": k}))).collect();
        store.append(&format!("c-{}", i % 4), ExpectedVersion::Any, events).await.unwrap();
    }
    let log = read_all_eventually(&store, 24).await;
    assert_eq!(log.len(), 24);
    for (i, e) in log.iter().enumerate() {
        assert_eq!(store.count_after(e.position).await.unwrap(), (log.len() - 1 - i) as u64, "after event {i}");
    }
    assert_eq!(store.count_after(eventstore::Position::START).await.unwrap(), 24);
}

async fn concurrent_claims_on_one_stream_version_let_exactly_one_win(tdb: &TestDatabase) {
    let (_db, store) = open(tdb).await;
    store.append("item-1", ExpectedVersion::NoStream, vec![event("Acquired", json!({}))]).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_streams(vec![
                        (format!("sale-{i}"), ExpectedVersion::NoStream, vec![event("SaleConfirmed", json!({}))]),
                        ("item-1".into(), ExpectedVersion::Exact(0), vec![event("ItemSold", json!({"sale": i}))]),
                    ])
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.read_stream("item-1", 0).await.unwrap().len(), 2);
    assert!(store.verify().await.unwrap().broken.is_none());
}

async fn concurrent_writers_are_read_exactly_once_in_one_order(tdb: &TestDatabase) {
    const WRITERS: usize = 8;
    const APPENDS: usize = 1000;
    let (_db, store) = open(tdb).await;
    // A reader follows the log while the writers run, as a projection would.
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut at = Position::START;
            let mut idle_rounds = 0;
            while seen.len() < WRITERS * APPENDS && idle_rounds < 4000 {
                let page = store.read_all(at, 500).await.unwrap();
                if page.is_empty() {
                    idle_rounds += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                }
                idle_rounds = 0;
                for e in page {
                    assert!(e.position > at, "positions must strictly increase");
                    at = e.position;
                    seen.push(e);
                }
            }
            seen
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..APPENDS {
                    // Half the writers share streams (contended, `Any`), half own theirs.
                    let stream = if w % 2 == 0 { format!("shared-{}", i % 4) } else { format!("own-{w}") };
                    let expected = if w % 2 == 0 {
                        ExpectedVersion::Any
                    } else if i == 0 {
                        ExpectedVersion::NoStream
                    } else {
                        ExpectedVersion::Exact(i as u64 - 1)
                    };
                    store.append(&stream, expected, vec![event("W", json!({"w": w, "i": i}))]).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let seen = reader.await.unwrap();
    assert_eq!(seen.len(), WRITERS * APPENDS, "every event seen");
    let ids: HashSet<_> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), WRITERS * APPENDS, "no event seen twice");
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for e in &seen {
        let next = versions.entry(&e.stream_id).or_insert(0);
        assert_eq!(e.version, *next, "stream {} read in version order", e.stream_id);
        *next += 1;
    }
    // A second full read gives the identical order.
    let mut again = Vec::new();
    let mut at = Position::START;
    loop {
        let page = store.read_all(at, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        at = last.position;
        again.extend(page.into_iter().map(|e| e.event_id));
    }
    assert_eq!(again, seen.iter().map(|e| e.event_id).collect::<Vec<_>>());
}

async fn altering_any_stored_byte_is_reported_at_that_position(tdb: &TestDatabase) {
    for column in ["payload", "metadata", "event_type"] {
        let tdb = if tdb.url.starts_with("sqlite") {
            TestDatabase::sqlite()
        } else {
            TestDatabase::postgres().await.unwrap()
        };
        let (db, store) = open(&tdb).await;
        let mut positions = Vec::new();
        for i in 0..5 {
            let r = store
                .append(&format!("s-{}", i % 2), ExpectedVersion::Any, vec![event("Typed", json!({"amount": i}))])
                .await
                .unwrap();
            positions.push(r.position);
        }
        assert!(store.verify().await.unwrap().broken.is_none());
        // The database refuses updates outright...
        assert!(db.execute_raw("UPDATE events SET payload = payload").await.is_err(), "events must be immutable");
        // ...so a tamperer must first disable that guard, as a DBA could.
        let disable = match db {
            Database::Sqlite(_) => "DROP TRIGGER events_no_update",
            Database::Postgres(_) => "ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete",
        };
        db.execute_raw(disable).await.unwrap();
        let target = positions[3];
        let change = match column {
            "payload" => "payload = replace(payload, '3', '4')",
            "metadata" => "metadata = replace(metadata, 'test', 'tesT')",
            _ => "event_type = 'Typee'",
        };
        let n = db.execute_raw(&format!("UPDATE events SET {change} WHERE position = {}", target.seq)).await.unwrap();
        assert_eq!(n, 1);
        let report = store.verify().await.unwrap();
        let broken = report.broken.unwrap_or_else(|| panic!("tampered {column} not detected"));
        assert_eq!(broken.position(), target, "{column}: {broken}");
    }
}

async fn personal_data_is_never_stored_in_plaintext_and_erasure_replays(tdb: &TestDatabase) {
    let (db, store) = open(tdb).await;
    let subject = Uuid::now_v7();
    let other = Uuid::now_v7();
    store
        .append(
            "customer-a",
            ExpectedVersion::NoStream,
            vec![personal(subject, "Ann Plaintextname", "ann.secret@example.com", "+1 212 555 0199")],
        )
        .await
        .unwrap();
    store
        .append(
            "customer-b",
            ExpectedVersion::NoStream,
            vec![personal(other, "Bob Keepme", "bob@example.com", "+1 212 555 0111")],
        )
        .await
        .unwrap();
    // Scan the raw rows: no name, email or phone, nor a recognisable fragment.
    let raw = match &db {
        Database::Sqlite(b) => sqlx::query_as::<_, (String, String)>("SELECT payload, metadata FROM events")
            .fetch_all(b.writer())
            .await
            .unwrap(),
        Database::Postgres(b) => sqlx::query_as::<_, (String, String)>("SELECT payload, metadata FROM events")
            .fetch_all(b.pool())
            .await
            .unwrap(),
    };
    assert_eq!(raw.len(), 2);
    for (payload, metadata) in &raw {
        for secret in ["Plaintextname", "ann.secret", "555 0199", "Keepme", "bob@"] {
            assert!(!payload.contains(secret) && !metadata.contains(secret), "plaintext {secret:?} in the log");
        }
        assert!(payload.contains("$enc"));
    }
    let before = store.read_stream("customer-a", 0).await.unwrap();
    let name: Pii<String> = serde_json::from_value(before[0].payload["name"].clone()).unwrap();
    assert_eq!(name.clear().unwrap(), "Ann Plaintextname");

    let destroyed = store.destroy_subject_keys(STORE, subject, &[KeyClass::Profile]).await.unwrap();
    assert_eq!(destroyed.len(), 1);
    assert!(destroyed[0].wrapped.is_none() && destroyed[0].destroyed_at.is_some());

    for events in [store.read_stream("customer-a", 0).await.unwrap(), read_all_eventually(&store, 2).await] {
        let e = events.iter().find(|e| e.stream_id == "customer-a").unwrap();
        for field in ["name", "email", "phone"] {
            let v: Pii<String> = serde_json::from_value(e.payload[field].clone()).unwrap();
            assert!(v.is_erased(), "{field} must read back as erased");
        }
        assert_eq!(e.payload["tags"], json!(["vip"]), "non-personal data survives erasure");
    }
    // The other subject is untouched, and the chain still verifies over the ciphertext.
    let b = store.read_stream("customer-b", 0).await.unwrap();
    let bob: Pii<String> = serde_json::from_value(b[0].payload["name"].clone()).unwrap();
    assert_eq!(bob.clear().unwrap(), "Bob Keepme");
    assert!(store.verify().await.unwrap().broken.is_none());
    // No new personal data can be written for an erased subject.
    let err = store
        .append("customer-a", ExpectedVersion::Any, vec![personal(subject, "Ann", "a@b.com", "12345")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::SubjectErased), "{err:?}");
    // Personal data without a subject is refused rather than stored unprotected.
    let mut orphan = personal(subject, "X", "x@y.com", "12345");
    orphan.data_subject = None;
    assert!(matches!(store.append("x", ExpectedVersion::Any, vec![orphan]).await, Err(StoreError::Crypto(_))));
}

async fn concurrent_first_appends_for_a_new_subject_share_one_key(tdb: &TestDatabase) {
    let (db, store) = open(tdb).await;
    let subject = Uuid::now_v7();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append(
                        &format!("customer-{i}"),
                        ExpectedVersion::NoStream,
                        vec![personal(subject, &format!("Name {i}"), "a@b.com", "12345")],
                    )
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("every append succeeds, re-sealing after a lost key race");
    }
    let keys = store.backend().subject_keys(STORE, subject).await.unwrap();
    assert_eq!(keys.len(), 1, "one profile key for the subject");
    // Every event opens: none was sealed under a key that lost the race.
    for i in 0..8 {
        let e = store.read_stream(&format!("customer-{i}"), 0).await.unwrap().remove(0);
        let name: Pii<String> = serde_json::from_value(e.payload["name"].clone()).unwrap();
        assert_eq!(name.clear().map(String::as_str), Some(format!("Name {i}").as_str()));
    }
    // A key is written with its events or not at all: a failed append leaves none behind.
    let lonely = Uuid::now_v7();
    let err =
        store.append("customer-0", ExpectedVersion::NoStream, vec![personal(lonely, "X", "x@y.com", "12345")]).await;
    assert!(matches!(err, Err(StoreError::Conflict { .. })));
    assert!(store.backend().subject_keys(STORE, lonely).await.unwrap().is_empty());
    drop(db);
}

async fn upcasters_apply_on_every_read_path(tdb: &TestDatabase) {
    let (db, store) = open(tdb).await;
    store.append("s", ExpectedVersion::NoStream, vec![event("PriceSet", json!({"cents": 100}))]).await.unwrap();
    let upcasting = EventStore::new(
        &db,
        store.master_key().clone(),
        Upcasters::new([Upcaster {
            event_type: "PriceSet",
            from_version: 1,
            upcast: |v| json!({"minor": v["cents"], "currency": "USD"}),
        }]),
    );
    for e in
        [upcasting.read_stream("s", 0).await.unwrap().remove(0), read_all_eventually(&upcasting, 1).await.remove(0)]
    {
        assert_eq!(e.schema_version, 2);
        assert_eq!(e.payload, json!({"minor": 100, "currency": "USD"}));
    }
    assert!(upcasting.verify().await.unwrap().broken.is_none(), "stored bytes were not rewritten");
}

async fn appends_wake_subscribers(tdb: &TestDatabase) {
    let (_db, store) = open(tdb).await;
    let mut wake = store.wakeups();
    wake.borrow_and_update();
    store.append("s", ExpectedVersion::Any, vec![event("A", json!({}))]).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), wake.changed()).await.expect("woken").unwrap();
    // Another server on the same PostgreSQL database is woken too (its LISTEN hears the
    // notification sent after the commit). SQLite has one server per file.
    if tdb.url.starts_with("postgres") {
        let (_other_db, other) = open(tdb).await;
        let mut theirs = other.wakeups();
        theirs.borrow_and_update();
        store.append("s", ExpectedVersion::Any, vec![event("A", json!({}))]).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), theirs.changed())
            .await
            .expect("other server woken")
            .unwrap();
    }
}

eventstore::backend_contract!(
    counting_after_a_position_agrees_with_reading_the_log,
    a_wide_multi_stream_append_chains_every_stream,
    expected_version_mismatch_is_a_typed_conflict,
    a_multi_stream_append_is_all_or_nothing,
    concurrent_claims_on_one_stream_version_let_exactly_one_win,
    a_failing_batch_leaves_nothing_behind,
    concurrent_writers_are_read_exactly_once_in_one_order,
    altering_any_stored_byte_is_reported_at_that_position,
    personal_data_is_never_stored_in_plaintext_and_erasure_replays,
    upcasters_apply_on_every_read_path,
    appends_wake_subscribers,
    concurrent_first_appends_for_a_new_subject_share_one_key,
);

/// SQLite only: WAL mode, and `secure_delete` so destroyed key bytes are overwritten in place
/// rather than left in free pages — on every connection, writer and readers alike.
#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_secure_delete_on_every_connection() {
    let tdb = TestDatabase::sqlite();
    let (db, _) = open(&tdb).await;
    let Database::Sqlite(b) = &db else { unreachable!() };
    for pool in [b.writer(), b.reader()] {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await.unwrap();
        assert_eq!(mode, "wal");
        let secure: i64 = sqlx::query_scalar("PRAGMA secure_delete").fetch_one(pool).await.unwrap();
        assert_eq!(secure, 1);
    }
}

/// PostgreSQL only: positions are allocated before commit, so a transaction that took an
/// earlier position can commit after a later one. A reader between the two commits must not
/// move past the late event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_late_committing_transaction_is_never_skipped() {
    let Some(tdb) = TestDatabase::postgres().await else { return };
    let (db, store) = open(&tdb).await;
    let Database::Postgres(pg) = &db else { unreachable!() };
    let sealed = |e: NewEvent| {
        let store = store.clone();
        async move {
            store
                .seal_batches(&[("s".into(), ExpectedVersion::Any, vec![e])])
                .await
                .unwrap()
                .0
                .remove(0)
                .events
                .remove(0)
        }
    };
    // A starts first and takes the lower position, B takes the next one and commits first.
    let a = pg
        .append_uncommitted(
            vec![StreamBatch {
                stream_id: "stream-a".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![sealed(event("A", json!({}))).await],
            }],
            vec![],
        )
        .await
        .unwrap();
    let b = pg
        .append_uncommitted(
            vec![StreamBatch {
                stream_id: "stream-b".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![sealed(event("B", json!({}))).await],
            }],
            vec![],
        )
        .await
        .unwrap();
    assert!(a.results[0].position.seq < b.results[0].position.seq);
    b.commit().await.unwrap();

    let mut seen = Vec::new();
    let mut at = Position::START;
    for e in store.read_all(at, 10).await.unwrap() {
        at = e.position;
        seen.push(e.event_type);
    }
    a.commit().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while seen.len() < 2 && std::time::Instant::now() < deadline {
        for e in store.read_all(at, 10).await.unwrap() {
            at = e.position;
            seen.push(e.event_type);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    seen.sort();
    assert_eq!(seen, vec!["A", "B"], "the late-committing event A was skipped");
}
