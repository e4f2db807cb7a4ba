//! Stage 2: a [`RawArticle`] becomes a clean [`Article`]: text cleaned, HTML converted, page
//! chrome stripped, date in UTC, URL canonical, language detected, and a stable id.
//!
//! Pure and synchronous: no I/O, no clock.

pub mod date;
pub mod html;
pub mod text;
pub mod url;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::parse::{RawArticle, RawDate};

/// Why an article cannot be normalized (dead-letter reason `normalize`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("article has no text left after cleaning")]
    NoText,
}

/// A cleaned article, ready to enrich.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    /// Given id, else a hash of the canonical URL, else of source, title and body.
    pub article_id: String,
    pub source: Option<String>,
    pub url: Option<String>,
    pub title: String,
    /// Paragraphs separated by a blank line.
    pub body: String,
    pub published_at: Option<DateTime<Utc>>,
    /// ISO 639-1 code (given, else detected).
    pub language: Option<String>,
    pub authors: Vec<String>,
    pub extra: Map<String, Value>,
    /// Non-fatal problems (an unparseable date, an invalid URL), kept on the event.
    pub warnings: Vec<String>,
}

impl Article {
    /// Words in title and body.
    pub fn word_count(&self) -> usize {
        self.title.split_whitespace().count() + self.body.split_whitespace().count()
    }

    /// A digest of the article's content, for deterministic event ids.
    pub fn content_digest(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.source.as_deref().unwrap_or(""),
            self.url.as_deref().unwrap_or(""),
            &self.title,
            &self.body,
            &self
                .published_at
                .map(|d| d.to_rfc3339())
                .unwrap_or_default(),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// Normalizes one raw article.
pub fn normalize(raw: RawArticle) -> Result<Article, NormalizeError> {
    let mut warnings = Vec::new();
    let mut body = match (&raw.body, &raw.html) {
        (Some(body), _) if !body.trim().is_empty() => text::clean_body(body),
        (_, Some(html)) => text::clean_decoded_body(&html::html_to_text(html)),
        _ => String::new(),
    };
    let mut title = raw
        .title
        .as_deref()
        .map(text::clean_line)
        .filter(|t| !text::is_boilerplate(t))
        .unwrap_or_default();
    if title.is_empty() {
        // No title given: the first paragraph of the body stands in.
        if let Some((first, rest)) = body.split_once("\n\n") {
            title = first.to_string();
            body = rest.to_string();
        } else {
            std::mem::swap(&mut title, &mut body);
        }
    }
    if title.is_empty() && body.is_empty() {
        return Err(NormalizeError::NoText);
    }
    let published_at = raw.published_at.as_ref().and_then(|d| {
        let parsed = date::parse_date(d);
        if parsed.is_none() {
            warnings.push(format!(
                "published_at: unrecognised date {}",
                show_raw_date(d)
            ));
        }
        parsed
    });
    let url = raw
        .url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .and_then(|u| {
            url::canonical_url(u)
                .map_err(|e| warnings.push(format!("url: {e}")))
                .ok()
        });
    let source = raw
        .source
        .as_deref()
        .map(text::clean_line)
        .filter(|s| !s.is_empty());
    let language = match raw
        .language
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        Some(given) => Some(given.to_ascii_lowercase()),
        None => detect_language(&title, &body),
    };
    let article_id = match &raw.id {
        Some(id) => id.clone(),
        None => match &url {
            Some(u) => hash_id(&[u]),
            None => hash_id(&[source.as_deref().unwrap_or(""), &title, &body]),
        },
    };
    Ok(Article {
        article_id,
        source,
        url,
        title,
        body,
        published_at,
        language,
        authors: raw
            .authors
            .iter()
            .map(|a| text::clean_line(a))
            .filter(|a| !a.is_empty())
            .collect(),
        extra: raw.extra,
        warnings,
    })
}

fn show_raw_date(d: &RawDate) -> String {
    match d {
        RawDate::Text(s) => format!("{:?}", s.chars().take(64).collect::<String>()),
        RawDate::Epoch(n) => n.to_string(),
    }
}

/// A 128-bit hex id over the parts (NUL-separated).
fn hash_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

/// Detects the language of title and body (first 2,000 characters), as ISO 639-1.
fn detect_language(title: &str, body: &str) -> Option<String> {
    let sample: String = title
        .chars()
        .chain(['\n'])
        .chain(body.chars())
        .take(2_000)
        .collect();
    let info = whatlang::detect(&sample)?;
    if !info.is_reliable() && sample.split_whitespace().count() < 5 {
        return None;
    }
    Some(iso_639_1(info.lang()).to_string())
}

/// ISO 639-1 for the languages news arrives in; ISO 639-3 otherwise.
fn iso_639_1(lang: whatlang::Lang) -> &'static str {
    use whatlang::Lang::*;
    match lang {
        Eng => "en",
        Fra => "fr",
        Deu => "de",
        Spa => "es",
        Por => "pt",
        Ita => "it",
        Nld => "nl",
        Rus => "ru",
        Ukr => "uk",
        Pol => "pl",
        Tur => "tr",
        Ara => "ar",
        Hin => "hi",
        Cmn => "zh",
        Jpn => "ja",
        Kor => "ko",
        Swe => "sv",
        Dan => "da",
        Nob => "no",
        Fin => "fi",
        Ces => "cs",
        Ell => "el",
        Heb => "he",
        Ind => "id",
        Vie => "vi",
        Tha => "th",
        Ron => "ro",
        Hun => "hu",
        Ben => "bn",
        Urd => "ur",
        Pes => "fa",
        Tam => "ta",
        Mar => "mr",
        Tel => "te",
        Guj => "gu",
        Kan => "kn",
        Mal => "ml",
        Pan => "pa",
        Bul => "bg",
        Srp => "sr",
        Hrv => "hr",
        Slk => "sk",
        Slv => "sl",
        Lit => "lt",
        Lav => "lv",
        Est => "et",
        Cat => "ca",
        Afr => "af",
        other => other.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_through_parse_and_normalize(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(raw) = parse(&bytes, 1 << 20) {
                let _ = normalize(raw);
            }
        }

        #[test]
        fn arbitrary_text_fields_never_panic(title in "\\PC{0,80}", body in "(\\PC|\n|<[a-z/]{1,4}>|&[a-z#0-9]{1,6};|Ã|â€){0,300}", date in "\\PC{0,30}", url in "\\PC{0,40}") {
            let raw = RawArticle {
                title: Some(title),
                html: Some(body.clone()),
                body: Some(body),
                published_at: Some(RawDate::Text(date)),
                url: Some(url),
                ..RawArticle::default()
            };
            if let Ok(a) = normalize(raw) {
                prop_assert!(!a.body.contains("\n\n\n"));
                prop_assert!(!a.title.starts_with(' '));
            }
        }

        #[test]
        fn arbitrary_epoch_numbers_never_panic(n in any::<f64>()) {
            let _ = date::parse_date(&RawDate::Epoch(n));
        }
    }

