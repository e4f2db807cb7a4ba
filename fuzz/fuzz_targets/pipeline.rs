//! The whole pure pipeline (parse → normalize → enrich with the shipped models → event) on
//! arbitrary record bytes: no panic, one event or one rejection, a bounded event, mention
//! offsets inside their field.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use newsflow::enrich::{Field, LocalEnricher};
use newsflow::event::Provenance;
use newsflow::pipeline::{Processor, RejectReason};

fn processor() -> &'static Processor {
    static P: OnceLock<Processor> = OnceLock::new();
    P.get_or_init(|| {
        // The shipped model is embedded in the binary; failing to load it is a build bug.
        let enricher = LocalEnricher::load_default().expect("shipped NER model");
        Processor::new(Arc::new(enricher), 1 << 20)
    })
}

fuzz_target!(|data: &[u8]| {
    let provenance = Provenance {
        topic: "in".into(),
        partition: 0,
        offset: 0,
        timestamp: None,
    };
    let (result, _) = processor().process(data, provenance, chrono::Utc::now());
    match result {
        // libfuzzer-sys aborts on a panic before the pipeline's catch_unwind sees it, so a
        // panicking stage is reported as a crash; this catches a stage that turns an error
        // into the panic classes without panicking.
        Err(rejection) => assert!(
            !matches!(
                rejection.reason,
                RejectReason::Internal | RejectReason::Enrich
            ),
            "a stage panicked: {rejection:?}"
        ),
        Ok(event) => {
            let json = serde_json::to_vec(&event).map_or(0, |j| j.len());
            assert!(json <= 4 * data.len() + 16 * 1024, "event of {json} bytes");
            let title: Vec<char> = event.title.chars().collect();
            let body: Vec<char> = event.body.chars().collect();
            for entity in &event.entities {
                for m in &entity.mentions {
                    let field = if m.field == Field::Title {
                        &title
                    } else {
                        &body
                    };
                    let text: Option<String> =
                        field.get(m.start..m.end).map(|c| c.iter().collect());
                    assert_eq!(
                        text.as_deref(),
                        Some(m.text.as_str()),
                        "mention off its text"
                    );
                }
            }
        }
    }
});
