//! The circuit breaker: a pure state machine over articles, with the clock passed in.
//!
//! Closed: every article may call the remote model; `failures` consecutive failed articles
//! open it. Open: no article calls it until `open_for` has passed. Half-open: the first
//! article after that is the probe; the others keep using the fallback until the probe
//! answers. A successful probe closes the breaker; a failed one opens it again.
//!
//! The breaker can never stay half-open: a probe that has not reported within
//! `probe_timeout` (its task panicked or was dropped, so nobody will report) is taken as
//! lost, and the next article becomes the probe. Every deadline is computed with checked
//! arithmetic from durations capped at [`MAX_PERIOD`], so no configured or answered
//! duration can overflow the clock.

use std::time::{Duration, Instant};

/// Longest open period or probe timeout honoured; longer ones are cut to this.
pub const MAX_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);

/// `now + period`, with the period capped at [`MAX_PERIOD`]; on a clock that cannot
/// represent that, `now` (an expired deadline errs on the side of trying again).
fn deadline(now: Instant, period: Duration) -> Instant {
    now.checked_add(period.min(MAX_PERIOD)).unwrap_or(now)
}

/// The breaker's state, as the `newsflow_remote_circuit_state` gauge reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    /// 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }
}

/// Permission for one article to call the remote model; hand it back with the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    /// Admitted while closed.
    Normal,
    /// The half-open probe: its outcome decides the state.
    Probe,
}

#[derive(Debug, Clone, Copy)]
enum Inner {
    Closed {
        consecutive: u32,
    },
    Open {
        until: Instant,
    },
    /// The probe is out; past `until` it is taken as lost.
    HalfOpen {
        until: Instant,
    },
}

/// Consecutive-failure circuit breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    failures: u32,
    open_for: Duration,
    probe_timeout: Duration,
    inner: Inner,
}

impl Breaker {
    /// Opens after `failures` (at least 1) consecutive failed articles, for `open_for`. A
    /// probe that has not reported after `probe_timeout` (set it above the longest an
    /// article can take) is lost, and another article probes.
    pub fn new(failures: u32, open_for: Duration, probe_timeout: Duration) -> Self {
        Breaker {
            failures: failures.max(1),
            open_for: open_for.min(MAX_PERIOD),
            probe_timeout: probe_timeout.min(MAX_PERIOD),
            inner: Inner::Closed { consecutive: 0 },
        }
    }

    pub fn state(&self) -> State {
        match self.inner {
            Inner::Closed { .. } => State::Closed,
            Inner::Open { .. } => State::Open,
            Inner::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// May an article call the remote model now? `None` sends it to the fallback.
    pub fn admit(&mut self, now: Instant) -> Option<Ticket> {
        match self.inner {
            Inner::Closed { .. } => Some(Ticket::Normal),
            Inner::Open { until } | Inner::HalfOpen { until } if now >= until => {
                self.inner = Inner::HalfOpen {
                    until: deadline(now, self.probe_timeout),
                };
                Some(Ticket::Probe)
            }
            Inner::Open { .. } | Inner::HalfOpen { .. } => None,
        }
    }

    /// The article's remote call succeeded.
    pub fn success(&mut self, ticket: Ticket) {
        match (ticket, self.inner) {
            (Ticket::Probe, Inner::HalfOpen { .. }) | (Ticket::Normal, Inner::Closed { .. }) => {
                self.inner = Inner::Closed { consecutive: 0 };
            }
            // A straggler admitted before the breaker opened decides nothing.
            _ => {}
        }
    }

    /// The article's remote call failed (after its retries, or its budget ran out).
    pub fn failure(&mut self, ticket: Ticket, now: Instant) {
        match (ticket, self.inner) {
            (Ticket::Probe, Inner::HalfOpen { .. }) => self.open(now),
            (Ticket::Normal, Inner::Closed { consecutive }) => {
                let consecutive = consecutive + 1;
                if consecutive >= self.failures {
                    self.open(now);
                } else {
                    self.inner = Inner::Closed { consecutive };
                }
            }
            _ => {}
        }
    }

    fn open(&mut self, now: Instant) {
        self.inner = Inner::Open {
            until: deadline(now, self.open_for),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Duration = Duration::from_secs(10);
    const PROBE: Duration = Duration::from_secs(30);

    #[test]
    fn opens_after_consecutive_failures_only() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, OPEN, PROBE);
        for _ in 0..2 {
            let t = b.admit(t0).unwrap();
            b.failure(t, t0);
        }
        // A success in between resets the count.
        let t = b.admit(t0).unwrap();
        b.success(t);
        for _ in 0..2 {
            let t = b.admit(t0).unwrap();
            b.failure(t, t0);
        }
        assert_eq!(b.state(), State::Closed);
        let t = b.admit(t0).unwrap();
        b.failure(t, t0);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.admit(t0 + Duration::from_secs(9)), None);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_success_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, OPEN, PROBE);
        let t = b.admit(t0).unwrap();
        b.failure(t, t0);
        let later = t0 + OPEN;
        assert_eq!(b.admit(later), Some(Ticket::Probe));
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(b.admit(later), None, "only one probe at a time");
        b.success(Ticket::Probe);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.admit(later), Some(Ticket::Normal));
    }

    #[test]
    fn failed_probe_opens_again_for_the_full_period() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, OPEN, PROBE);
        b.failure(Ticket::Normal, t0);
        let t1 = t0 + OPEN + Duration::from_secs(1);
        let probe = b.admit(t1).unwrap();
        b.failure(probe, t1);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.admit(t1 + OPEN - Duration::from_millis(1)), None);
        assert_eq!(b.admit(t1 + OPEN), Some(Ticket::Probe));
    }

    #[test]
    fn stragglers_do_not_change_an_open_or_half_open_breaker() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, OPEN, PROBE);
        b.failure(Ticket::Normal, t0);
        b.success(Ticket::Normal);
        assert_eq!(b.state(), State::Open);
        let _probe = b.admit(t0 + OPEN).unwrap();
        b.success(Ticket::Normal);
        b.failure(Ticket::Normal, t0 + OPEN);
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(State::HalfOpen.gauge(), 2);
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced_after_the_probe_timeout() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, OPEN, PROBE);
        b.failure(Ticket::Normal, t0);
        let t1 = t0 + OPEN;
        assert_eq!(b.admit(t1), Some(Ticket::Probe));
        // The probe's task dies without reporting: nobody calls success or failure.
        assert_eq!(b.admit(t1 + PROBE - Duration::from_millis(1)), None);
        assert_eq!(b.admit(t1 + PROBE), Some(Ticket::Probe), "stuck half-open");
        b.success(Ticket::Probe);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn huge_periods_are_capped_and_never_overflow_the_clock() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, Duration::MAX, Duration::MAX);
        b.failure(Ticket::Normal, t0);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.admit(t0 + MAX_PERIOD - Duration::from_secs(1)), None);
        let t1 = t0 + MAX_PERIOD;
        assert_eq!(b.admit(t1), Some(Ticket::Probe));
        assert_eq!(b.admit(t1 + MAX_PERIOD), Some(Ticket::Probe));
    }
}
