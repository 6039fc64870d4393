//! The running projections of a server: one follower reads the log's tail once per batch for
//! every projection and hands each runner the part after its own checkpoint.
//!
//! Each runner following the log alone asked for the tail on every wakeup and again to see it
//! had caught up: about a dozen reads of the same events, each decoded and decrypted, for one
//! append (counted in PostgreSQL's statement log: 237 tail reads for 20 `acquireItem`s). One
//! read per batch serves them all. The runners' parts of a batch are applied in one transaction
//! (`Runner::apply_together`): on SQLite those of the models with events in it (the others move
//! their checkpoints in memory), on PostgreSQL every one (the checkpoints of the models with
//! nothing in it moved by one statement). Each checkpoint still moves by its own compare-and-set;
//! if one was moved by another runner, or anything fails, nothing of it lands and each applies
//! alone, so what each model holds, and when, is unchanged.

use crate::runner::{try_lease, ANALYZE_AFTER, LIVE_BATCH};
use crate::{Kind, ProjectionError, ReadDb, Result, Runner};
use eventstore::{EventStore, Position};
use futures_util::future::join_all;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// A runner as the follower drives it: its lease (PostgreSQL) and its retry after a failure.
struct Followed {
    runner: Runner,
    lease: Option<sqlx::PgConnection>,
    next_lease_try: Instant,
    failures: u32,
    retry_at: Instant,
    /// Test record: batches this runner applied in a transaction shared with others.
    #[cfg(test)]
    joined: usize,
}

impl Followed {
    fn new(runner: Runner) -> Self {
        let now = Instant::now();
        Self {
            runner,
            lease: None,
            next_lease_try: now,
            failures: 0,
            retry_at: now,
            #[cfg(test)]
            joined: 0,
        }
    }

    /// Whether this runner applies events here: always on SQLite (one server), on PostgreSQL
    /// while it holds the lease.
    fn leads(&self) -> bool {
        matches!(self.runner.db(), ReadDb::Sqlite { .. }) || self.lease.is_some()
    }

    /// Leading and not waiting out a failure.
    fn ready(&self, now: Instant) -> bool {
        self.leads() && self.retry_at <= now
    }

    /// On PostgreSQL: tries for the lease every two seconds while another server holds it, and
    /// meanwhile follows the stored checkpoint.
    async fn tend_lease(&mut self) {
        let ReadDb::Postgres(pool) = self.runner.db() else {
            self.runner.set_leading(true);
            return;
        };
        let kind = self.runner.kind();
        if self.lease.is_none() && Instant::now() >= self.next_lease_try {
            self.lease = try_lease(pool, kind).await.unwrap_or_else(|e| {
                tracing::warn!(projection = kind.name(), error = %e, "cannot try for the projection lease");
                None
            });
            self.next_lease_try = Instant::now() + Duration::from_secs(2);
            self.runner.set_leading(self.lease.is_some());
        }
        if self.lease.is_none() {
            if let Err(e) = self.runner.follow_stored().await {
                tracing::warn!(projection = kind.name(), error = %e, "cannot read the leader's checkpoint");
            }
        }
    }

    fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// A failed batch or flush: retried after a pause that grows with each failure in a row (up
    /// to 5 s); the runner keeps its checkpoint, so nothing is skipped.
    fn failed(&mut self, e: &ProjectionError) {
        self.failures += 1;
        tracing::error!(projection = self.runner.kind().name(), error = %e, "projection batch failed; retrying");
        self.retry_at = Instant::now() + Duration::from_millis(100 * u64::from(self.failures.min(50)));
    }
}

/// The running projections of this process.
#[derive(Clone)]
pub struct Projections {
    progress: Vec<(Kind, watch::Receiver<Position>)>,
    leading: Vec<(Kind, watch::Receiver<bool>)>,
}

