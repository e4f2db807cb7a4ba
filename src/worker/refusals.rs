//! Records the broker refused for good inside a transaction (exactly-once mode).
//!
//! A refused record fails its whole transaction, which aborts; the redo would send the same
//! record again and be refused again, forever. So the refusal is remembered by input
//! position, and the redo sends what at-least-once mode sends at once: the dead-letter
//! record, full, then bare if that was refused too. A bare form refused as well leaves the
//! record stuck, loudly (see [`crate::events::DeadLetterRefused`]), as in at-least-once mode.

use std::collections::HashMap;

use super::dead_letter::DeadLetterForm;
use crate::offsets::TopicPartition;
use crate::pipeline::RejectReason;

/// Refusals remembered at most; past it the oldest-looking one is forgotten (its record is
/// tried once more as it was, costing one more abort). Entries leave when a commit passes
/// their position, so this bounds memory only against a flood of refusals.
const MAX_REFUSALS: usize = 10_000;

/// What the redo sends for a refused record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    DeadLetter(DeadLetterForm),
    /// Every form was refused: the record stays uncommitted and its partition waits.
    Stuck,
}

/// A refused record: why it is dead-lettered, and in which form next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub reason: RejectReason,
    pub message: String,
    pub next: Next,
}

/// What had been sent for the refused record.
pub(super) enum Refused<'a> {
    /// Its event.
    Event,
    /// Its dead-letter record (full form unless a refusal is remembered), for a record
    /// rejected with `reason` and `message`.
    DeadLetter {
        reason: RejectReason,
        message: &'a str,
    },
}

#[derive(Debug, Default)]
pub(super) struct Refusals {
    by_position: HashMap<(TopicPartition, i64), Refusal>,
}

impl Refusals {
    /// What the redo must send for the record at `offset`, if it was refused before. Called
    /// for every record in exactly-once mode: nothing is allocated while nothing is refused.
    pub fn get(&self, topic: &str, partition: i32, offset: i64) -> Option<&Refusal> {
        if self.by_position.is_empty() {
            return None;
        }
        self.by_position
            .get(&((topic.to_string(), partition), offset))
    }

    /// The broker refused what was sent for the record at `offset` with `error`; returns
    /// what the redo sends: an event is dead-lettered in full, a full dead-letter record
    /// bare, and after a bare one there is nothing left to send.
    pub fn refused(
        &mut self,
        tp: TopicPartition,
        offset: i64,
        sent: Refused<'_>,
        error: &str,
    ) -> &Refusal {
        let key = (tp, offset);
        let before = self.by_position.get(&key).map(|r| r.next);
        let next = match (&sent, before) {
            (Refused::Event, _) => Next::DeadLetter(DeadLetterForm::Full),
            (Refused::DeadLetter { .. }, None | Some(Next::DeadLetter(DeadLetterForm::Full))) => {
                Next::DeadLetter(DeadLetterForm::Bare)
            }
            (Refused::DeadLetter { .. }, Some(_)) => Next::Stuck,
        };
        if before.is_none() && self.by_position.len() >= MAX_REFUSALS {
            let oldest = self
                .by_position
                .keys()
                .min_by_key(|(_, offset)| *offset)
                .cloned();
            if let Some(oldest) = oldest {
                self.by_position.remove(&oldest);
            }
        }
        // The first refusal's reason stays the one given.
        let refusal = self.by_position.entry(key).or_insert_with(|| {
            let (reason, message) = match sent {
                Refused::Event => (
                    RejectReason::OutputRejected,
                    format!("broker refused the record: {error}"),
                ),
                Refused::DeadLetter { reason, message } => (reason, message.to_string()),
            };
            Refusal {
                reason,
                message,
                next,
            }
        });
        refusal.next = next;
        refusal
    }

    /// Forgets the refusals a commit moved past (`positions`: the next offset to read).
    pub fn committed(&mut self, positions: &[(TopicPartition, i64)]) {
        self.by_position.retain(|(tp, offset), _| {
            positions
                .iter()
                .all(|(committed, pos)| committed != tp || offset >= pos)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        ("in".to_string(), 0)
    }

    #[test]
    fn a_refused_event_is_dead_lettered_full_then_bare_then_stuck() {
        let mut r = Refusals::default();
        assert!(r.get("in", 0, 7).is_none());
        let first = r.refused(tp(), 7, Refused::Event, "INVALID_RECORD").clone();
        assert_eq!(first.next, Next::DeadLetter(DeadLetterForm::Full));
        assert_eq!(first.reason, RejectReason::OutputRejected);
        assert!(
            first.message.contains("INVALID_RECORD"),
            "{}",
            first.message
        );
        let sent = Refused::DeadLetter {
            reason: first.reason,
            message: &first.message,
        };
        assert_eq!(
            r.refused(tp(), 7, sent, "again").next,
            Next::DeadLetter(DeadLetterForm::Bare)
        );
        let sent = Refused::DeadLetter {
            reason: first.reason,
            message: &first.message,
        };
        assert_eq!(r.refused(tp(), 7, sent, "again").next, Next::Stuck);
        // The first error stays the reason given.
        assert_eq!(r.get("in", 0, 7).unwrap().message, first.message);
        assert!(r.get("in", 0, 8).is_none());
    }

    #[test]
    fn a_refused_dead_letter_record_goes_bare_and_keeps_its_reason() {
        let mut r = Refusals::default();
        let sent = Refused::DeadLetter {
            reason: RejectReason::InvalidJson,
            message: "not JSON",
        };
        let refusal = r.refused(tp(), 3, sent, "INVALID_RECORD");
        assert_eq!(refusal.next, Next::DeadLetter(DeadLetterForm::Bare));
        assert_eq!(refusal.reason, RejectReason::InvalidJson);
        assert_eq!(refusal.message, "not JSON");
    }

    #[test]
    fn a_commit_past_a_refusal_forgets_it_and_memory_is_bounded() {
        let mut r = Refusals::default();
        r.refused(tp(), 3, Refused::Event, "e");
        r.refused(tp(), 9, Refused::Event, "e");
        r.refused(("other".to_string(), 0), 1, Refused::Event, "e");
        r.committed(&[(tp(), 4)]);
        assert!(r.get("in", 0, 3).is_none());
        assert!(r.get("in", 0, 9).is_some());
        assert!(r.get("other", 0, 1).is_some());
        for offset in 0..(MAX_REFUSALS as i64 + 50) {
            r.refused(("flood".to_string(), 0), offset, Refused::Event, "e");
        }
        assert_eq!(r.by_position.len(), MAX_REFUSALS);
    }
}
