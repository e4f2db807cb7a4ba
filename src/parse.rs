//! Stage 1: a Kafka record's bytes become a [`RawArticle`], or a [`ParseError`] that sends
//! the record to the dead-letter topic.
//!
//! A value whose first non-whitespace character is `{` or `[` is JSON and must be an article
//! object; anything else must be UTF-8 text whose first non-empty line is the title.

use serde_json::{Map, Value};

use crate::normalize::language::is_language_tag;
use crate::pipeline::RejectReason;

/// Why a record is poison. Each variant is a dead-letter `reason` label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty value")]
    Empty,
    #[error("value of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("value is neither JSON nor valid UTF-8 text: invalid UTF-8 at byte {at}")]
    InvalidUtf8 { at: usize },
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("invalid article: {0}")]
    InvalidArticle(String),
    /// The message says what is wrong, never quoting the id (it may hold control characters).
    #[error("invalid id: {0}")]
    InvalidId(&'static str),
}

impl ParseError {
    /// The metric and header label for this error class.
    pub fn reason(&self) -> RejectReason {
        match self {
            ParseError::Empty => RejectReason::Empty,
            ParseError::TooLarge { .. } => RejectReason::TooLarge,
            ParseError::InvalidUtf8 { .. } => RejectReason::InvalidUtf8,
            ParseError::InvalidJson(_) => RejectReason::InvalidJson,
            ParseError::InvalidArticle(_) => RejectReason::InvalidArticle,
            ParseError::InvalidId(_) => RejectReason::InvalidId,
        }
    }
}

/// Longest `id` accepted, in bytes (UTF-8).
pub const MAX_ID_BYTES: usize = 256;
/// Longest `language` tag accepted, in bytes (BCP 47 asks implementations to handle 35).
pub const MAX_LANGUAGE_BYTES: usize = 35;

/// A publication date as given: text in any common format, or epoch seconds or millis.
#[derive(Debug, Clone, PartialEq)]
pub enum RawDate {
    Text(String),
    Epoch(f64),
}

/// An article as it arrived, fields typed but not yet cleaned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawArticle {
    pub id: Option<String>,
    pub url: Option<String>,
    pub source: Option<String>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub html: Option<String>,
    pub published_at: Option<RawDate>,
    pub language: Option<String>,
    pub authors: Vec<String>,
    /// Unknown fields, kept as they came.
    pub extra: Map<String, Value>,
    /// Problems with fields that were dropped rather than rejected (carried into the event).
    pub warnings: Vec<String>,
}

/// Parses one record value.
pub fn parse(value: &[u8], max_bytes: usize) -> Result<RawArticle, ParseError> {
    if value.len() > max_bytes {
        return Err(ParseError::TooLarge {
            size: value.len(),
            limit: max_bytes,
        });
    }
    let first = value.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return Err(ParseError::Empty);
    };
    if matches!(value[first], b'{' | b'[') {
        return parse_json(value);
    }
    let text = std::str::from_utf8(value).map_err(|e| ParseError::InvalidUtf8 {
        at: e.valid_up_to(),
    })?;
    parse_text(text)
}

fn parse_text(text: &str) -> Result<RawArticle, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines();
    let title = lines.by_ref().map(str::trim).find(|l| !l.is_empty());
    let Some(title) = title else {
        return Err(ParseError::Empty);
    };
    if title.chars().all(|c| c.is_control() || c.is_whitespace()) {
        return Err(ParseError::InvalidArticle(
            "text has no printable content".into(),
        ));
    }
    let body: Vec<&str> = lines.collect();
    Ok(RawArticle {
        title: Some(title.to_string()),
        body: Some(body.join("\n")),
        ..RawArticle::default()
    })
}

