//! The in-flight budget: how many records, and how many bytes, may be between the read task
//! and their acknowledgement. A record holds its share (a [`Slot`](super::Slot)) until it is
//! acknowledged or abandoned at the shutdown deadline.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Bytes charged per record on top of its size: the record's own structures, the event's
/// fixed fields and headers.
const RECORD_OVERHEAD_BYTES: usize = 4096;

/// Copies of a record's size that one in-flight record can hold at once: the input value,
/// the event built from it (bounded by its input, see `pipeline`) and the producer's copy.
const COPIES_PER_RECORD: usize = 3;

/// Records and bytes in flight, each behind a semaphore.
#[derive(Debug, Clone)]
pub(super) struct Budget {
    records: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_bytes: u32,
}

/// One record's share of the budget; released on drop.
#[derive(Debug)]
pub(super) struct Admission {
    _records: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

impl Budget {
    /// A budget of `max_records` records and `max_bytes` bytes (capped at 4 GiB, the most
    /// one semaphore acquisition can take).
    pub(super) fn new(max_records: usize, max_bytes: usize) -> Budget {
        let max_bytes = u32::try_from(max_bytes).unwrap_or(u32::MAX).max(1);
        Budget {
            records: Arc::new(Semaphore::new(max_records.max(1))),
            bytes: Arc::new(Semaphore::new(max_bytes as usize)),
            max_bytes,
        }
    }

    /// What a record of `value_len` bytes costs. A record larger than the whole budget costs
    /// the whole budget, so it is admitted alone rather than never.
    pub(super) fn cost(&self, value_len: usize) -> u32 {
        let bytes = value_len
            .saturating_mul(COPIES_PER_RECORD)
            .saturating_add(RECORD_OVERHEAD_BYTES);
        u32::try_from(bytes).unwrap_or(u32::MAX).min(self.max_bytes)
    }

    /// Admits a record now if both budgets allow it.
    pub(super) fn try_admit(&self, cost: u32) -> Option<Admission> {
        let records = match self.records.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => return None,
        };
        let bytes = self.bytes.clone().try_acquire_many_owned(cost).ok()?;
        Some(Admission {
            _records: records,
            _bytes: bytes,
        })
    }

    /// Waits until both budgets allow the record. Cancel-safe: dropping the future releases
    /// whatever it had taken.
    pub(super) async fn admit(&self, cost: u32) -> Option<Admission> {
        let records = self.records.clone().acquire_owned().await.ok()?;
        let bytes = self.bytes.clone().acquire_many_owned(cost).await.ok()?;
        Some(Admission {
            _records: records,
            _bytes: bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_bytes_both_bound_admission() {
        let budget = Budget::new(2, 20_000);
        let small = budget.cost(100);
        let a = budget.try_admit(small).unwrap();
        let b = budget.try_admit(small).unwrap();
        assert!(budget.try_admit(small).is_none(), "record budget used up");
        drop((a, b));
        let big = budget.cost(3_000);
        assert_eq!(big, 3_000 * 3 + 4096);
        let held = budget.try_admit(big).unwrap();
        assert!(budget.try_admit(big).is_none(), "byte budget used up");
        drop(held);
        assert!(budget.try_admit(big).is_some());
    }

    #[test]
    fn a_record_larger_than_the_budget_is_admitted_alone() {
        let budget = Budget::new(8, 10_000);
        let huge = budget.cost(1 << 20);
        assert_eq!(huge, 10_000);
        let held = budget.try_admit(huge).unwrap();
        assert!(budget.try_admit(budget.cost(1)).is_none());
        drop(held);
    }
}
