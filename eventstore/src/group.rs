//! Group commit: appends that arrive while another is being written are coalesced into one
//! transaction (one round of the database's commit work, one fsync), each keeping its own
//! expected-version check and its own all-or-nothing outcome.
//!
//! Every backend runs one committer task. Callers queue a [`Job`] and wait for its own result.
//! The committer takes what is queued, forms a group and hands it to the backend's
//! [`GroupWriter::write_group`], which decides each job against the current stream heads: a job
//! whose expectation fails is answered with its conflict and is simply not written, so it never
//! fails or delays the others beyond their shared transaction. Two rules keep groups simple:
//! - a job that creates data keys, or touches a stream an earlier job of the group touches,
//!   waits for the next group (a key race or a same-stream race then cannot involve others);
//! - if the group's transaction fails as a whole (a database error, or a race with another
//!   process that the group cannot settle per job), nothing of it was written and every job is
//!   written again alone ([`GroupWriter::write_one`]), so each still gets its own outcome; a
//!   writer that commits a group in several rounds answers the jobs a failed later round left
//!   undecided with `None`, and only those are written alone.

use crate::backend::StreamBatch;
use crate::crypto::KeyRecord;
use crate::error::{Result, StoreError};
use crate::types::AppendResult;
use async_trait::async_trait;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Most jobs in one group.
pub const MAX_JOBS: usize = 256;
/// Most events in one group (a single large append is never split: it forms a group alone).
pub const MAX_EVENTS: usize = 2_000;
/// Appends waiting for the committer before callers wait to queue.
const QUEUE: usize = 4_096;

/// One caller's append, waiting in the queue.
pub struct Job {
    pub batches: Vec<StreamBatch>,
    pub new_keys: Vec<KeyRecord>,
    reply: oneshot::Sender<Result<Vec<AppendResult>>>,
}

impl Job {
    fn events(&self) -> usize {
        self.batches.iter().map(|b| b.events.len()).sum()
    }
}

/// How a backend writes a group, and a job alone.
#[async_trait]
pub trait GroupWriter: Send + Sync + 'static {
    /// Writes the jobs together and returns each job's outcome, in order: `None` for a job it
    /// did not decide (nothing of it written), which the committer then writes alone. `Err`
    /// means nothing of any job was written.
    async fn write_group(&self, jobs: &[&Job]) -> Result<Vec<Option<Result<Vec<AppendResult>>>>>;

    /// Writes one job in a transaction of its own.
    async fn write_one(&self, batches: &[StreamBatch], new_keys: &[KeyRecord]) -> Result<Vec<AppendResult>>;

    /// Called once after every group or lone job that wrote something (wakes local readers).
    fn written(&self) {}
}

/// The queue in front of a backend's committer. Dropping it ends the committer task once the
/// queued jobs are written.
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the committer on the current tokio runtime.
    pub fn start<W: GroupWriter>(writer: Arc<W>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(writer, rx));
        Self { queue }
    }

    /// Queues the append and waits for its own outcome.
    pub async fn append(&self, batches: Vec<StreamBatch>, new_keys: Vec<KeyRecord>) -> Result<Vec<AppendResult>> {
        let (reply, outcome) = oneshot::channel();
        self.queue.send(Job { batches, new_keys, reply }).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Database(sqlx::Error::WorkerCrashed)
}

async fn run<W: GroupWriter>(writer: Arc<W>, mut rx: mpsc::Receiver<Job>) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match rx.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
            // Callers answered by the last group are usually about to queue their next append:
            // let them run first, so the group takes them instead of leaving alone.
            tokio::task::yield_now().await;
        }
        while waiting.len() < MAX_JOBS {
            match rx.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        let (group, rest) = form_group(std::mem::take(&mut waiting));
        waiting = rest;
        commit(writer.as_ref(), group).await;
    }
}

/// Takes the next group off the queue: the first job, then every later job (in order) that
/// creates no key, shares no stream with one already taken, and fits the limits. A first job
/// that creates keys goes alone. The rest keep their order for the next group.
fn form_group(mut queue: VecDeque<Job>) -> (Vec<Job>, VecDeque<Job>) {
    let first = queue.pop_front().expect("a group starts from a queued job");
    if !first.new_keys.is_empty() {
        return (vec![first], queue);
    }
    let mut events = first.events();
    let mut streams: HashSet<String> = first.batches.iter().map(|b| b.stream_id.clone()).collect();
    let mut group = vec![first];
    let mut rest = VecDeque::with_capacity(queue.len());
    for job in queue {
        let fits = group.len() < MAX_JOBS && events + job.events() <= MAX_EVENTS;
        let disjoint = job.batches.iter().all(|b| !streams.contains(&b.stream_id));
        if fits && disjoint && job.new_keys.is_empty() {
            events += job.events();
            streams.extend(job.batches.iter().map(|b| b.stream_id.clone()));
            group.push(job);
        } else {
            rest.push_back(job);
        }
    }
    (group, rest)
}

