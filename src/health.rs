//! Liveness and readiness state, set by the Kafka clients and the worker, read by the
//! operations HTTP server.
//!
//! - **Ready** while connected to the broker, not shutting down, and (a group member) not
//!   left without partitions for longer than `kafka.unassigned_timeout_ms`: a member the
//!   group forgot (a broker that never reassigns it after a session timeout) must say so.
//! - **Live** unless a fatal client error happened, or records are in flight and none has
//!   been acknowledged for `pipeline.stall_timeout_ms` (the progress watchdog), so a worker
//!   that cannot make progress is restarted by its orchestrator instead of idling green.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Liveness and readiness, shared by the clients, the worker and the HTTP server.
#[derive(Debug)]
pub struct Health {
    connected: AtomicBool,
    shutting_down: AtomicBool,
    /// Cancelled on a fatal client error; the worker stops and exits non-zero.
    fatal: CancellationToken,
    fatal_reason: Mutex<Option<String>>,
    /// Time origin for `last_progress_ms`.
    origin: Instant,
    /// Milliseconds after `origin` of the last acknowledgement (or of the start).
    last_progress_ms: AtomicU64,
    /// Zero until the worker sets it: no watchdog.
    stall_timeout_ms: AtomicU64,
    /// Milliseconds after `origin` since the worker holds no partitions; `HOLDS_PARTITIONS`
    /// while it holds some.
    unassigned_since_ms: AtomicU64,
    /// Zero: readiness ignores the assignment (replay, or switched off).
    unassigned_timeout_ms: AtomicU64,
    /// The current unassigned spell was already reported (logged once).
    unassigned_reported: AtomicBool,
    /// A record whose partition cannot move on (its dead-letter record refused in both
    /// forms): not ready until a restart retries it.
    stuck: Mutex<Option<String>>,
}

const HOLDS_PARTITIONS: u64 = u64::MAX;

impl Default for Health {
    fn default() -> Self {
        Health {
            connected: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            fatal: CancellationToken::new(),
            fatal_reason: Mutex::new(None),
            origin: Instant::now(),
            last_progress_ms: AtomicU64::new(0),
            stall_timeout_ms: AtomicU64::new(0),
            unassigned_since_ms: AtomicU64::new(0),
            unassigned_timeout_ms: AtomicU64::new(0),
            unassigned_reported: AtomicBool::new(false),
            stuck: Mutex::new(None),
        }
    }
}

