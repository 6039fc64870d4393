//! Rebuilding a read model from a generated log: `projections::rebuild` (what
//! `inventory-connect projections rebuild NAME` runs: shadow tables, then the swap) for the
//! inventory, the customers and the sales, in events of the whole log per second. Baseline, same run, same database: reading the whole log
//! through the event store (`read_all` in the rebuild's batch size, payloads opened and
//! upcast, nothing applied), the floor any rebuild pays.

use crate::{Backend, Error};
use eventstore::Position;
use projections::{Kind, ReadDb};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Options {
    /// Items in the generated store.
    #[arg(long, default_value_t = 100_000)]
    items: usize,
    /// Events in the generated log.
    #[arg(long, default_value_t = 300_000)]
    events: usize,
}

pub const HEADER: &str =
    "| backend | what | events | events/s | ratio to reading the log | swap (writers wait) |\n|---|---|---|---|---|---|";

pub async fn run(backend: Backend, o: &Options) -> Result<Vec<String>, Error> {
    let (tdb, db, store, _, row) = crate::generated_store(backend, o.items, o.events, 11).await?;
    let mut rows = vec![row];
    // PostgreSQL readers wait for older transactions in the cluster: let the log settle.
    let total = store.count_after(Position::START).await?;
    let started = Instant::now();
    let mut at = Position::START;
    let mut read = 0u64;
    while read < total {
        let batch = store.read_all(at, projections::REBUILD_BATCH).await?;
        match batch.last() {
            Some(last) => at = last.position,
            None => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
        read += batch.len() as u64;
    }
    let floor = read as f64 / started.elapsed().as_secs_f64();
    rows.push(format!("| {backend:?} | baseline: read the whole log | {read} | {floor:.0} | 1.00 | |"));
    let rm = ReadDb::new(&db);
    for kind in [Kind::Inventory, Kind::Customers, Kind::Sales] {
        let started = Instant::now();
        let done = projections::rebuild(&rm, &store, kind, |_, _| {}).await?;
        let rate = done.applied as f64 / started.elapsed().as_secs_f64();
        rows.push(format!(
            "| {backend:?} | rebuild {} | {} | {rate:.0} | {:.2} | {} ms |",
            kind.name(),
            done.applied,
            rate / floor,
            done.swap.as_millis()
        ));
    }
    drop(tdb);
    Ok(rows)
}
