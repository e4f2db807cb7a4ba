//! Retry timing: exponential back-off, shared by every retry loop of the worker.

use std::time::Duration;

use crate::config::PipelineConfig;

/// Exponential back-off between `initial` and `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The worker's back-off: `pipeline.retry_backoff_initial_ms` doubling up to
    /// `pipeline.retry_backoff_max_ms`.
    pub fn from_config(pipeline: &PipelineConfig) -> Backoff {
        Backoff {
            initial: Duration::from_millis(pipeline.retry_backoff_initial_ms),
            max: Duration::from_millis(pipeline.retry_backoff_max_ms),
        }
    }

    /// The wait before retry number `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(0), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(400));
        assert_eq!(b.delay(30), Duration::from_secs(1));
    }
}
