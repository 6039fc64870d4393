//! Reads of the log's tail shared by concurrent callers.
//!
//! A server's projections are driven by one follower that reads each page once for all of them
//! (`projections::follow`); this is for readers that still follow the tail side by side (runners
//! in other tasks of one process, as tests and tools start them). [`SharedReads`] lets callers asking for the same page while it is being read wait for
//! that read instead of making their own ("single flight"). A page is shared only while it is
//! in flight, never kept: a caller that arrives after a read completed reads again, so nobody
//! gets a page older than its own call. A caller that joins a read started a moment before its
//! call may miss an event committed in between; readers of the tail follow the store's wakeups,
//! and that event's wakeup comes after it, so they read again.

use crate::error::Result;
use crate::types::{Position, RecordedEvent};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// A page being read: `None` once read if the read failed (each caller then reads alone).
type Page = Arc<OnceCell<Option<Arc<Vec<RecordedEvent>>>>>;

#[derive(Default)]
pub struct SharedReads {
    current: Mutex<Option<(Position, usize, Page)>>,
    /// Reads made (not joined), for tests and diagnostics.
    made: AtomicU64,
}

impl SharedReads {
    /// The page of up to `limit` events after `after`: the one being read right now if another
    /// caller asked for the same, else read with `read`.
    pub async fn read<F, Fut>(&self, after: Position, limit: usize, read: F) -> Result<Arc<Vec<RecordedEvent>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Vec<RecordedEvent>>>,
    {
        let page = {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            match &*current {
                Some((a, l, page)) if (*a, *l) == (after, limit) && !page.initialized() => page.clone(),
                _ => {
                    let page: Page = Arc::default();
                    *current = Some((after, limit, page.clone()));
                    page
                }
            }
        };
        let mut failed = None;
        let shared = page
            .get_or_init(|| async {
                self.made.fetch_add(1, Ordering::Relaxed);
                match read().await {
                    Ok(events) => Some(Arc::new(events)),
                    Err(e) => {
                        failed = Some(e);
                        None
                    }
                }
            })
            .await;
        match (shared, failed) {
            (_, Some(e)) => Err(e),
            (Some(events), None) => Ok(events.clone()),
            // The read this caller joined failed: its own, alone.
            (None, None) => {
                self.made.fetch_add(1, Ordering::Relaxed);
                Ok(Arc::new(read().await?))
            }
        }
    }

    /// How many reads were made so far (callers that joined one are not counted).
    pub fn made(&self) -> u64 {
        self.made.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn event(seq: i64) -> RecordedEvent {
        RecordedEvent {
            position: Position { commit: seq, seq },
            stream_id: "s".into(),
            version: seq as u64,
            event_id: uuid::Uuid::now_v7(),
            store_id: uuid::Uuid::nil(),
            event_type: "E".into(),
            schema_version: 1,
            payload: serde_json::json!({}),
            metadata: crate::Metadata::system("test"),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn callers_during_a_read_share_it_and_later_callers_read_again() {
        let shared = Arc::new(SharedReads::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let slow_read = |reads: Arc<AtomicUsize>| {
            move || {
                let reads = reads.clone();
                async move {
                    let n = reads.fetch_add(1, Ordering::SeqCst) as i64;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(vec![event(n + 1)])
                }
            }
        };
        let at = Position { commit: 0, seq: 0 };
        let tasks: Vec<_> = (0..7)
            .map(|_| {
                let (shared, read) = (shared.clone(), slow_read(reads.clone()));
                tokio::spawn(async move { shared.read(at, 500, read).await.unwrap() })
            })
            .collect();
        let mut pages = Vec::new();
        for t in tasks {
            pages.push(t.await.unwrap());
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "seven concurrent callers, one read");
        assert!(pages.iter().all(|p| p[0].position.seq == 1));
        // After it completed: a new read, never the old page.
        let again = shared.read(at, 500, slow_read(reads.clone())).await.unwrap();
        assert_eq!((reads.load(Ordering::SeqCst), again[0].position.seq), (2, 2));
        // Another page (other position or size) is never given this one.
        let other = tokio::spawn({
            let (shared, read) = (shared.clone(), slow_read(reads.clone()));
            async move { shared.read(at, 500, read).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let page = shared.read(Position { commit: 1, seq: 1 }, 500, slow_read(reads.clone())).await.unwrap();
        other.await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 4);
        assert_eq!(page.len(), 1);
    }

    #[tokio::test]
    async fn a_failed_read_fails_its_reader_and_the_others_read_alone() {
        let shared = Arc::new(SharedReads::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let at = Position { commit: 0, seq: 0 };
        let read = |reads: Arc<AtomicUsize>| {
            move || {
                let reads = reads.clone();
                async move {
                    let first = reads.fetch_add(1, Ordering::SeqCst) == 0;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    if first {
                        Err(crate::StoreError::Corrupt { position: at, reason: "injected".into() })
                    } else {
                        Ok(vec![event(9)])
                    }
                }
            }
        };
        let first = tokio::spawn({
            let (shared, read) = (shared.clone(), read(reads.clone()));
            async move { shared.read(at, 10, read).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = shared.read(at, 10, read(reads.clone())).await.unwrap();
        assert!(first.await.unwrap().is_err());
        assert_eq!((second[0].position.seq, reads.load(Ordering::SeqCst)), (9, 2));
    }
}
