//! The pure middle of the worker: record bytes → event or rejection, with stage timings.
//! Knows nothing of Kafka; the worker and the `enrich` command both call it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::enrich::{Document, Enricher};
use crate::event::{Event, Provenance, build_event};
use crate::normalize::normalize;
use crate::parse::parse;

/// Why a record goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Error class: one of [`REJECTION_REASONS`].
    pub reason: &'static str,
    pub message: String,
}

/// Every dead-letter reason (the `reason` label's fixed set).
/// `enrich`: the enricher panicked on the article; `internal`: any other stage did;
/// `output_rejected`: the broker refused the event for good (e.g. too large).
/// `remote_unavailable`: the remote model failed and `fallback = "dead-letter"`.
/// `timeout`: processing exceeded `pipeline.record_timeout_ms`.
/// `invalid_id`: the article's `id` is unsafe as a key (see [`crate::parse`]).
pub const REJECTION_REASONS: [&str; 12] = [
    "empty",
    "too_large",
    "invalid_utf8",
    "invalid_json",
    "invalid_article",
    "invalid_id",
    "normalize",
    "enrich",
    "internal",
    "output_rejected",
    "remote_unavailable",
    "timeout",
];

/// Time spent in each pure stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    pub parse: Duration,
    pub normalize: Duration,
    pub enrich: Duration,
}

/// Runs parse → normalize → enrich → event for one record.
#[derive(Clone)]
pub struct Processor {
    enricher: Arc<dyn Enricher>,
    max_message_bytes: usize,
}

impl Processor {
    pub fn new(enricher: Arc<dyn Enricher>, max_message_bytes: usize) -> Self {
        Processor {
            enricher,
            max_message_bytes,
        }
    }

    /// Processes one value. A panic in any stage is caught and becomes a rejection, so one
    /// bad article can never take the worker down.
    pub fn process(
        &self,
        value: &[u8],
        provenance: Provenance,
        now: DateTime<Utc>,
    ) -> (Result<Event, Rejection>, StageTimings) {
        catch_unwind(AssertUnwindSafe(|| {
            self.process_stages(value, provenance, now)
        }))
        .unwrap_or_else(|_| {
            let message = "processing panicked on this record".to_string();
            (
                Err(Rejection {
                    reason: "internal",
                    message,
                }),
                StageTimings::default(),
            )
        })
    }

    fn process_stages(
        &self,
        value: &[u8],
        provenance: Provenance,
        now: DateTime<Utc>,
    ) -> (Result<Event, Rejection>, StageTimings) {
        let mut timings = StageTimings::default();
        let started = Instant::now();
        let raw = parse(value, self.max_message_bytes);
        timings.parse = started.elapsed();
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                return (
                    Err(Rejection {
                        reason: e.reason(),
                        message: e.to_string(),
                    }),
                    timings,
                );
            }
        };
        let started = Instant::now();
        let article = normalize(raw);
        timings.normalize = started.elapsed();
        let article = match article {
            Ok(a) => a,
            Err(e) => {
                return (
                    Err(Rejection {
                        reason: "normalize",
                        message: e.to_string(),
                    }),
                    timings,
                );
            }
        };
        let started = Instant::now();
        let doc = Document {
            title: &article.title,
            body: &article.body,
            published: article.published_at.map(|d| d.date_naive()),
            language: article.language.as_deref(),
        };
        let traced = catch_unwind(AssertUnwindSafe(|| self.enricher.enrich_traced(&doc)));
        timings.enrich = started.elapsed();
        let traced = match traced {
            Ok(Ok(t)) => t,
            Ok(Err(failure)) => {
                let rejection = Rejection {
                    reason: "remote_unavailable",
                    message: failure.to_string(),
                };
                return (Err(rejection), timings);
            }
            Err(_) => {
                let message = "enricher panicked on this article".to_string();
                return (
                    Err(Rejection {
                        reason: "enrich",
                        message,
                    }),
                    timings,
                );
            }
        };
        let mut event = build_event(article, traced.enrichment, traced.models, provenance, now);
        event.pipeline.fallback = traced.fallback;
        (Ok(event), timings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::baseline::BaselineEnricher;
    use crate::enrich::{Document as Doc, Enrichment, ModelInfo};

    fn provenance() -> Provenance {
        Provenance {
            topic: "t".into(),
            partition: 0,
            offset: 1,
            timestamp: None,
        }
    }

    #[test]
    fn reasons_cover_every_parse_error() {
        let p = Processor::new(Arc::new(BaselineEnricher), 10);
        for value in [
            &b""[..],
            b"01234567890",
            b"\xff",
            b"{",
            b"[]",
            b"Leave a Reply",
        ] {
            let (r, _) = p.process(value, provenance(), Utc::now());
            let reason = r.unwrap_err().reason;
            assert!(REJECTION_REASONS.contains(&reason), "{reason}");
        }
    }

    #[test]
    fn same_input_gives_same_event_id() {
        let p = Processor::new(Arc::new(BaselineEnricher), 1 << 20);
        let value = include_bytes!("../samples/seed-article.txt");
        let (a, _) = p.process(value, provenance(), Utc::now());
        let mut other = provenance();
        other.offset = 99;
        let (b, _) = p.process(value, other, Utc::now());
        assert_eq!(a.unwrap().event_id, b.unwrap().event_id);
    }

    struct Panicky;
    impl Enricher for Panicky {
        fn enrich(&self, _: &Doc<'_>) -> Enrichment {
            panic!("boom")
        }
        fn models(&self) -> Vec<ModelInfo> {
            Vec::new()
        }
    }

    #[test]
    fn a_panicking_enricher_yields_a_rejection() {
        let p = Processor::new(Arc::new(Panicky), 1 << 20);
        let (r, _) = p.process(b"Title\nbody", provenance(), Utc::now());
        assert_eq!(r.unwrap_err().reason, "enrich");
    }
}
