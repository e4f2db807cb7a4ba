//! Gap-safe offset tracking: per partition, the next offset to commit is the lowest offset
//! still in flight, or one past the highest offset seen when nothing is in flight. A later
//! success can therefore never commit past an earlier message that failed or is pending.
//!
//! Pure bookkeeping, no Kafka; shared behind a mutex by the worker's tasks and the
//! rebalance callback.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A topic and partition.
pub type TopicPartition = (String, i32);

#[derive(Debug, Default)]
struct PartitionState {
    /// Offsets read but not finished, with their record timestamps (ms) if any.
    pending: BTreeMap<i64, Option<i64>>,
    /// One past the highest offset read.
    next: i64,
    /// Record timestamp (ms) of the most recently finished record.
    last_finished_ts: Option<i64>,
}

/// Tracks in-flight offsets for every partition this worker reads.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<TopicPartition, PartitionState>,
}

impl OffsetTracker {
    /// Records that `offset` was read and is now in flight.
    pub fn begin(&mut self, topic: &str, partition: i32, offset: i64, timestamp_ms: Option<i64>) {
        let state = self
            .partitions
            .entry((topic.to_string(), partition))
            .or_default();
        state.pending.insert(offset, timestamp_ms);
        state.next = state.next.max(offset + 1);
    }

    /// Records that `offset` is finished (its output acknowledged). Returns the partition's
    /// new commit position if it moved, `None` otherwise (or if the partition is no longer
    /// tracked, e.g. after a revoke).
    pub fn finish(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let key = (topic.to_string(), partition);
        let state = self.partitions.get_mut(&key)?;
        let before = Self::position_of(state);
        let ts = state.pending.remove(&offset)?;
        if ts.is_some() {
            state.last_finished_ts = ts;
        }
        let after = Self::position_of(state);
        (after != before).then_some(after)
    }

    fn position_of(state: &PartitionState) -> i64 {
        state.pending.keys().next().copied().unwrap_or(state.next)
    }

    /// The offset to commit for a partition: everything before it is finished.
    pub fn commit_position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.partitions
            .get(&(topic.to_string(), partition))
            .map(Self::position_of)
    }

    /// Commit positions of every tracked partition.
    pub fn commit_positions(&self) -> Vec<(TopicPartition, i64)> {
        self.partitions
            .iter()
            .map(|(tp, s)| (tp.clone(), Self::position_of(s)))
            .collect()
    }

    /// In-flight records in the given partitions (all partitions when `None`).
    pub fn pending_in(&self, partitions: Option<&[TopicPartition]>) -> usize {
        match partitions {
            None => self.partitions.values().map(|s| s.pending.len()).sum(),
            Some(tps) => tps
                .iter()
                .filter_map(|tp| self.partitions.get(tp))
                .map(|s| s.pending.len())
                .sum(),
        }
    }

    /// Timestamp (ms) of the oldest in-flight record of a partition, or of the last
    /// finished one when none is in flight.
    pub fn oldest_unfinished_ts(&self, topic: &str, partition: i32) -> (Option<i64>, Option<i64>) {
        match self.partitions.get(&(topic.to_string(), partition)) {
            None => (None, None),
            Some(s) => (
                s.pending.values().next().copied().flatten(),
                s.last_finished_ts,
            ),
        }
    }

    /// Forgets every partition (after the final commit, so that the revoke that closing
    /// the consumer triggers has nothing left to wait for).
    pub fn clear(&mut self) {
        self.partitions.clear();
    }

    /// Whether `offset` is still in flight here: false once its partition was revoked.
    pub fn is_pending(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.partitions
            .get(&(topic.to_string(), partition))
            .is_some_and(|s| s.pending.contains_key(&offset))
    }

    /// Forgets a partition (after it was revoked and committed).
    pub fn remove(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_string(), partition));
    }
}

/// The offset tracker with a condition variable, so a rebalance can wait for a drain.
#[derive(Debug, Default)]
pub struct SharedTracker {
    inner: Mutex<OffsetTracker>,
    changed: Condvar,
}

impl SharedTracker {
    /// Locks the tracker; a poisoned lock is recovered (the tracker stays consistent
    /// because every mutation is a single call).
    pub fn lock(&self) -> MutexGuard<'_, OffsetTracker> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes waiters after a finish.
    pub fn notify(&self) {
        self.changed.notify_all();
    }