async fn commit<W: GroupWriter>(writer: &W, group: Vec<Job>) {
    if group.len() == 1 && !group[0].new_keys.is_empty() {
        let job = group.into_iter().next().expect("one job");
        let outcome = writer.write_one(&job.batches, &job.new_keys).await;
        if outcome.is_ok() {
            writer.written();
        }
        let _ = job.reply.send(outcome);
        return;
    }
    let refs: Vec<&Job> = group.iter().collect();
    match writer.write_group(&refs).await {
        Ok(outcomes) => {
            debug_assert_eq!(outcomes.len(), group.len());
            if outcomes.iter().any(|o| matches!(o, Some(Ok(_)))) {
                writer.written();
            }
            metrics::histogram!("ic_append_group_jobs").record(group.len() as f64);
            for (job, outcome) in group.into_iter().zip(outcomes) {
                let outcome = match outcome {
                    Some(outcome) => outcome,
                    None => {
                        let alone = writer.write_one(&job.batches, &job.new_keys).await;
                        if alone.is_ok() {
                            writer.written();
                        }
                        alone
                    }
                };
                let _ = job.reply.send(outcome);
            }
        }
        Err(e) => {
            // Nothing was written: each job alone, so each gets its own outcome.
            tracing::debug!(error = %e, jobs = group.len(), "group append failed as a whole; writing its jobs one by one");
            for job in group {
                let outcome = writer.write_one(&job.batches, &job.new_keys).await;
                if outcome.is_ok() {
                    writer.written();
                }
                let _ = job.reply.send(outcome);
            }
        }
    }
}

/// Stream heads kept; the cache starts over when full (a miss costs one read per group).
const HEADS_KEPT: usize = 100_000;

/// A stream's last event: its version and hash.
pub(crate) type Head = (u64, Vec<u8>);

/// Stream heads seen by this process. A hint only: every append re-checks its heads in SQL.
#[derive(Default)]
pub(crate) struct Heads(Mutex<HashMap<String, Head>>);

impl Heads {
    pub(crate) fn get(&self, stream_id: &str) -> Option<Head> {
        self.0.lock().expect("heads lock").get(stream_id).cloned()
    }

    pub(crate) fn put(&self, stream_id: &str, head: Head) {
        let mut map = self.0.lock().expect("heads lock");
        if map.len() >= HEADS_KEPT && !map.contains_key(stream_id) {
            map.clear();
        }
        map.insert(stream_id.to_owned(), head);
    }

    /// After a read of a stream's events from some version with this `limit`: a read that
    /// reached the end (fewer than `limit` events) ends at the stream's head as of the read,
    /// the hint the next append to it is chained on (re-checked when written).
    pub(crate) fn saw_read(&self, stream_id: &str, events: &[crate::StoredEvent], limit: usize) {
        if let Some(last) = events.last().filter(|_| events.len() < limit) {
            self.put(stream_id, (last.version, last.hash.clone()));
        }
    }

    pub(crate) fn forget(&self, stream_id: &str) {
        self.0.lock().expect("heads lock").remove(stream_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ExpectedVersion, SealedEvent};

    fn job(streams: &[&str], keys: bool) -> Job {
        let (reply, _) = oneshot::channel();
        let batches = streams
            .iter()
            .map(|s| StreamBatch {
                stream_id: (*s).to_owned(),
                expected: ExpectedVersion::Any,
                events: vec![SealedEvent {
                    event_id: uuid::Uuid::now_v7(),
                    store_id: uuid::Uuid::nil(),
                    event_type: "E".into(),
                    schema_version: 1,
                    payload: "{}".into(),
                    metadata: "{}".into(),
                }],
            })
            .collect();
        let new_keys = if keys {
            vec![crate::MasterKey::generate().new_data_key(
                uuid::Uuid::nil(),
                uuid::Uuid::nil(),
                domain::KeyClass::Profile,
                chrono::Utc::now(),
            )]
        } else {
            vec![]
        };
        Job { batches, new_keys, reply }
    }

    fn names(jobs: &[Job]) -> Vec<String> {
        jobs.iter().map(|j| j.batches.iter().map(|b| b.stream_id.as_str()).collect::<Vec<_>>().join("+")).collect()
    }

    #[test]
    fn a_group_takes_disjoint_keyless_jobs_and_leaves_the_rest_in_order() {
        let queue = VecDeque::from(vec![
            job(&["a"], false),
            job(&["b", "c"], false),
            job(&["a"], false),      // same stream as the first: next group
            job(&["d"], true),       // creates a key: alone, later
            job(&["c", "e"], false), // shares c: next group
            job(&["f"], false),
        ]);
        let (group, rest) = form_group(queue);
        assert_eq!(names(&group), ["a", "b+c", "f"]);
        let rest: Vec<Job> = rest.into_iter().collect();
        assert_eq!(names(&rest), ["a", "d", "c+e"]);
        let (group, rest) = form_group(rest.into_iter().collect());
        assert_eq!(names(&group), ["a", "c+e"]);
        let (group, rest) = form_group(rest);
        assert_eq!(names(&group), ["d"], "a job that creates keys goes alone");
        assert!(rest.is_empty());
    }

    #[test]
    fn a_group_stays_within_its_event_limit_but_a_large_append_still_goes() {
        let mut big = job(&["big"], false);
        let e = big.batches[0].events[0].clone();
        big.batches[0].events = vec![e; MAX_EVENTS + 10];
        let (group, rest) = form_group(VecDeque::from(vec![big, job(&["x"], false)]));
        assert_eq!(names(&group), ["big"]);
        assert_eq!(rest.len(), 1);
    }
}
