//! Aggregate states kept in memory between commands, for streams that hold no personal data.
//!
//! A command loads its aggregate by folding the stream's events. A stream that grows without
//! end — the store's invoice book takes an event per confirmed sale — would make every command
//! on it slower than the last. For such a stream a server keeps the state it last folded, with
//! the version it had reached, and the next load reads only the events after that version: the
//! log stays the only truth (events are never rewritten, and the events since are always read),
//! so another server's appends are seen as before.
//!
//! Only aggregates that declare they hold no personal data may be kept (`commands::load`
//! checks `Aggregate::KEEP_STATE`): an erasure must never leave plaintext behind in a cache.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// States kept; the memory starts over when full.
const KEPT: usize = 4_096;

/// A stream's state as last folded: the store its events belong to, the version reached, and
/// the state (type-erased).
#[derive(Clone)]
struct Kept {
    store_id: Uuid,
    version: u64,
    state: Arc<dyn Any + Send + Sync>,
}

#[derive(Default)]
pub struct States(Mutex<HashMap<String, Kept>>);

impl States {
    /// The state of `stream_id` as kept for `store_id`, and the version it is at.
    pub fn get<T: Clone + Send + Sync + 'static>(&self, stream_id: &str, store_id: Uuid) -> Option<(u64, T)> {
        let kept = self.0.lock().expect("states lock").get(stream_id).cloned()?;
        if kept.store_id != store_id {
            return None;
        }
        Some((kept.version, kept.state.downcast_ref::<T>()?.clone()))
    }

    /// Keeps `state`, the fold of `stream_id` up to `version`, unless a later one is kept.
    pub fn put<T: Send + Sync + 'static>(&self, stream_id: &str, store_id: Uuid, version: u64, state: T) {
        let mut kept = self.0.lock().expect("states lock");
        if kept.get(stream_id).is_some_and(|k| k.store_id == store_id && k.version >= version) {
            return;
        }
        if kept.len() >= KEPT && !kept.contains_key(stream_id) {
            kept.clear();
        }
        kept.insert(stream_id.to_owned(), Kept { store_id, version, state: Arc::new(state) });
    }

    /// How many states are kept (for tests and metrics).
    pub fn len(&self) -> usize {
        self.0.lock().expect("states lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
