//! Group commit, run against both backends: appends queued together are written together, yet
//! each keeps its own expected-version check and its own all-or-nothing outcome.
//!
//! To make a group happen on purpose, a test holds the database so the committer waits on its
//! first job while the others queue behind it: on SQLite it holds the one writer connection,
//! on PostgreSQL an `EXCLUSIVE` lock on `events` (reads go on, inserts wait).

use domain::pii::Pii;
use eventstore::testing::TestDatabase;
use eventstore::{
    AppendResult, Database, EventStore, ExpectedVersion, MasterKey, Metadata, NewEvent, Position, StoreError, Upcasters,
};
use serde_json::json;
use sqlx::Connection;
use std::time::Duration;
use tokio::task::JoinHandle;
use uuid::Uuid;

const STORE: Uuid = Uuid::from_u128(0x6c0);

fn event(n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        store_id: STORE,
        event_type: "Happened".into(),
        schema_version: 1,
        payload: json!({"n": n}),
        metadata: Metadata::system("test"),
        data_subject: None,
    }
}

fn personal(n: usize) -> NewEvent {
    let subject = Uuid::now_v7();
    NewEvent {
        data_subject: Some(subject),
        payload: json!({"customer_id": subject, "name": Pii::profile(format!("Customer {n}"))}),
        ..event(n)
    }
}

async fn open(tdb: &TestDatabase, master: &MasterKey) -> (Database, EventStore) {
    let db = Database::connect(&tdb.url).await.expect("connect");
    let store = EventStore::new(&db, master.clone(), Upcasters::default());
    (db, store)
}

/// Holds the database so that appends queue behind the committer's current job.
enum Hold {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::PgConnection),
}