    fn norm(value: &str) -> Article {
        normalize(parse(value.as_bytes(), 1 << 20).unwrap()).unwrap()
    }

    #[test]
    fn seed_article_loses_its_page_chrome() {
        let a = norm(include_str!("../../samples/seed-article.txt"));
        assert_eq!(
            a.title,
            "Jaishankar, Lavrov to hold talks in Moscow on November 8"
        );
        assert!(a.body.starts_with("A DAY after Russian Defence Minister"));
        assert!(
            a.body
                .ends_with("India has not yet publicly condemned the Russian invasion of Ukraine."),
            "{}",
            a.body
        );
        assert_eq!(a.language.as_deref(), Some("en"));
    }

    #[test]
    fn html_becomes_text_and_fields_are_normalized() {
        let a = norm(
            r#"{"url": "https://News.Example.com/a?utm_source=tw", "html": "<p>Hello &amp; welcome to the world news today.</p><p>Second para.</p>", "published_at": "November 8, 2022", "title": "Hi"}"#,
        );
        assert_eq!(
            a.body,
            "Hello & welcome to the world news today.\n\nSecond para."
        );
        assert_eq!(a.url.as_deref(), Some("https://news.example.com/a"));
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2022-11-08T00:00:00+00:00"
        );
    }

    #[test]
    fn article_id_is_stable_and_prefers_given_then_url() {
        let given = norm(r#"{"id": "abc", "title": "T", "url": "http://x.com/a"}"#);
        assert_eq!(given.article_id, "abc");
        let a = norm(r#"{"title": "T", "url": "http://X.com/a?utm_campaign=1"}"#);
        let b = norm(r#"{"title": "Other", "url": "http://x.com/a"}"#);
        assert_eq!(a.article_id, b.article_id);
        let c = norm(r#"{"title": "T", "body": "B"}"#);
        let d = norm(r#"{"title": "T", "body": "B"}"#);
        assert_eq!(c.article_id, d.article_id);
        assert_eq!(c.content_digest(), d.content_digest());
    }

    #[test]
    fn bad_date_and_url_are_warnings_not_failures() {
        let a = norm(r#"{"title": "T", "published_at": "soon", "url": "nope"}"#);
        assert_eq!(a.published_at, None);
        assert_eq!(a.warnings.len(), 2, "{:?}", a.warnings);
    }

    #[test]
    fn chrome_only_article_fails() {
        let raw = parse(b"Leave a Reply\n\nBack to top button", 1 << 20).unwrap();
        assert_eq!(normalize(raw), Err(NormalizeError::NoText));
    }
}
