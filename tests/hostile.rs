//! The hostile corpus as a regression test: every class of hostile record (the same classes
//! as `scripts/gen_hostile.py`, smaller, since tests run unoptimised) goes through the whole
//! pure pipeline with the shipped models and must end as one event or one rejection, with a
//! bounded event, mention offsets that still point at their text, and no panic.
//!
//! The time bound is deliberately loose (an unoptimised build, a busy machine): it catches
//! quadratic blow-ups, which take minutes at this size, not small slowdowns. The speed
//! figures themselves come from `scripts/hostile_bench.sh`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use newsflow::enrich::{Field, LocalEnricher};
use newsflow::event::Provenance;
use newsflow::pipeline::{Processor, RejectReason};

/// Input size of each generated record.
const SIZE: usize = 128 * 1024;
/// Loose wall-clock bound per record in an unoptimised build.
const TIME_BOUND: Duration = Duration::from_secs(60);

fn fill(prefix: &str, unit: &str, suffix: &str) -> String {
    let n = SIZE.saturating_sub(prefix.len() + suffix.len()) / unit.len().max(1);
    format!("{prefix}{}{suffix}", unit.repeat(n))
}

fn html(h: String) -> Vec<u8> {
    serde_json::json!({"url": "https://example.com/x", "html": h})
        .to_string()
        .into_bytes()
}

fn body(b: String) -> Vec<u8> {
    serde_json::json!({"title": "Hostile", "body": b})
        .to_string()
        .into_bytes()
}

fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let nested_b: String = (0..500).map(|i| format!("<b id={i}>")).collect();
    vec![
        (
            "html_nested_distinct_formatting",
            html(fill(&format!("<p>{nested_b}"), "<p>x", "")),
        ),
        (
            "html_wide_table",
            html(format!(
                "<table><tr><td>{}{}",
                "x".repeat(SIZE / 10),
                "<tr><td>a".repeat(SIZE / 10)
            )),
        ),
        (
            "html_nested_blockquote",
            html(fill("", "<blockquote>x", "")),
        ),
        ("html_nested_lists", html(fill("", "<ul><li>x", ""))),
        ("html_unclosed_divs", html(fill("", "<div>", ""))),
        (
            "html_chrome_lines",
            html(fill(
                "<div>",
                "<p>© 2008 Daily News</p><p>By John Smith</p><p>Saturday, January 5th 2008</p>",
                "",
            )),
        ),
        (
            "html_deep_inline",
            html(fill("", "<span><a href=x><i>", "")),
        ),
        (
            "html_many_attributes",
            html(fill("<p ", "a=\"b\" ", ">text</p>")),
        ),
        (
            "html_huge_class",
            html(fill("<div class=\"", "sidebar content ", "\">text</div>")),
        ),
        (
            "html_entities",
            html(fill("<p>", "&amp;&#x1F600;&nbsp;&unknown;", "")),
        ),
        (
            "html_unterminated_comment",
            html(fill("<p>a</p><!--", "x", "")),
        ),
        (
            "html_script_never_closed",
            html(fill("<p>a</p><script>", "var x = '<p>';", "")),
        ),
        (
            "html_many_paragraphs",
            html(fill("<article>", "<p>Short line, with a comma.</p>", "")),
        ),
        (
            "html_json_ld_flood",
            html(fill(
                "<script type=\"application/ld+json\">{\"articleBody\":\"",
                "a b c ",
                "\"}</script>",
            )),
        ),
        (
            "html_json_ld_objects",
            html(fill(
                &format!(
                    "<script type=\"application/ld+json\">[{}{{}}]</script>",
                    "{\"\":0},".repeat(SIZE / 4 / 7)
                ),
                "<p>x",
                "",
            )),
        ),
        (
            "html_foreign_content",
            html(fill("<svg><math>", "<mi>x</mi><foreignObject><p>y", "")),
        ),
        (
            "html_nul_and_controls",
            html(fill("<p>", "a\u{0}\u{1}\u{1b}[31m\u{feff}", "")),
        ),
        ("body_initials_run", body(fill("", "S ", ""))),
        (
            "body_percent_numbers",
            body(
                (0..SIZE / 10)
                    .map(|i| format!("{} %", 100_000 + i))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ),
        (
            "body_one_long_sentence",
            body(fill("", "Anna Berg met Oslo officials ", "")),
        ),
        ("body_no_spaces", body("A".repeat(SIZE))),
        (
            "body_capitalised_words",
            body(
                (0..SIZE / 20)
                    .map(|i| format!("Name{i} Word{i}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ),
        ("body_repeated_entity", body(fill("", "&a ", ""))),
        (
            "body_money_dates",
            body(fill(
                "",
                "$5 billion on Friday, 12 May 2021, up 3.5 percent. ",
                "",
            )),
        ),
        ("body_newlines", body("\n".repeat(SIZE))),
        ("body_combining_marks", body(fill("a", "\u{301}", ""))),
        (
            "body_mixed_scripts",
            body(fill("", "Москва 東京 القاهرة Paris ", "")),
        ),
        (
            "date_far_future",
            serde_json::json!({"title": "Far future", "published_at": "+262142-12-31",
                "body": "It happens tomorrow, on Friday, and next Monday."})
            .to_string()
            .into_bytes(),
        ),
        (
            "url_credentials",
            serde_json::json!({"url": "https://user:secret@Example.com/a?token=abc&id=1",
                "title": "Credentials", "body": "Text."})
            .to_string()
            .into_bytes(),
        ),
        (
            "id_path_tricks",
            serde_json::json!({"id": "../../etc/passwd", "title": "Bad id", "body": "Text."})
                .to_string()
                .into_bytes(),
        ),
    ]
}

fn provenance() -> Provenance {
    Provenance {
        topic: "in".into(),
        partition: 0,
        offset: 0,
        timestamp: None,
    }
}

#[test]
fn every_hostile_class_ends_bounded_as_one_event_or_one_rejection() {
    let processor = Processor::new(Arc::new(LocalEnricher::load_default().unwrap()), 1 << 20);
    let corpus = corpus();
    assert!(
        corpus.len() >= 20,
        "the corpus must cover at least 20 classes"
    );
    let mut failures = Vec::new();
    for (name, value) in &corpus {
        let started = Instant::now();
        let (result, _) = processor.process(value, provenance(), Utc::now());
        let elapsed = started.elapsed();
        if elapsed > TIME_BOUND {
            failures.push(format!("{name}: took {elapsed:?}"));
        }
        match result {
            Err(rejection) => {
                if matches!(
                    rejection.reason,
                    RejectReason::Internal | RejectReason::Enrich
                ) {
                    failures.push(format!("{name}: rejected as {}", rejection.reason));
                }
            }
            Ok(event) => {
                let json = serde_json::to_vec(&event).unwrap();
                // No amplification: the event stays within a small factor of its input.
                let bound = 4 * value.len() + 16 * 1024;
                if json.len() > bound {
                    failures.push(format!("{name}: event {} bytes > {bound}", json.len()));
                }
                let text = String::from_utf8_lossy(&json);
                if text.contains("secret") && *name == "url_credentials" {
                    failures.push(format!("{name}: credentials kept in the event"));
                }
                let title: Vec<char> = event.title.chars().collect();
                let body: Vec<char> = event.body.chars().collect();
                for entity in &event.entities {
                    for m in &entity.mentions {
                        let field = match m.field {
                            Field::Title => &title,
                            Field::Body => &body,
                        };
                        let got: String = field
                            .get(m.start..m.end)
                            .map(|c| c.iter().collect())
                            .unwrap_or_default();
                        if got != m.text {
                            failures.push(format!(
                                "{name}: mention {}..{} is {got:?}, not {:?}",
                                m.start, m.end, m.text
                            ));
                            break;
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
