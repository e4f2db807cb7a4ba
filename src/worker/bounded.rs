//! End-offset bookkeeping for bounded runs (replays): which partitions are done.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::Consumer as _;
use rdkafka::topic_partition_list::Offset;

use crate::metrics::Metrics;
use crate::source::Consumer;

pub(super) fn set_remaining(metrics: &Metrics, (topic, partition): &(String, i32), n: i64) {
    metrics
        .replay_remaining
        .with_label_values(&[topic, &partition.to_string()])
        .set(n);
}

/// At an end-of-partition event for `partition`: the planned partitions of that number whose
/// position reached their end are done.
pub(super) fn drop_finished_partitions(
    consumer: &Consumer,
    partition: i32,
    ends: &mut HashMap<(String, i32), i64>,
    metrics: &Metrics,
) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    for e in positions.elements() {
        if e.partition() != partition {
            continue;
        }
        let key = (e.topic().to_string(), e.partition());
        let Some(&end) = ends.get(&key) else {
            continue;
        };
        // EOF short of the end (or with no position) means retention deleted part of the
        // planned range after planning: only then (rarely) ask the broker where the log
        // starts now.
        let log_start = match e.offset() {
            Offset::Offset(pos) if pos >= end => None,
            _ => crate::runtime::blocking(|| {
                consumer.fetch_watermarks(&key.0, key.1, Duration::from_secs(5))
            })
            .ok()
            .map(|(low, _)| low),
        };
        if partition_done(e.offset(), log_start, end) {
            ends.remove(&key);
            set_remaining(metrics, &key, 0);
        }
    }
}

/// Whether a bounded partition has nothing left below `end`: its position reached the end,
/// or the log now starts at or past it (`log_start`, when the broker was asked).
fn partition_done(position: Offset, log_start: Option<i64>, end: i64) -> bool {
    match position {
        Offset::Offset(pos) if pos >= end => true,
        _ => log_start.is_some_and(|low| low >= 0 && low >= end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_partition_is_done_at_its_end_or_when_retention_deleted_the_rest() {
        // Read up to the end.
        assert!(partition_done(Offset::Offset(10), Some(0), 10));
        assert!(!partition_done(Offset::Offset(9), Some(0), 10));
        // Nothing read (no position): done only if the log now starts at or past the end.
        assert!(partition_done(Offset::Invalid, Some(12), 10));
        assert!(partition_done(Offset::Invalid, Some(10), 10));
        assert!(!partition_done(Offset::Invalid, Some(3), 10));
        // The broker could not be asked (an error) or answered no offset (negative).
        assert!(!partition_done(Offset::Invalid, None, 10));
        assert!(!partition_done(Offset::Invalid, Some(-1001), 10));
        // Behind the end but the rest was deleted.
        assert!(partition_done(Offset::Offset(4), Some(10), 10));
    }
}
