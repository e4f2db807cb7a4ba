//! The ack lanes: await broker acknowledgements in input order per partition, retry
//! transient failures without reordering, dead-letter refused records, store offsets of the
//! contiguous finished prefix.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::Utc;
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{error, warn};

use super::dead_letter::{self, DeadLetterForm};
use super::refusals::{Next, Refused};
use super::txn::Transactions;
use super::{Outcome, Pending, Sent, Shared, Subscription};
use crate::events::{DeadLetterRefused, DeadLettered};
use crate::pipeline::{RejectReason, Rejection};
use crate::sink::{Attempt, SinkError};
use crate::source::InputRecord;

/// One partition's ack lane: acknowledgements in input order. On a transient failure the
/// failed record and every later record of the partition already enqueued are sent again,
/// in order, while the order lane waits (`enqueues`): a retry never puts an older version of
/// a key after a newer one. A re-sent record that had been delivered comes out twice (same
/// `event_id`). A revoked partition stops retrying; its new owner reads the records again.
pub(super) async fn ack_lane(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    enqueues: Arc<tokio::sync::Mutex<()>>,
) {
    // Bounded by the in-flight budget: every pending record holds a share of it.
    let mut queue: VecDeque<Pending> = VecDeque::new();
    loop {
        let mut pending = match queue.pop_front() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut attempt = 0u32;
        let result = loop {
            let answer = match &mut pending.sent {
                Sent::Enqueued(delivery) => shared.sink.attempt(delivery, &shared.hard_stop).await,
                Sent::Refused(e) => Attempt::Failed(SinkError::Rejected(e.clone())),
            };
            let error = match answer {
                Attempt::Delivered => break Ok(()),
                Attempt::Failed(e) => break Err(e),
                Attempt::Retry(error) => error,
            };
            let input = &pending.input;
            if !shared
                .tracker
                .lock()
                .is_pending(&input.topic, input.partition, input.offset)
            {
                return; // Revoked: nothing of this lane may be produced any more.
            }
            if let Err(e) = shared
                .sink
                .back_off(&pending.record, error, attempt, &shared.hard_stop)
                .await
            {
                break Err(e);
            }
            attempt = attempt.saturating_add(1);
            let _held = enqueues.lock().await;
            while let Ok(p) = rx.try_recv() {
                queue.push_back(p);
            }
            if let Err(e) = resend(&shared, &mut pending, &mut queue).await {
                break Err(e);
            }
        };
        finish(&shared, pending, result).await;
    }
}

/// Sends `head` and then every queued record again, in order (the lane's enqueues held).
/// A record refused for good stays refused (and is dead-lettered in its turn); only the
/// hard stop or a fatal producer ends the re-send.
async fn resend(
    shared: &Shared,
    head: &mut Pending,
    queue: &mut VecDeque<Pending>,
) -> Result<(), SinkError> {
    for p in std::iter::once(head).chain(queue.iter_mut()) {
        if matches!(p.sent, Sent::Refused(_)) {
            continue;
        }
        p.sent = match shared.sink.enqueue(&p.record, &shared.hard_stop).await {
            Ok(d) => Sent::Enqueued(d),
            Err(SinkError::Rejected(e)) => Sent::Refused(e),
            Err(e) => return Err(e),
        };
    }
    Ok(())
}

