//! The live feed behind subscriptions: one task per process tails the log (the same
//! `read_all` the projections use, so the same total order and no skipped event) and fans each
//! event out to every subscriber through one bounded broadcast ring. Nothing is decrypted here;
//! a subscriber opens a payload only when its caller may see it.
//!
//! A subscriber that wants what it missed ([`Feed::replay_then_live`]) first reads the log from
//! its position, then joins the ring and reads the log once more up to where it joined, and from
//! then on takes events from the ring, skipping any at or before the last one it delivered: one
//! ordered feed, no gap, no duplicate. A subscriber that falls more than the ring's capacity
//! behind is told so ([`Lagged`]) and is disconnected by its connection (close code 4431); it
//! never makes the server buffer more.

use eventstore::{EventStore, Position, StoredEvent};
use futures_util::stream::{self, Stream};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Events read from the log per query, while tailing and while replaying.
const PAGE: usize = 256;

/// A subscriber fell further behind the live feed than the ring holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged;

#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    store: EventStore,
    tx: broadcast::Sender<Arc<StoredEvent>>,
    /// The last event published. Held while a batch is published, so a new subscriber learns
    /// exactly where its receiver starts.
    published: Mutex<Position>,
}

impl Feed {
    /// Starts tailing the log after `from` (events up to it are never published). `capacity`
    /// bounds how far one subscriber may fall behind.
    pub fn start(store: EventStore, from: Position, capacity: usize, shutdown: watch::Receiver<bool>) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        let feed = Self { inner: Arc::new(Inner { store, tx, published: Mutex::new(from) }) };
        tokio::spawn(feed.clone().tail(shutdown));
        feed
    }

    async fn tail(self, mut shutdown: watch::Receiver<bool>) {
        let mut wake = self.inner.store.wakeups();
        let mut after = *self.inner.published.lock().expect("never poisoned");
        loop {
            match self.inner.store.backend().read_all(after, PAGE).await {
                Ok(batch) if !batch.is_empty() => {
                    let full = batch.len() == PAGE;
                    let mut published = self.inner.published.lock().expect("never poisoned");
                    for e in batch {
                        after = e.position;
                        // No receivers is not an error: nobody is listening right now.
                        let _ = self.inner.tx.send(Arc::new(e));
                    }
                    *published = after;
                    drop(published);
                    metrics::gauge!("ic_live_subscribers").set(self.inner.tx.receiver_count() as f64);
                    if full {
                        continue;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the live feed could not read the log; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            tokio::select! {
                changed = wake.changed() => if changed.is_err() { return },
                // A wake-up can be missed across processes on SQLite: look again now and then.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    /// A receiver of every event published after the returned position.
    pub fn join(&self) -> (broadcast::Receiver<Arc<StoredEvent>>, Position) {
        let published = self.inner.published.lock().expect("never poisoned");
        (self.inner.tx.subscribe(), *published)
    }

    /// The events of a receiver from [`Feed::join`] after `last`, each once; ends with
    /// `Err(Lagged)` when the receiver falls behind the ring.
    pub fn live(
        rx: broadcast::Receiver<Arc<StoredEvent>>,
        last: Position,
    ) -> impl Stream<Item = Result<Arc<StoredEvent>, Lagged>> {
        stream::unfold(Some((rx, last)), |state| async move {
            let (mut rx, last) = state?;
            loop {
                match rx.recv().await {
                    Ok(e) if e.position > last => {
                        let at = e.position;
                        return Some((Ok(e), Some((rx, at))));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => return Some((Err(Lagged), None)),
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// Every event after `from` (the log, then live), or — without `from` — every event
    /// published from now on. In log order, each once; ends with `Err(Lagged)` when the
    /// subscriber falls behind the ring.
    pub fn replay_then_live(&self, from: Option<Position>) -> impl Stream<Item = Result<Arc<StoredEvent>, Lagged>> {
        enum Phase {
            /// Reading the log after the position, before joining the ring.
            Replay,
            /// Joined the ring; reading the log up to where it starts.
            Bridge(broadcast::Receiver<Arc<StoredEvent>>),
            Live(broadcast::Receiver<Arc<StoredEvent>>),
            Done,
        }
        let feed = self.clone();
        let (phase, last) = match from {
            Some(p) => (Phase::Replay, p),
            None => {
                let (rx, at) = feed.join();
                (Phase::Live(rx), at)
            }
        };
        let state = (feed, phase, last, std::collections::VecDeque::<Arc<StoredEvent>>::new());
        stream::unfold(state, |(feed, mut phase, mut last, mut pending)| async move {
            loop {
                if let Some(e) = pending.pop_front() {
                    last = e.position;
                    return Some((Ok(e), (feed, phase, last, pending)));
                }
                phase = match phase {
                    Phase::Replay | Phase::Bridge(_) => {
                        let page = match feed.inner.store.backend().read_all(last, PAGE).await {
                            Ok(p) => p,
                            Err(e) => {
                                tracing::warn!(error = %e, "replaying the log for a subscriber failed");
                                return None;
                            }
                        };
                        let caught_up = page.len() < PAGE;
                        pending.extend(page.into_iter().map(Arc::new));
                        match (phase, caught_up) {
                            (Phase::Replay, true) => Phase::Bridge(feed.join().0),
                            (Phase::Bridge(rx), true) => Phase::Live(rx),
                            (p, _) => p,
                        }
                    }
                    Phase::Live(mut rx) => match rx.recv().await {
                        Ok(e) if e.position > last => {
                            pending.push_back(e);
                            Phase::Live(rx)
                        }
                        Ok(_) => Phase::Live(rx),
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            return Some((Err(Lagged), (feed, Phase::Done, last, pending)));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    Phase::Done => return None,
                };
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventstore::testing::TestDatabase;
    use eventstore::{Database, ExpectedVersion, MasterKey, Metadata, NewEvent, Upcasters};
    use futures_util::StreamExt;

    async fn store(url: &str) -> EventStore {
        let db = Database::connect(url).await.unwrap();
        EventStore::new(&db, MasterKey::generate(), Upcasters::default())
    }

    fn noise(i: usize) -> NewEvent {
        NewEvent {
            event_id: uuid::Uuid::now_v7(),
            store_id: uuid::Uuid::nil(),
            event_type: "Noise".into(),
            schema_version: 1,
            payload: serde_json::json!({ "i": i }),
            metadata: Metadata::system("test"),
            data_subject: None,
        }
    }

    /// Subscribers join at staggered moments while a writer appends as fast as it can, so some
    /// move from the log to the live ring while events are being published: every one of them
    /// must see exactly the log, in order.
    async fn every_subscriber_sees_the_log_exactly_whenever_it_joins(url: &str) {
        const EVENTS: usize = 600;
        let store = store(url).await;
        let (_stop, shutdown) = watch::channel(false);
        let feed = Feed::start(store.clone(), Position::START, 100_000, shutdown);
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..EVENTS {
                    let stream = format!("noise-{}", uuid::Uuid::now_v7());
                    store.append(&stream, ExpectedVersion::NoStream, vec![noise(i)]).await.unwrap();
                }
            })
        };
        let subscribers: Vec<_> = (0..24)
            .map(|k| {
                let feed = feed.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(k * 15)).await;
                    let got = feed.replay_then_live(Some(Position::START)).take(EVENTS);
                    let got: Vec<_> = tokio::time::timeout(Duration::from_secs(30), got.collect::<Vec<_>>())
                        .await
                        .expect("the subscriber received every event");
                    got.into_iter().map(|e| e.expect("no lag with a large ring").position).collect::<Vec<_>>()
                })
            })
            .collect();
        writer.await.unwrap();
        let log: Vec<Position> = store
            .backend()
            .read_committed(Position::START, EVENTS + 1)
            .await
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(log.len(), EVENTS);
        for s in subscribers {
            assert_eq!(s.await.unwrap(), log, "no gap, no duplicate, log order");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_subscriber_sees_the_log_exactly_on_sqlite() {
        every_subscriber_sees_the_log_exactly_whenever_it_joins(&TestDatabase::sqlite().url).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_subscriber_sees_the_log_exactly_on_postgres() {
        let Some(db) = TestDatabase::postgres().await else { return };
        every_subscriber_sees_the_log_exactly_whenever_it_joins(&db.url).await;
    }
}