impl Health {
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }
    /// Ready while connected to the broker, not shutting down, and not without partitions
    /// for longer than the unassigned timeout (waiting for a first assignment counts as
    /// unassigned).
    pub fn is_ready(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
            && !self.shutting_down.load(Ordering::Relaxed)
            && !self.fatal.is_cancelled()
            && self.unassigned_too_long().is_none()
            && self.stuck().is_none()
    }

    /// A partition cannot move on past a record (the first reason wins): `/readyz` fails
    /// from now on, the other partitions keep flowing.
    pub fn set_stuck(&self, reason: String) {
        let mut slot = self.stuck.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
    }

    /// Why a partition is stuck, if one is.
    pub fn stuck(&self) -> Option<String> {
        self.stuck.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Arms the unassigned check (a group member); counts from now if nothing is assigned.
    pub fn set_unassigned_timeout(&self, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        if self.unassigned_since_ms.load(Ordering::Relaxed) != HOLDS_PARTITIONS {
            self.unassigned_since_ms
                .store(self.now_ms(), Ordering::Relaxed);
        }
        self.unassigned_timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// The worker now holds `partitions` partitions (after a rebalance).
    pub fn set_assigned(&self, partitions: usize) {
        if partitions > 0 {
            self.unassigned_since_ms
                .store(HOLDS_PARTITIONS, Ordering::Relaxed);
            self.unassigned_reported.store(false, Ordering::Relaxed);
        } else if self.unassigned_since_ms.load(Ordering::Relaxed) == HOLDS_PARTITIONS {
            self.unassigned_since_ms
                .store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// How long the worker has held no partitions, once that is longer than the unassigned
    /// timeout; `None` while it holds some, within the timeout, or with the check off.
    pub fn unassigned_too_long(&self) -> Option<Duration> {
        let timeout = self.unassigned_timeout_ms.load(Ordering::Relaxed);
        let since = self.unassigned_since_ms.load(Ordering::Relaxed);
        if timeout == 0 || since == HOLDS_PARTITIONS {
            return None;
        }
        let spell = self.now_ms().saturating_sub(since);
        (spell >= timeout).then(|| Duration::from_millis(spell))
    }

    /// Like [`Health::unassigned_too_long`], but only the first time per unassigned spell:
    /// for the one log line that says so.
    pub fn unassigned_to_report(&self) -> Option<Duration> {
        let spell = self.unassigned_too_long()?;
        (!self.unassigned_reported.swap(true, Ordering::Relaxed)).then_some(spell)
    }

    /// Records a fatal client error (the first one wins) and wakes the worker.
    pub fn set_fatal(&self, reason: String) {
        let mut slot = self.fatal_reason.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.fatal.cancel();
    }

    /// The fatal error, if one happened.
    pub fn fatal_reason(&self) -> Option<String> {
        self.fatal_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Resolves when a fatal error happens.
    pub async fn fatal(&self) {
        self.fatal.cancelled().await;
    }

    /// Arms the progress watchdog.
    pub fn set_stall_timeout(&self, timeout: Duration) {
        self.mark_progress();
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.stall_timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// A record was acknowledged (or the worker became idle): progress.
    pub fn mark_progress(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_progress_ms.store(now, Ordering::Relaxed);
    }

    /// Live unless a fatal error happened or, with `in_flight` records, nothing was
    /// acknowledged for the stall timeout.
    pub fn is_live(&self, in_flight: i64) -> bool {
        if self.fatal.is_cancelled() {
            return false;
        }
        let timeout = self.stall_timeout_ms.load(Ordering::Relaxed);
        if timeout == 0 || in_flight <= 0 {
            return true;
        }
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        now.saturating_sub(self.last_progress_ms.load(Ordering::Relaxed)) < timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_fails_liveness_only_with_records_in_flight_and_no_progress() {
        let h = Health::default();
        assert!(h.is_live(5), "no watchdog armed");
        h.set_stall_timeout(Duration::from_millis(30));
        assert!(h.is_live(5));
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.is_live(0), "idle is not stalled");
        assert!(!h.is_live(5), "in flight and no progress");
        h.mark_progress();
        assert!(h.is_live(5));
    }

    #[test]
    fn readiness_fails_after_the_unassigned_timeout_and_recovers_on_assignment() {
        let h = Health::default();
        h.set_connected(true);
        assert!(h.is_ready(), "check not armed (replay)");
        h.set_unassigned_timeout(Duration::from_millis(30));
        assert!(h.is_ready(), "within the timeout");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!h.is_ready(), "never assigned");
        assert!(h.unassigned_to_report().is_some());
        assert!(
            h.unassigned_to_report().is_none(),
            "reported once per spell"
        );
        h.set_assigned(2);
        assert!(h.is_ready());
        h.set_assigned(0);
        assert!(h.is_ready(), "a revoke starts a new spell");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!h.is_ready());
        assert!(
            h.unassigned_to_report().is_some(),
            "a new spell is reported again"
        );
        h.set_assigned(1);
        assert!(h.is_ready() && h.unassigned_too_long().is_none());
    }

    #[test]
    fn fatal_error_fails_both_probes_and_keeps_the_first_reason() {
        let h = Health::default();
        h.set_connected(true);
        assert!(h.is_ready() && h.is_live(0));
        h.set_fatal("first".into());
        h.set_fatal("second".into());
        assert!(!h.is_ready());
        assert!(!h.is_live(0));
        assert_eq!(h.fatal_reason().as_deref(), Some("first"));
    }
}