    /// Waits until no record of `partitions` is in flight, or the deadline passes.
    /// Returns the number still in flight.
    ///
    /// The rebalance callback runs inside the consumer's poll, on a tokio worker thread.
    /// On a multi-thread runtime the wait hands that worker's other tasks (the order and
    /// ack stages, which finish the in-flight records) to another thread first, so the
    /// drain can progress even with a single worker thread (a one-vCPU pod).
    pub fn wait_drained(&self, partitions: &[TopicPartition], timeout: Duration) -> usize {
        crate::runtime::blocking(|| self.wait_drained_blocking(partitions, timeout))
    }

    fn wait_drained_blocking(&self, partitions: &[TopicPartition], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock();
        loop {
            let pending = guard.pending_in(Some(partitions));
            let now = Instant::now();
            if pending == 0 || now >= deadline {
                return pending;
            }
            guard = match self.changed.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn later_success_never_commits_past_an_earlier_pending_offset() {
        let mut t = OffsetTracker::default();
        for o in 10..15 {
            t.begin("a", 0, o, None);
        }
        assert_eq!(t.finish("a", 0, 12), None);
        assert_eq!(t.finish("a", 0, 14), None);
        assert_eq!(t.commit_position("a", 0), Some(10));
        assert_eq!(t.finish("a", 0, 10), Some(11));
        assert_eq!(t.finish("a", 0, 11), Some(13));
        assert_eq!(t.finish("a", 0, 13), Some(15));
    }

    #[test]
    fn gaps_in_offsets_are_skipped_safely() {
        let mut t = OffsetTracker::default();
        t.begin("a", 1, 3, None);
        t.begin("a", 1, 7, None);
        assert_eq!(t.finish("a", 1, 7), None);
        assert_eq!(t.finish("a", 1, 3), Some(8));
    }

    #[test]
    fn unknown_partition_and_duplicate_finish_are_ignored() {
        let mut t = OffsetTracker::default();
        assert_eq!(t.finish("a", 0, 1), None);
        t.begin("a", 0, 1, None);
        assert_eq!(t.finish("a", 0, 1), Some(2));
        assert_eq!(t.finish("a", 0, 1), None);
        t.remove("a", 0);
        assert_eq!(t.commit_position("a", 0), None);
    }

    proptest! {
        /// Whatever the completion order, the commit position is always the smallest
        /// unfinished offset, and reaches the end once all are finished.
        #[test]
        fn commit_position_is_the_contiguous_finished_prefix(order in Just((0..40i64).collect::<Vec<_>>()).prop_shuffle()) {
            let mut t = OffsetTracker::default();
            for o in 0..40 { t.begin("t", 0, o, Some(o)); }
            let mut done = std::collections::BTreeSet::new();
            for o in order {
                t.finish("t", 0, o);
                done.insert(o);
                let expected = (0..40).find(|x| !done.contains(x)).unwrap_or(40);
                prop_assert_eq!(t.commit_position("t", 0), Some(expected));
            }
        }
    }
}

#[cfg(test)]
mod shared_tracker_tests {
    use std::sync::Arc;

    use super::*;

    fn tracker_with_one_in_flight() -> Arc<SharedTracker> {
        let tracker = Arc::new(SharedTracker::default());
        tracker.lock().begin("in", 0, 7, None);
        tracker
    }

    async fn finish_later(tracker: Arc<SharedTracker>) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        tracker.lock().finish("in", 0, 7);
        tracker.notify();
    }

    /// With a single tokio worker thread (a one-vCPU pod), the task that finishes the
    /// in-flight record must still run while a rebalance waits for the drain.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn drain_wait_lets_other_tasks_finish_on_one_worker_thread() {
        let tracker = tracker_with_one_in_flight();
        let waiter = tracker.clone();
        let left = tokio::spawn(async move {
            waiter.wait_drained(&[("in".to_string(), 0)], Duration::from_secs(5))
        });
        tokio::spawn(finish_later(tracker));
        assert_eq!(left.await.unwrap(), 0);
    }

    #[test]
    fn drain_wait_outside_a_runtime_times_out_with_the_count() {
        let tracker = tracker_with_one_in_flight();
        let left = tracker.wait_drained(&[("in".to_string(), 0)], Duration::from_millis(20));
        assert_eq!(left, 1);
    }
}