fn parse_json(value: &[u8]) -> Result<RawArticle, ParseError> {
    let parsed: Value =
        serde_json::from_slice(value).map_err(|e| ParseError::InvalidJson(e.to_string()))?;
    let Value::Object(mut object) = parsed else {
        return Err(ParseError::InvalidArticle(format!(
            "expected a JSON object, found {}",
            json_kind(&parsed)
        )));
    };
    let mut article = RawArticle {
        id: take_id(&mut object)?,
        url: take_string(&mut object, "url")?,
        source: take_string(&mut object, "source")?,
        title: take_string(&mut object, "title")?,
        body: take_string(&mut object, "body")?,
        html: take_string(&mut object, "html")?,
        published_at: take_date(&mut object)?,
        language: None,
        authors: take_authors(&mut object)?,
        extra: Map::new(),
        warnings: Vec::new(),
    };
    article.language = take_string(&mut object, "language")?.and_then(|l| {
        if l.trim().is_empty() || is_language_tag(l.trim()) {
            Some(l)
        } else {
            article
                .warnings
                .push("language: not a BCP 47 language tag; detected from the text instead".into());
            None
        }
    });
    let has_content = [&article.title, &article.body, &article.html]
        .iter()
        .any(|f| f.as_deref().is_some_and(|s| !s.trim().is_empty()));
    if !has_content {
        return Err(ParseError::InvalidArticle(
            "needs at least a non-empty title, body or html".into(),
        ));
    }
    article.extra = object;
    Ok(article)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(field: &str, expected: &str, found: &Value) -> ParseError {
    ParseError::InvalidArticle(format!(
        "field `{field}` must be {expected}, found {}",
        json_kind(found)
    ))
}

/// A string field; `null` counts as absent.
fn take_string(object: &mut Map<String, Value>, field: &str) -> Result<Option<String>, ParseError> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(field, "a string", &other)),
    }
}

/// `id` may be a string or an integer; a string must pass [`check_id`].
fn take_id(object: &mut Map<String, Value>) -> Result<Option<String>, ParseError> {
    match object.remove("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            let id = s.trim();
            check_id(id)?;
            Ok(Some(id.to_string()))
        }
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(other) => Err(wrong_type("id", "a string or an integer", &other)),
    }
}

/// An id must be safe to use as a key, a file name or a URL path segment, and to log.
fn check_id(id: &str) -> Result<(), ParseError> {
    if id.len() > MAX_ID_BYTES {
        return Err(ParseError::InvalidId("longer than 256 bytes"));
    }
    if id.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(ParseError::InvalidId(
            "contains a control or invisible character",
        ));
    }
    if id.contains(['/', '\\']) {
        return Err(ParseError::InvalidId("contains a path separator"));
    }
    if id.chars().all(|c| c == '.') {
        return Err(ParseError::InvalidId("is a relative path (`.` or `..`)"));
    }
    Ok(())
}

/// Format characters that change how text displays without showing themselves: bidi
/// controls, zero-width characters, the byte-order mark.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
    )
}

fn take_date(object: &mut Map<String, Value>) -> Result<Option<RawDate>, ParseError> {
    match object.remove("published_at") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(RawDate::Text(s))),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() => Ok(Some(RawDate::Epoch(f))),
            _ => Err(wrong_type(
                "published_at",
                "a date string or epoch number",
                &Value::Number(n),
            )),
        },
        Some(other) => Err(wrong_type(
            "published_at",
            "a date string or epoch number",
            &other,
        )),
    }
}