impl Hold {
    async fn take(db: &Database, url: &str) -> Hold {
        match db {
            Database::Sqlite(b) => Hold::Sqlite(b.writer().acquire().await.unwrap()),
            Database::Postgres(_) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE").execute(&mut conn).await.unwrap();
                Hold::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Hold::Sqlite(conn) => drop(conn),
            Hold::Postgres(mut conn) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

fn spawn_append(
    store: &EventStore,
    batches: Vec<(&str, ExpectedVersion, Vec<NewEvent>)>,
) -> JoinHandle<Result<Vec<AppendResult>, StoreError>> {
    let store = store.clone();
    let batches = batches.into_iter().map(|(s, e, ev)| (s.to_owned(), e, ev)).collect();
    tokio::spawn(async move { store.append_streams(batches).await })
}

/// Lets spawned appends reach the queue.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn is_conflict<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict { .. }))
}

async fn appends_queued_together_commit_together_and_a_conflict_fails_only_its_own(tdb: &TestDatabase) {
    let master = MasterKey::generate();
    let (db, store) = open(tdb, &master).await;
    store.append("a", ExpectedVersion::NoStream, vec![event(0)]).await.unwrap();
    store.append("m", ExpectedVersion::NoStream, vec![event(0)]).await.unwrap();

    let hold = Hold::take(&db, &tdb.url).await;
    let first = spawn_append(&store, vec![("first", ExpectedVersion::NoStream, vec![event(0)])]);
    settle().await;
    let goods: Vec<_> = (0..8)
        .map(|i| {
            spawn_append(&store, vec![(&format!("good-{i}"), ExpectedVersion::NoStream, vec![event(i), event(i)])])
        })
        .collect();
    let stale = spawn_append(&store, vec![("a", ExpectedVersion::Exact(5), vec![event(1)])]);
    // One stream of two fails its check: the other must not be written either.
    let half = spawn_append(
        &store,
        vec![("b", ExpectedVersion::NoStream, vec![event(1)]), ("m", ExpectedVersion::Exact(3), vec![event(1)])],
    );
    let missing = spawn_append(&store, vec![("nothing-here", ExpectedVersion::Exact(0), vec![event(1)])]);
    settle().await;
    hold.release().await;

    let first = first.await.unwrap().expect("the first append");
    let mut commits = Vec::new();
    for g in goods {
        let r = g.await.unwrap().expect("an append beside conflicting ones");
        assert_eq!(r[0].version, 1);
        commits.push(r[0].position.commit);
    }
    assert!(is_conflict(&stale.await.unwrap()));
    assert!(is_conflict(&half.await.unwrap()));
    assert!(is_conflict(&missing.await.unwrap()));
    assert!(store.read_stream("b", 0).await.unwrap().is_empty(), "half of a failed append was written");
    assert_eq!(store.read_stream("a", 0).await.unwrap().len(), 1);
    assert_eq!(store.read_stream("m", 0).await.unwrap().len(), 1);
    if let Database::Postgres(_) = db {
        // The queued appends were one transaction: one transaction id for all of them.
        assert!(commits.windows(2).all(|w| w[0] == w[1]), "queued appends were not one commit: {commits:?}");
        assert_ne!(commits[0], first[0].position.commit);
    }
    let report = store.verify().await.unwrap();
    assert!(report.broken.is_none());
    assert_eq!(report.events, 2 + 1 + 16);
}

async fn a_database_error_in_a_group_costs_only_the_append_that_caused_it(tdb: &TestDatabase) {
    let master = MasterKey::generate();
    let (db, store) = open(tdb, &master).await;
    let e0 = event(0);
    let taken = e0.event_id;
    store.append("s", ExpectedVersion::NoStream, vec![e0]).await.unwrap();

    let hold = Hold::take(&db, &tdb.url).await;
    let first = spawn_append(&store, vec![("first", ExpectedVersion::NoStream, vec![event(0)])]);
    settle().await;
    let goods: Vec<_> = (0..6)
        .map(|i| spawn_append(&store, vec![(&format!("good-{i}"), ExpectedVersion::NoStream, vec![event(i)])]))
        .collect();
    // Reuses an event id already in the log: the database refuses the whole group's statement.
    let dup =
        spawn_append(&store, vec![("d", ExpectedVersion::NoStream, vec![NewEvent { event_id: taken, ..event(9) }])]);
    settle().await;
    hold.release().await;

    first.await.unwrap().unwrap();
    for g in goods {
        g.await.unwrap().expect("an append grouped with a failing one");
    }
    assert!(matches!(dup.await.unwrap(), Err(StoreError::DuplicateEvent)));
    assert!(store.read_stream("d", 0).await.unwrap().is_empty());
    let report = store.verify().await.unwrap();
    assert!(report.broken.is_none());
    assert_eq!(report.events, 1 + 1 + 6);
}

async fn a_stream_head_written_by_another_server_is_checked_not_trusted(tdb: &TestDatabase) {
    let master = MasterKey::generate();
    let (db1, one) = open(tdb, &master).await;
    let (_db2, two) = open(tdb, &master).await;
    one.append("s", ExpectedVersion::NoStream, vec![event(0)]).await.unwrap();
    assert_eq!(one.read_stream("s", 0).await.unwrap().len(), 1);
    // The other server moves the stream on twice; the first one's idea of its head is stale.
    two.append("s", ExpectedVersion::Exact(0), vec![event(1)]).await.unwrap();
    two.append("s", ExpectedVersion::Exact(1), vec![event(2)]).await.unwrap();

    let r = one.append("s", ExpectedVersion::Exact(2), vec![event(3)]).await.expect("expected the true head");
    assert_eq!(r.version, 3);
    let r = two.append("s", ExpectedVersion::Any, vec![event(4)]).await.unwrap();
    assert_eq!(r.version, 4, "Any appends after the true head, not the remembered one");
    let err = one.append("s", ExpectedVersion::Exact(3), vec![event(5)]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let err = two.append("s", ExpectedVersion::NoStream, vec![event(5)]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(one.append("s", ExpectedVersion::Any, vec![event(5)]).await.unwrap().version, 5);

    // Inside a group, a stale head costs only its own append a second try: the others commit
    // in the group's one transaction.
    two.append("s", ExpectedVersion::Any, vec![event(6)]).await.unwrap();
    let hold = Hold::take(&db1, &tdb.url).await;
    let first = spawn_append(&one, vec![("first", ExpectedVersion::NoStream, vec![event(0)])]);
    settle().await;
    let goods: Vec<_> = (0..4)
        .map(|i| spawn_append(&one, vec![(&format!("good-{i}"), ExpectedVersion::NoStream, vec![event(i)])]))
        .collect();
    let any = spawn_append(&one, vec![("s", ExpectedVersion::Any, vec![event(7)])]);
    settle().await;
    hold.release().await;
    first.await.unwrap().unwrap();
    let mut commits = Vec::new();
    for g in goods {
        commits.push(g.await.unwrap().unwrap()[0].position.commit);
    }
    assert_eq!(any.await.unwrap().unwrap()[0].version, 7);
    if let Database::Postgres(_) = db1 {
        assert!(commits.windows(2).all(|w| w[0] == w[1]), "a stale head broke its group apart: {commits:?}");
    }

    let events = two.read_stream("s", 0).await.unwrap();
    let ns: Vec<i64> = events.iter().map(|e| e.payload["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert!(one.verify().await.unwrap().broken.is_none(), "every event chained on its true predecessor");
}

async fn many_writers_through_groups_keep_every_chain_and_read_once(tdb: &TestDatabase) {
    const WRITERS: usize = 16;
    const EACH: usize = 40;
    let master = MasterKey::generate();
    let (_db, store) = open(tdb, &master).await;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = format!("writer-{w}");
                for i in 0..EACH {
                    let expected =
                        if i == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(i as u64 - 1) };
                    // Every fourth writer seals personal data for new subjects: those appends
                    // create keys and are written alone, between the groups.
                    let e = if w % 4 == 0 { personal(i) } else { event(i) };
                    let r = store.append(&stream, expected, vec![e]).await.expect("append");
                    assert_eq!(r.version, i as u64);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let total = WRITERS * EACH;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut at = Position::START;
    while seen.len() < total && std::time::Instant::now() < deadline {
        for e in store.read_all(at, 500).await.unwrap() {
            at = e.position;
            seen.push((e.stream_id, e.version, e.payload));
        }
    }
    assert_eq!(seen.len(), total);
    for w in 0..WRITERS {
        let versions: Vec<u64> =
            seen.iter().filter(|(s, _, _)| *s == format!("writer-{w}")).map(|(_, v, _)| *v).collect();
        assert_eq!(versions, (0..EACH as u64).collect::<Vec<_>>(), "writer {w}'s events in stream order");
    }
    let opened = seen
        .iter()
        .filter_map(|(_, _, p)| serde_json::from_value::<Pii<String>>(p["name"].clone()).ok())
        .filter(|name| name.clear().is_some_and(|n| n.starts_with("Customer ")))
        .count();
    assert_eq!(opened, (WRITERS / 4) * EACH, "every personal field opens under its own key");
    let report = store.verify().await.unwrap();
    assert!(report.broken.is_none());
    assert_eq!(report.events as usize, total);
}

async fn a_failure_after_part_of_a_group_committed_never_writes_or_fails_an_append_twice(tdb: &TestDatabase) {
    let master = MasterKey::generate();
    let (db1, one) = open(tdb, &master).await;
    let (_db2, two) = open(tdb, &master).await;
    let e0 = event(0);
    let taken = e0.event_id;
    one.append("s", ExpectedVersion::NoStream, vec![e0]).await.unwrap();
    two.append("s", ExpectedVersion::Exact(0), vec![event(1)]).await.unwrap();
    two.append("s", ExpectedVersion::Exact(1), vec![event(2)]).await.unwrap();

    // The first server's idea of the head of `s` is stale, so its append needs a second round,
    // and that round fails (its event id is taken) after the others have committed.
    let hold = Hold::take(&db1, &tdb.url).await;
    let first = spawn_append(&one, vec![("first", ExpectedVersion::NoStream, vec![event(0)])]);
    settle().await;
    let goods: Vec<_> = (0..4)
        .map(|i| spawn_append(&one, vec![(&format!("good-{i}"), ExpectedVersion::NoStream, vec![event(i)])]))
        .collect();
    let dup = spawn_append(&one, vec![("s", ExpectedVersion::Any, vec![NewEvent { event_id: taken, ..event(9) }])]);
    settle().await;
    hold.release().await;

    first.await.unwrap().unwrap();
    for g in goods {
        let r = g.await.unwrap().expect("an append that committed is answered as committed");
        assert_eq!(r[0].version, 0);
    }
    assert!(matches!(dup.await.unwrap(), Err(StoreError::DuplicateEvent)));
    let report = one.verify().await.unwrap();
    assert!(report.broken.is_none());
    assert_eq!(report.events, 3 + 1 + 4, "nothing written twice, nothing lost");
}

eventstore::backend_contract!(
    a_failure_after_part_of_a_group_committed_never_writes_or_fails_an_append_twice,
    appends_queued_together_commit_together_and_a_conflict_fails_only_its_own,
    a_database_error_in_a_group_costs_only_the_append_that_caused_it,
    a_stream_head_written_by_another_server_is_checked_not_trusted,
    many_writers_through_groups_keep_every_chain_and_read_once,
);