impl Projections {
    /// Catches every projection up, then follows the log in the background until `shutdown`.
    pub async fn start(db: &ReadDb, store: &EventStore, shutdown: watch::Receiver<bool>) -> Result<Self> {
        let (mut progress, mut leading, mut followed) = (Vec::new(), Vec::new(), Vec::new());
        for kind in Kind::ALL {
            // Start from a caught-up state whoever leads (the checkpoint CAS keeps it exact).
            // In the live batch size: catching 913k events up in batches of 2,000 was 26% faster
            // but left the server 24 MB (SQLite) to 65 MB (PostgreSQL) larger under load.
            let mut runner = Runner::new(kind, db, store).await?;
            if runner.catch_up().await? >= ANALYZE_AFTER {
                db.analyze(kind).await?;
            }
            progress.push((kind, runner.progress()));
            leading.push((kind, runner.leading()));
            followed.push(Followed::new(runner));
        }
        tokio::spawn(follow(followed, store.clone(), shutdown));
        Ok(Self { progress, leading })
    }

    /// Current checkpoint of every projection.
    pub fn status(&self) -> Vec<(Kind, Position)> {
        self.progress.iter().map(|(k, rx)| (*k, *rx.borrow())).collect()
    }

    /// Which projections this process currently leads.
    pub fn leading(&self) -> Vec<(Kind, bool)> {
        self.leading.iter().map(|(k, rx)| (*k, *rx.borrow())).collect()
    }

    /// Waits until every projection has applied the event at `position`.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> Result<()> {
        let wait_all = async {
            for (_, rx) in &self.progress {
                let mut rx = rx.clone();
                if rx.wait_for(|p| *p >= position).await.is_err() {
                    return Err(ProjectionError::ConsistencyTimeout);
                }
            }
            Ok(())
        };
        tokio::time::timeout(timeout, wait_all).await.map_err(|_| ProjectionError::ConsistencyTimeout)?
    }
}