/// `authors` may be one string or an array of strings.
fn take_authors(object: &mut Map<String, Value>) -> Result<Vec<String>, ParseError> {
    match object.remove("authors") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(wrong_type("authors", "an array of strings", &other)),
            })
            .collect(),
        Some(other) => Err(wrong_type(
            "authors",
            "a string or an array of strings",
            &other,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: usize = 1 << 20;

    #[test]
    fn json_article_keeps_unknown_fields_under_extra() {
        let a = parse(
            br#"{"id": 7, "title": "T", "body": "B", "section": "world"}"#,
            LIMIT,
        )
        .unwrap();
        assert_eq!(a.id.as_deref(), Some("7"));
        assert_eq!(a.extra["section"], "world");
    }

    #[test]
    fn plain_text_first_non_empty_line_is_the_title() {
        let a = parse(
            "\n\n  Headline here \nPara one.\n\nPara two.".as_bytes(),
            LIMIT,
        )
        .unwrap();
        assert_eq!(a.title.as_deref(), Some("Headline here"));
        assert_eq!(a.body.as_deref(), Some("Para one.\n\nPara two."));
    }

    #[test]
    fn poison_values_are_classified() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"  \n\t ", "empty"),
            (b"\xff\xfe\x00garbage", "invalid_utf8"),
            (br#"{"title": "trunc"#, "invalid_json"),
            (b"[1, 2]", "invalid_article"),
            (br#"{"title": 5}"#, "invalid_article"),
            (br#"{"title": "t", "authors": [1]}"#, "invalid_article"),
            (br#"{"url": "http://x"}"#, "invalid_article"),
            (br#"{"title": "  ", "body": ""}"#, "invalid_article"),
        ];
        for (value, reason) in cases {
            let err = parse(value, LIMIT).unwrap_err();
            assert_eq!(
                err.reason().as_str(),
                *reason,
                "{:?}: {err}",
                String::from_utf8_lossy(value)
            );
        }
        assert_eq!(
            parse(&[b'a'; 11], 10).unwrap_err().reason(),
            RejectReason::TooLarge
        );
    }

    #[test]
    fn unsafe_ids_are_dead_lettered_as_invalid_id() {
        let long = format!(r#"{{"id": "{}", "title": "t"}}"#, "a".repeat(257));
        let cases: &[&[u8]] = &[
            br#"{"id": "../../etc/passwd", "title": "t"}"#,
            br#"{"id": "a/b", "title": "t"}"#,
            br#"{"id": "a\\b", "title": "t"}"#,
            br#"{"id": "..", "title": "t"}"#,
            br#"{"id": "a\u0000b", "title": "t"}"#,
            br#"{"id": "a\nb", "title": "t"}"#,
            br#"{"id": "abc\u202Egpj.exe", "title": "t"}"#,
            long.as_bytes(),
        ];
        for value in cases {
            let err = parse(value, LIMIT).unwrap_err();
            assert_eq!(
                err.reason(),
                RejectReason::InvalidId,
                "{}",
                String::from_utf8_lossy(value)
            );
            assert!(!err.to_string().contains("passwd"), "{err}");
        }
        for ok in [
            "demo-1",
            "urn:uuid:1b4e28ba-2fa1",
            "a.b",
            "Artikel 12 (Ausgabe 3)",
        ] {
            let a = parse(
                format!(r#"{{"id": "{ok}", "title": "t"}}"#).as_bytes(),
                LIMIT,
            )
            .unwrap();
            assert_eq!(a.id.as_deref(), Some(ok));
        }
        let max = "a".repeat(MAX_ID_BYTES);
        assert!(
            parse(
                format!(r#"{{"id": "{max}", "title": "t"}}"#).as_bytes(),
                LIMIT
            )
            .is_ok()
        );
    }

    #[test]
    fn implausible_languages_are_dropped_with_a_warning() {
        for bad in [
            "../en",
            "english language",
            "e",
            "en\\u0000",
            "x-klingon",
            "en-toolongsubtag",
            "12",
        ] {
            let a = parse(
                format!(r#"{{"language": "{bad}", "title": "t"}}"#).as_bytes(),
                LIMIT,
            )
            .unwrap();
            assert_eq!(a.language, None, "{bad}");
            assert_eq!(a.warnings.len(), 1, "{bad}");
            assert!(a.warnings[0].starts_with("language:"), "{:?}", a.warnings);
        }
        for good in [
            "en",
            "EN",
            "pt-BR",
            "zh_Hant_TW",
            "gsw",
            "sr-Latn-RS",
            "de-DE-1996",
        ] {
            let a = parse(
                format!(r#"{{"language": "{good}", "title": "t"}}"#).as_bytes(),
                LIMIT,
            )
            .unwrap();
            assert_eq!(a.language.as_deref(), Some(good));
            assert!(a.warnings.is_empty());
        }
    }

    #[test]
    fn seed_article_parses_as_text() {
        let seed = include_str!("../samples/seed-article.txt");
        let a = parse(seed.as_bytes(), LIMIT).unwrap();
        assert_eq!(
            a.title.as_deref(),
            Some("Jaishankar, Lavrov to hold talks in Moscow on November 8")
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes, 256);
        }

        #[test]
        fn arbitrary_json_objects_never_panic(s in r#"\{("[a-z_]{1,8}": ("[^"\\]{0,8}"|[0-9]{1,4}|null|\[\]|true),? ?){0,6}\}"#) {
            let _ = parse(s.as_bytes(), LIMIT);
        }
    }
}
