//! Commands that create an aggregate under an id just generated (`execute_new`) decide without
//! reading its stream; what they report as recorded is what the log then holds, and an id that
//! is somehow taken still cannot be created twice. Both backends.

mod common;
use commands::{execute, execute_new, CommandError};
use common::{acquire_command, setup};
use domain::inventory::InventoryItem;
use domain::ItemId;
use eventstore::testing::TestDatabase;
use eventstore::{Position, RecordedEvent};

/// Every field of a recorded event, for comparing what a command reports with the log.
fn fields(e: &RecordedEvent) -> String {
    format!(
        "{} {} v{} {} {} {} s{} {} {:?} {}",
        e.position,
        e.stream_id,
        e.version,
        e.event_id,
        e.store_id,
        e.event_type,
        e.schema_version,
        e.payload,
        e.metadata,
        e.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    )
}

async fn a_created_streams_event_is_reported_exactly_as_the_log_holds_it(tdb: &TestDatabase) {
    let (store, ctx) = setup(tdb).await;
    // Some other stream first, so positions are not trivially the first.
    let other = ItemId::new_v7();
    execute::<InventoryItem>(&store, &ctx, &other.stream_id(), &acquire_command(&ctx, other)).await.unwrap();
    for key in [None, Some("acquire-1")] {
        let id = ItemId::new_v7();
        let cmd = acquire_command(&ctx, id);
        let once = execute_new::<InventoryItem>(&store, &ctx, key, "acquireItem", id.as_uuid(), &id.stream_id(), &cmd)
            .await
            .unwrap();
        let created = once.created.expect("a stream created by one event is reported");
        let log = store.read_stream(&id.stream_id(), 0).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(fields(&created), fields(&log[0]), "key {key:?}");
        assert!(once.position.unwrap() >= created.position, "the claim of a key may come after it");
        // A retry with the key replays and reports no new event.
        if let Some(key) = key {
            let again = execute_new::<InventoryItem>(
                &store,
                &ctx,
                Some(key),
                "acquireItem",
                id.as_uuid(),
                &id.stream_id(),
                &cmd,
            )
            .await
            .unwrap();
            assert!(again.replayed && again.created.is_none());
            assert_eq!(store.read_stream(&id.stream_id(), 0).await.unwrap().len(), 1);
        }
    }
}

async fn creating_under_a_taken_id_reads_the_stream_and_is_refused(tdb: &TestDatabase) {
    let (store, ctx) = setup(tdb).await;
    let id = ItemId::new_v7();
    let cmd = acquire_command(&ctx, id);
    execute::<InventoryItem>(&store, &ctx, &id.stream_id(), &cmd).await.unwrap();
    let before = store.count_after(Position::START).await.unwrap();
    // Decided blind, the append conflicts; the retry loads the stream and the domain refuses,
    // at once (not after every retry as contention).
    let err = execute_new::<InventoryItem>(&store, &ctx, None, "acquireItem", id.as_uuid(), &id.stream_id(), &cmd)
        .await
        .unwrap_err();
    assert!(matches!(err, CommandError::Rejected(_)), "{err:?}");
    assert_eq!(store.count_after(Position::START).await.unwrap(), before, "nothing written");
}

eventstore::backend_contract!(
    a_created_streams_event_is_reported_exactly_as_the_log_holds_it,
    creating_under_a_taken_id_reads_the_stream_and_is_refused,
);