/// Settles one record in input order: counts it, dead-letters a refused one, and stores its
/// offset once its partition's finished prefix moved.
async fn finish(shared: &Shared, pending: Pending, result: Result<(), SinkError>) {
    let Pending {
        input,
        record,
        sent,
        kind,
        enqueued_at,
        _slot,
        ticket,
    } = pending;
    // A broker refusal fails an exactly-once transaction (a record refused before it was
    // enqueued does not): it aborts, and the redo dead-letters the record.
    if let (Err(SinkError::Rejected(e)), Some(txn), Sent::Enqueued(_), Some(_)) =
        (&result, &shared.txn, &sent, &ticket)
    {
        refused_in_transaction(shared, txn, &input, &kind, e);
        return; // The ticket is dropped unsettled: the transaction aborts.
    }
    let m = &shared.metrics;
    let kind = match result {
        Ok(()) => kind,
        Err(SinkError::Rejected(e)) => {
            // Refused for good after enqueue (e.g. too large for the topic): dead-letter it;
            // a refused dead-letter record is sent again without its payload.
            let reason = match &kind {
                Outcome::DeadLetter { reason, .. } => *reason,
                Outcome::Event { .. } => RejectReason::OutputRejected,
            };
            let rejection = Rejection {
                reason,
                message: format!("broker refused the record: {e}"),
            };
            // A refused dead-letter record would be refused again in the same form.
            let form = match kind {
                Outcome::DeadLetter { .. } => DeadLetterForm::Bare,
                Outcome::Event { .. } => DeadLetterForm::Full,
            };
            if let Err(e) = deliver_dead_letter(shared, &input, &rejection, form).await {
                dead_letter_failed(shared, &input, &e);
                return;
            }
            Outcome::DeadLetter {
                reason,
                message: rejection.message,
            }
        }
        Err(SinkError::Cancelled(_) | SinkError::Fatal(_) | SinkError::InTransaction(_)) => {
            // Not finished: the offset is not stored, the record will be redelivered (in
            // exactly-once mode the unsettled ticket aborts the transaction).
            return;
        }
    };
    m.stage_duration
        .with_label_values(&["produce"])
        .observe(enqueued_at.elapsed().as_secs_f64());
    match kind {
        Outcome::Event {
            entity_counts,
            sentiment,
        } => {
            // Exactly-once mode counts it when its transaction commits.
            match &ticket {
                Some(t) => t.produced(&record.topic),
                None => m.events_produced.with_label_values(&[&record.topic]).inc(),
            }
            for (t, n) in entity_counts {
                m.entities_extracted
                    .with_label_values(&[t.as_str()])
                    .inc_by(n);
            }
            m.sentiment_score.observe(sentiment);
        }
        Outcome::DeadLetter { reason, message } => DeadLettered {
            topic: &input.topic,
            partition: input.partition,
            offset: input.offset,
            reason,
            message: &message,
        }
        .emit(m),
    }
    // Replays read old records on purpose: their age is not a latency.
    if let Some(ts) = input.timestamp_ms
        && matches!(shared.options.subscription, Subscription::Group)
    {
        let age = (Utc::now().timestamp_millis() - ts).max(0) as f64 / 1000.0;
        m.end_to_end_latency.observe(age);
    }
    {
        // Stored under the lock, so two completions can never store positions out of order.
        let mut tracker = shared.tracker.lock();
        shared.health.mark_progress();
        let position = tracker.finish(&input.topic, input.partition, input.offset);
        // Exactly-once mode commits positions inside the transaction, not from the consumer.
        if let Some(ticket) = ticket {
            ticket.settle();
        } else if let Some(position) = position {
            let mut tpl = TopicPartitionList::new();
            if tpl
                .add_partition_offset(&input.topic, input.partition, Offset::Offset(position))
                .is_ok()
            {
                // Fails only if the partition was revoked meanwhile; its new owner re-reads.
                let _ = shared.consumer.store_offsets(&tpl);
            }
        }
    }
    shared.tracker.notify();
}

/// Remembers what the broker refused inside the transaction, and says what the redo sends.
fn refused_in_transaction(
    shared: &Shared,
    txn: &Transactions,
    input: &InputRecord,
    kind: &Outcome,
    error: &KafkaError,
) {
    let sent = match kind {
        Outcome::Event { .. } => Refused::Event,
        Outcome::DeadLetter { reason, message } => Refused::DeadLetter {
            reason: *reason,
            message,
        },
    };
    let tp = (input.topic.clone(), input.partition);
    match txn.refused(tp, input.offset, sent, &error.to_string()).next {
        Next::DeadLetter(form) => warn!(
            topic = %input.topic,
            partition = input.partition,
            offset = input.offset,
            error = %error,
            ?form,
            "The broker refused the record inside a transaction; it is dead-lettered when the \
             aborted transaction is redone"
        ),
        Next::Stuck => DeadLetterRefused {
            topic: &input.topic,
            partition: input.partition,
            offset: input.offset,
            error,
        }
        .emit(&shared.metrics, &shared.health),
    }
}

/// A dead-letter record was not delivered, so `input` stays uncommitted: loud when the broker
/// refused it for good (its partition cannot move on), a plain error line otherwise (the
/// worker is stopping; the record is redelivered).
fn dead_letter_failed(shared: &Shared, input: &InputRecord, e: &SinkError) {
    match e {
        SinkError::Rejected(_) => DeadLetterRefused {
            topic: &input.topic,
            partition: input.partition,
            offset: input.offset,
            error: e,
        }
        .emit(&shared.metrics, &shared.health),
        _ => {
            error!(error = %e, offset = input.offset, "Cannot dead-letter record; it stays uncommitted")
        }
    }
}

/// Delivers the dead-letter record for `input`, starting in `form`. If the broker refuses the
/// full form for good (the original headers plus ours can push a truncated value over its
/// limit), the bare form follows, so the partition can move on.
async fn deliver_dead_letter(
    shared: &Shared,
    input: &InputRecord,
    rejection: &Rejection,
    form: DeadLetterForm,
) -> Result<(), SinkError> {
    let record = dead_letter::for_run(shared, input, rejection, form);
    match shared.sink.deliver(&record, &shared.hard_stop).await {
        Err(SinkError::Rejected(e)) if form == DeadLetterForm::Full => {
            warn!(error = %e, offset = input.offset, "Dead-letter record refused; sending it without its payload");
            let bare = dead_letter::for_run(shared, input, rejection, DeadLetterForm::Bare);
            shared.sink.deliver(&bare, &shared.hard_stop).await
        }
        other => other,
    }
}
