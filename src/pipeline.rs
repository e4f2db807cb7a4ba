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
    /// Error class, sent as `newsflow.error.class` and used as the metric label.
    pub reason: RejectReason,
    pub message: String,
}

/// Every dead-letter reason: the `reason` label's fixed set is derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// An empty value.
    Empty,
    /// Over `pipeline.max_message_bytes`.
    TooLarge,
    InvalidUtf8,
    /// Truncated or non-object JSON.
    InvalidJson,
    /// JSON with wrong field types.
    InvalidArticle,
    /// The article's `id` is unsafe as a key (see [`crate::parse`]).
    InvalidId,
    /// Nothing left after cleaning.
    Normalize,
    /// The enricher panicked on the article.
    Enrich,
    /// Any other stage panicked, or a processing thread failed.
    Internal,
    /// The broker refused the event for good (e.g. too large).
    OutputRejected,
    /// The remote model failed and `fallback = "dead-letter"`.
    RemoteUnavailable,
    /// Processing exceeded `pipeline.record_timeout_ms`.
    Timeout,
}

impl RejectReason {
    /// Every reason, in a fixed order (metric labels are registered from it).
    pub const ALL: [RejectReason; 12] = [
        RejectReason::Empty,
        RejectReason::TooLarge,
        RejectReason::InvalidUtf8,
        RejectReason::InvalidJson,
        RejectReason::InvalidArticle,
        RejectReason::InvalidId,
        RejectReason::Normalize,
        RejectReason::Enrich,
        RejectReason::Internal,
        RejectReason::OutputRejected,
        RejectReason::RemoteUnavailable,
        RejectReason::Timeout,
    ];

    /// The label as it appears in headers, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Empty => "empty",
            RejectReason::TooLarge => "too_large",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::InvalidArticle => "invalid_article",
            RejectReason::InvalidId => "invalid_id",
            RejectReason::Normalize => "normalize",
            RejectReason::Enrich => "enrich",
            RejectReason::Internal => "internal",
            RejectReason::OutputRejected => "output_rejected",
            RejectReason::RemoteUnavailable => "remote_unavailable",
            RejectReason::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for RejectReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

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
                    reason: RejectReason::Internal,
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
                        reason: RejectReason::Normalize,
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
                    reason: RejectReason::RemoteUnavailable,
                    message: failure.to_string(),
                };
                return (Err(rejection), timings);
            }
            Err(_) => {
                let message = "enricher panicked on this article".to_string();
                return (
                    Err(Rejection {
                        reason: RejectReason::Enrich,
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
            assert!(RejectReason::ALL.contains(&reason), "{reason}");
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
        assert_eq!(r.unwrap_err().reason, RejectReason::Enrich);
    }
}