/// Runs until `shutdown` turns true: on every wakeup (an append in this process, or every
/// 250 ms regardless: a lost notification, another server's append, or events held back by an
/// older transaction only delay) applies the tail to every leading runner, then stores the
/// checkpoints that batches for other models moved in memory only (SQLite).
async fn follow(mut all: Vec<Followed>, store: EventStore, mut shutdown: watch::Receiver<bool>) {
    let mut wake = store.wakeups();
    while !*shutdown.borrow() {
        for f in &mut all {
            f.tend_lease().await;
        }
        apply_tail(&mut all, &store).await;
        let now = Instant::now();
        for f in all.iter_mut().filter(|f| f.ready(now) && f.runner.flush_due()) {
            match f.runner.flush().await {
                Ok(()) => f.succeeded(),
                Err(e) => f.failed(&e),
            }
        }
        // A runner waiting out a failure is retried when its pause ends.
        let retry = all.iter().filter(|f| f.leads() && f.failures > 0).map(|f| f.retry_at).min();
        let pause = retry.map_or(Duration::from_millis(250), |at| {
            at.saturating_duration_since(Instant::now()).min(Duration::from_millis(250))
        });
        tokio::select! {
            _ = wake.changed() => {}
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    for f in all.iter_mut().filter(|f| f.leads()) {
        if let Err(e) = f.runner.flush().await {
            tracing::warn!(projection = f.runner.kind().name(), error = %e, "cannot store the checkpoint at shutdown");
        }
    }
    // Dropping the lease connections ends their sessions and frees the leases at once.
    drop(all);
}

/// Applies the log's tail to every ready runner until none has anything left to apply: each
/// batch is read once, from the checkpoint of the runner furthest behind, and each runner is
/// given the events after its own checkpoint — exactly what it would have read itself, since
/// the log returns, in order, every event after a position that is visible when read.
///
/// The runners' parts are applied in one transaction (`Runner::apply_together`): on SQLite
/// those with events for their models (one turn of the one writer), on PostgreSQL every one. If
/// that cannot be done (a checkpoint moved by another runner, an error) each applies alone,
/// concurrently, so a failing model holds back only itself.
async fn apply_tail(all: &mut [Followed], store: &EventStore) {
    let sqlite = all.first().is_some_and(|f| matches!(f.runner.db(), ReadDb::Sqlite { .. }));
    loop {
        let now = Instant::now();
        let Some(from) = all.iter().filter(|f| f.ready(now)).map(|f| f.runner.checkpoint()).min() else { return };
        let events = match store.read_tail(from, LIVE_BATCH).await {
            Ok(events) => events,
            Err(e) => {
                let e = ProjectionError::from(e);
                all.iter_mut().filter(|f| f.ready(now)).for_each(|f| f.failed(&e));
                return;
            }
        };
        if events.is_empty() {
            return;
        }
        let (mut together, mut alone) = (Vec::new(), Vec::new());
        for f in all.iter_mut().filter(|f| f.ready(now)) {
            let after = f.runner.checkpoint();
            let part = &events[events.partition_point(|e| e.position <= after)..];
            if part.is_empty() {
                continue;
            }
            // On SQLite a runner with nothing for its model moves its checkpoint in memory
            // (`Runner::apply_read`): only the others join. On PostgreSQL every one stores it.
            if f.runner.joins() && (!sqlite || f.runner.cares_about_any(part)) {
                together.push((f, part));
            } else {
                alone.push((f, part));
            }
        }
        let mut applied = 0;
        if together.len() > 1 {
            let mut group: Vec<_> = together.iter_mut().map(|(f, part)| (&mut f.runner, *part)).collect();
            match Runner::apply_together(&mut group).await {
                Ok(true) => {
                    for (f, part) in together.drain(..) {
                        f.succeeded();
                        applied += part.len();
                        #[cfg(test)]
                        {
                            f.joined += 1;
                        }
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "the models could not be applied together; each alone"),
            }
        }
        alone.extend(together);
        let counts = join_all(alone.into_iter().map(|(f, part)| async move {
            match f.runner.apply_read(part).await {
                Ok(n) => {
                    f.succeeded();
                    n
                }
                Err(e) => {
                    f.failed(&e);
                    0
                }
            }
        }))
        .await;
        applied += counts.iter().sum::<usize>();
        // Nothing applied: every runner behind failed or found its checkpoint moved by another
        // server (and reloaded it); the next wakeup tries again.
        if applied == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commands::{execute, CommandContext};
    use domain::customer::{Customer, CustomerCommand, RegisterCustomer};
    use domain::inventory::{AcquireItem, Category, InventoryItem, ItemCommand};
    use domain::{CustomerId, ItemId, Money, StoreId};
    use eventstore::testing::TestDatabase;
    use eventstore::{Database, MasterKey, Upcasters};

    /// Appends `items` acquisitions and two customers; the log's head.
    async fn append(store: &EventStore, ctx: &CommandContext, items: usize) -> Position {
        let usd = |s: &str| Money::parse("x", s, "USD").unwrap();
        let mut head = Position::START;
        for i in 0..items {
            let id = ItemId::new_v7();
            let model = format!("Model {i}");
            let acquire = AcquireItem::purchase(
                id,
                ctx.store_id,
                Category::Watch,
                "Omega",
                &model,
                Some(usd("500.00")),
                usd("900.00"),
            );
            let done = execute::<InventoryItem>(store, ctx, &id.stream_id(), &ItemCommand::Acquire(acquire)).await;
            head = head.max(done.unwrap().position.unwrap());
        }
        for i in 0..2 {
            let id = CustomerId::new_v7();
            let register = CustomerCommand::Register(RegisterCustomer {
                customer_id: id,
                store_id: ctx.store_id,
                name: format!("Customer {i}"),
                email: None,
                phone: None,
                notes: None,
                tags: vec![],
                address: None,
                birthday: None,
                assigned_to: None,
                source: None,
                external_ids: Default::default(),
            });
            head =
                head.max(execute::<Customer>(store, ctx, &id.stream_id(), &register).await.unwrap().position.unwrap());
        }
        // PostgreSQL holds events back from readers while older transactions elsewhere in the
        // cluster are open: wait until the log shows them all.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while store.read_all(Position::START, 100_000).await.unwrap().last().map(|e| e.position) < Some(head) {
            assert!(std::time::Instant::now() < deadline, "the log never showed {head}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        head
    }

    async fn world_on(tdb: TestDatabase) -> (TestDatabase, EventStore, ReadDb, CommandContext) {
        let db = Database::connect(&tdb.url).await.unwrap();
        let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
        (tdb, store, ReadDb::new(&db), CommandContext::system(StoreId::new_v7(), "test"))
    }

    /// The worlds of both backends (PostgreSQL when it answers).
    async fn worlds() -> Vec<(TestDatabase, EventStore, ReadDb, CommandContext)> {
        let mut worlds = vec![world_on(TestDatabase::sqlite()).await];
        if let Some(tdb) = TestDatabase::postgres().await {
            worlds.push(world_on(tdb).await);
        }
        worlds
    }

    async fn followed(read: &ReadDb, store: &EventStore) -> Vec<Followed> {
        let mut all = Vec::new();
        for kind in Kind::ALL {
            let mut f = Followed::new(Runner::new(kind, read, store).await.unwrap());
            // On PostgreSQL: take the lease (this test's database is its own).
            f.tend_lease().await;
            assert!(f.leads());
            all.push(f);
        }
        all
    }

    /// Every model as applied equals the same model emptied and rebuilt by a runner of its own
    /// reading the log alone.
    async fn assert_models_equal_a_fresh_replay(read: &ReadDb, store: &EventStore) {
        for kind in Kind::ALL {
            let followed = read.dump(kind).await.unwrap();
            read.reset(kind).await.unwrap();
            Runner::new(kind, read, store).await.unwrap().catch_up().await.unwrap();
            assert_eq!(followed, read.dump(kind).await.unwrap(), "{kind:?}");
        }
    }

    #[tokio::test]
    async fn one_read_serves_every_runner_each_from_its_own_checkpoint() {
        for (_tdb, store, read, ctx) in worlds().await {
            one_read_serves_every_runner(store, read, ctx).await;
        }
    }

    async fn one_read_serves_every_runner(store: EventStore, read: ReadDb, ctx: CommandContext) {
        let head = append(&store, &ctx, 9).await;
        let mut all = followed(&read, &store).await;
        // Runners at different checkpoints: inventory four events in, customers caught up, the
        // rest at the start of the log.
        let mut inventory = Runner::new(Kind::Inventory, &read, &store).await.unwrap().with_batch_size(4);
        inventory.run_batch().await.unwrap();
        assert_eq!(all[1].runner.kind(), Kind::Inventory);
        all[1].runner = inventory.with_batch_size(LIVE_BATCH);
        all[2].runner.catch_up().await.unwrap();
        assert!(all[1].runner.checkpoint() > Position::START && all[1].runner.checkpoint() < head);
        let given_before: Vec<usize> = all.iter().map(|f| f.runner.given).collect();

        let before = store.tail_reads();
        apply_tail(&mut all, &store).await;
        assert_eq!(store.tail_reads() - before, 2, "one read for the batch, one to find the end of the log");
        // Each runner was given exactly the events after its own checkpoint: 9 acquisitions
        // and 2 registrations, of which inventory had applied 4 and customers all.
        let given: Vec<usize> = all.iter().zip(&given_before).map(|(f, b)| f.runner.given - b).collect();
        assert_eq!(given, [11, 7, 0, 11, 11, 11, 11]);
        for f in &all {
            assert_eq!(f.runner.checkpoint(), head, "{:?}", f.runner.kind());
        }
        assert_eq!(read.dump(Kind::Inventory).await.unwrap().len(), 9);
        assert_models_equal_a_fresh_replay(&read, &store).await;
    }

    #[tokio::test]
    async fn a_failing_runner_holds_back_only_itself_and_resumes_from_its_checkpoint() {
        for (_tdb, store, read, ctx) in worlds().await {
            a_failing_runner_holds_back_only_itself(store, read, ctx).await;
        }
    }

    async fn a_failing_runner_holds_back_only_itself(store: EventStore, read: ReadDb, ctx: CommandContext) {
        let first = append(&store, &ctx, 5).await;
        let mut all = followed(&read, &store).await;
        all[1].runner.fail_after = Some(2);
        apply_tail(&mut all, &store).await;
        assert_eq!(all[1].runner.checkpoint(), Position::START, "the failed batch rolled back");
        assert!(read.dump(Kind::Inventory).await.unwrap().is_empty());
        assert_eq!(all[1].failures, 1);
        assert!(all.iter().filter(|f| f.runner.kind() != Kind::Inventory).all(|f| f.runner.checkpoint() == first));

        assert!(all[1].retry_at > Instant::now(), "a pause before the retry");
        // While it waits out its pause the others go on (the pause held for this step whatever
        // the machine's speed).
        all[1].retry_at = Instant::now() + Duration::from_secs(600);
        let second = append(&store, &ctx, 3).await;
        apply_tail(&mut all, &store).await;
        assert_eq!(all[1].runner.checkpoint(), Position::START);
        assert!(all.iter().filter(|f| f.runner.kind() != Kind::Inventory).all(|f| f.runner.checkpoint() == second));

        // After it, it applies everything from its own checkpoint, exactly once.
        all[1].retry_at = Instant::now();
        apply_tail(&mut all, &store).await;
        assert_eq!((all[1].runner.checkpoint(), all[1].failures), (second, 0));
        assert_eq!(read.dump(Kind::Inventory).await.unwrap().len(), 8);
        assert_models_equal_a_fresh_replay(&read, &store).await;
    }

    #[tokio::test]
    async fn models_apply_in_one_transaction_or_else_each_alone() {
        for (_tdb, store, read, ctx) in worlds().await {
            together_or_alone(store, read, ctx).await;
        }
    }

    async fn together_or_alone(store: EventStore, read: ReadDb, ctx: CommandContext) {
        let sqlite = matches!(read, ReadDb::Sqlite { .. });
        let first = append(&store, &ctx, 4).await;
        let mut all = followed(&read, &store).await;
        apply_tail(&mut all, &store).await;
        let joined = |all: &[Followed]| all.iter().map(|f| f.joined).collect::<Vec<_>>();
        // Items and customers. On SQLite: the inventory, customers and audit models in one
        // transaction, the others had nothing to write. On PostgreSQL: every model, the others'
        // checkpoints moved by one statement.
        let once = if sqlite { [0, 1, 1, 0, 1, 0, 0] } else { [1; 7] };
        assert_eq!(joined(&all), once);
        assert!(all.iter().all(|f| f.runner.checkpoint() == first));
        for f in all.iter().filter(|f| !sqlite || once[f.runner.kind() as usize] == 1) {
            assert_eq!(read.checkpoint(f.runner.kind()).await.unwrap(), first, "{:?} stored", f.runner.kind());
        }

        // Another runner applies the inventory's next events first: the shared transaction
        // cannot move that checkpoint, so nothing of it lands and each model applies alone (the
        // inventory runner then follows the moved checkpoint).
        let second = append(&store, &ctx, 3).await;
        Runner::new(Kind::Inventory, &read, &store).await.unwrap().catch_up().await.unwrap();
        let given = all[1].runner.given;
        apply_tail(&mut all, &store).await;
        assert_eq!(joined(&all), once, "nothing was applied together");
        assert!(all.iter().all(|f| f.runner.checkpoint() == second && f.failures == 0));
        assert_eq!(all[1].runner.given - given, 5, "given once, alone (three items, two customers)");
        assert_eq!(read.dump(Kind::Inventory).await.unwrap().len(), 7);

        if !sqlite {
            // Another runner moves the directory's checkpoint one event on (a model with
            // nothing in these batches): the statement that moves the idle models' checkpoints
            // cannot move it, so nothing lands together; the directory follows the stored
            // checkpoint and then applies the rest alone.
            let third = append(&store, &ctx, 2).await;
            assert_eq!(
                Runner::new(Kind::Directory, &read, &store)
                    .await
                    .unwrap()
                    .with_batch_size(1)
                    .run_batch()
                    .await
                    .unwrap(),
                1
            );
            apply_tail(&mut all, &store).await;
            assert_eq!(joined(&all), once, "nothing was applied together");
            for f in &all {
                assert_eq!(f.runner.checkpoint(), third, "{:?}", f.runner.kind());
                assert_eq!(read.checkpoint(f.runner.kind()).await.unwrap(), third, "{:?} stored", f.runner.kind());
            }
        }
        assert_models_equal_a_fresh_replay(&read, &store).await;
    }
}
