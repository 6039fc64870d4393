//! What the batched row models (`items.rs`, `sales.rs`, `staff.rs`) share: the streams a batch touches, the
//! fold of their events over the rows loaded before the batch, and the totals that move.

use crate::views::View;
use crate::ProjectionError;
use eventstore::RecordedEvent;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// The aggregate id of a `kind-<uuid>` stream.
pub(crate) fn stream_uuid(e: &RecordedEvent) -> Result<Uuid, ProjectionError> {
    e.stream_id
        .split_once('-')
        .and_then(|(_, id)| Uuid::parse_str(id).ok())
        .ok_or_else(|| ProjectionError::Corrupt { position: e.position, reason: "stream id without a uuid".into() })
}

/// The events of a batch on streams named `prefix…`, their ids in first-touch order, and of
/// those the ones that may already have a row: streams whose first event here is not their
/// first (version 0). A stream that starts in this batch has had nothing applied (every event
/// is applied once, in log order), so there is no row of it to load — an `acquireItem` batch
/// reads nothing back.
pub(crate) fn touched<'a>(events: &'a [RecordedEvent], prefix: &str) -> Result<Touched<'a>, ProjectionError> {
    let mine: Vec<&RecordedEvent> = events.iter().filter(|e| e.stream_id.starts_with(prefix)).collect();
    let (mut ids, mut existing) = (Vec::new(), Vec::new());
    for e in &mine {
        let id = stream_uuid(e)?;
        if !ids.contains(&id) {
            ids.push(id);
            if e.version > 0 {
                existing.push(id);
            }
        }
    }
    Ok(Touched { ids, mine, existing })
}

/// What [`touched`] finds in a batch.
pub(crate) struct Touched<'a> {
    /// The streams' ids, in first-touch order.
    pub ids: Vec<Uuid>,
    /// Their events, in log order.
    pub mine: Vec<&'a RecordedEvent>,
    /// The ids that may already have a row (their first event here is not their first).
    pub existing: Vec<Uuid>,
}

/// Each touched row's total group (`G`) before the batch and the row after it.
pub(crate) struct Folded<G, V> {
    order: Vec<Uuid>,
    rows: HashMap<Uuid, (Option<G>, Option<V>)>,
}

impl<G: Ord + Clone, V: View> Folded<G, V> {
    /// Starts from the rows as loaded (`loaded`, missing ones do not exist yet); `group` names
    /// the total a row is counted in.
    pub(crate) fn new(ids: Vec<Uuid>, mut loaded: HashMap<Uuid, V>, group: impl Fn(&V) -> G) -> Self {
        let mut rows = HashMap::with_capacity(ids.len());
        for id in &ids {
            let before = loaded.remove(id);
            rows.insert(*id, (before.as_ref().map(&group), before));
        }
        Self { order: ids, rows }
    }

    /// Folds `events` (about the touched rows, in log order) into the rows; events about no
    /// row of the view are skipped.
    pub(crate) fn apply(&mut self, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
        for e in events {
            let Some((id, event)) = V::about(e)? else { continue };
            let slot = &mut self.rows.get_mut(&id).expect("every touched row is loaded").1;
            // The fold answers `None` only for an entity whose first event has not come.
            *slot = V::fold(slot.take(), e, event);
        }
        Ok(())
    }

    /// The rows the batch changed, in first-touch order.
    pub(crate) fn changed(&self) -> Vec<&V> {
        self.order.iter().filter_map(|id| self.rows[id].1.as_ref()).collect()
    }

    /// The totals' changes, per (store, group): each changed row leaves its old group and joins
    /// its new one.
    pub(crate) fn deltas(&self, store: impl Fn(&V) -> Uuid, group: impl Fn(&V) -> G) -> BTreeMap<(Uuid, G), i64> {
        let mut deltas = BTreeMap::new();
        for (old, after) in self.rows.values() {
            let Some(after) = after else { continue };
            let new = group(after);
            if old.as_ref() != Some(&new) {
                if let Some(old) = old {
                    *deltas.entry((store(after), old.clone())).or_default() -= 1;
                }
                *deltas.entry((store(after), new)).or_default() += 1;
            }
        }
        deltas.retain(|_, n| *n != 0);
        deltas
    }
}
