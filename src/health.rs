//! Liveness and readiness state, set by the Kafka clients and the worker, read by the
//! operations HTTP server.
//!
//! - **Ready** while connected to the broker and not shutting down.
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
}

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
    /// Ready while connected to the broker and not shutting down (assigned or waiting for
    /// an assignment both count).
    pub fn is_ready(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
            && !self.shutting_down.load(Ordering::Relaxed)
            && !self.fatal.is_cancelled()
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
