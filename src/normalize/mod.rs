//! Stage 2: a [`RawArticle`] becomes a clean [`Article`]: text cleaned, HTML converted, page
//! chrome stripped, date in UTC, URL canonical, language detected, and a stable id.
//!
//! Pure and synchronous: no I/O, no clock.

pub mod date;
pub mod html;
pub mod language;
pub mod text;
pub mod url;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::parse::{RawArticle, RawDate};

/// Why an article cannot be normalized (dead-letter reason `normalize`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("article has no text left after cleaning")]
    NoText,
}

/// Where a metadata field's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The input record's own field.
    Record,
    /// The page's markup (meta tags, JSON-LD, `<title>`, `<h1>`, `<html lang>`...).
    Page,
    /// The first paragraph of the body (a title) or language detection.
    Body,
}

/// How the body of an `html` record was obtained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtractionInfo {
    /// `main_content`, `structured_data` (JSON-LD `articleBody`) or `whole_page`.
    pub method: &'static str,
    /// For `main_content`: how clearly the chosen block won, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    /// For `structured_data` and `whole_page`: why the markup's main content was not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<&'static str>,
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
    /// The record's language tag (lower-cased, as given), else the primary subtag of the
    /// page's `<html lang>`, else the detected language: ISO 639-1, or ISO 639-3 for the
    /// languages without a two-letter code.
    pub language: Option<String>,
    pub authors: Vec<String>,
    pub extra: Map<String, Value>,
    /// Non-fatal problems (an unparseable date, an invalid URL), kept on the event.
    pub warnings: Vec<String>,
    /// The page's description (`og:description`, `<meta name=description>`, JSON-LD).
    pub description: Option<String>,
    /// The page's main image URL (`og:image`, `twitter:image`, JSON-LD).
    pub image: Option<String>,
    /// Where each metadata field present came from (`title`, `published_at`, `authors`,
    /// `url`, `source`, `language`, `description`, `image`).
    pub origins: BTreeMap<&'static str, Origin>,
    /// Set when the body was extracted from `html`.
    pub extraction: Option<ExtractionInfo>,
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
    let mut warnings = raw.warnings.clone();
    let mut origins = BTreeMap::new();
    // The record's own body wins; extraction only applies to `html`.
    let (mut body, page) = match (&raw.body, &raw.html) {
        (Some(body), _) if !body.trim().is_empty() => (text::clean_body(body), None),
        (_, Some(html)) => {
            let extraction = html::extract(html);
            (text::clean_decoded_body(&extraction.text), Some(extraction))
        }
        _ => (String::new(), None),
    };
    let meta = page.as_ref().map(|p| &p.meta);
    let mut title = raw
        .title
        .as_deref()
        .map(text::clean_line)
        .filter(|t| !text::is_boilerplate(t))
        .unwrap_or_default();
    if !title.is_empty() {
        origins.insert("title", Origin::Record);
    } else if let Some(t) = meta
        .and_then(|m| m.title.as_deref())
        .map(text::clean_decoded_line)
        .filter(|t| !t.is_empty() && !text::is_boilerplate(t))
    {
        title = t;
        origins.insert("title", Origin::Page);
    }
    if title.is_empty() {
        // No title given: the first paragraph of the body stands in.
        if let Some((first, rest)) = body.split_once("\n\n") {
            title = first.to_string();
            body = rest.to_string();
        } else {
            std::mem::swap(&mut title, &mut body);
        }
        if !title.is_empty() {
            origins.insert("title", Origin::Body);
        }
    }
    if title.is_empty() && body.is_empty() {
        return Err(NormalizeError::NoText);
    }
    let mut published_at = raw.published_at.as_ref().and_then(|d| {
        let parsed = date::parse_date(d);
        if parsed.is_none() {
            warnings.push(format!(
                "published_at: unrecognised date {}",
                show_raw_date(d)
            ));
        }
        parsed
    });
    if published_at.is_some() {
        origins.insert("published_at", Origin::Record);
    } else if raw.published_at.is_none() {
        published_at = meta
            .and_then(|m| m.published.as_deref())
            .and_then(|d| date::parse_date(&RawDate::Text(d.to_string())));
        if published_at.is_some() {
            origins.insert("published_at", Origin::Page);
        }
    }
    let mut url = raw
        .url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .and_then(|u| {
            url::canonical_url(u)
                .map_err(|e| warnings.push(format!("url: {e}")))
                .ok()
        });
    if url.is_some() {
        origins.insert("url", Origin::Record);
    } else if raw.url.is_none() {
        url = meta
            .and_then(|m| m.canonical_url.as_deref())
            .and_then(|u| url::canonical_url(u).ok());
        if url.is_some() {
            origins.insert("url", Origin::Page);
        }
    }
    let mut source = raw
        .source
        .as_deref()
        .map(text::clean_line)
        .filter(|s| !s.is_empty());
    if source.is_some() {
        origins.insert("source", Origin::Record);
    } else {
        source = meta
            .and_then(|m| m.site_name.as_deref())
            .map(text::clean_decoded_line)
            .filter(|s| !s.is_empty());
        if source.is_some() {
            origins.insert("source", Origin::Page);
        }
    }
    let given_language = raw
        .language
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_ascii_lowercase);
    let page_language = meta
        .and_then(|m| m.language.as_deref())
        .and_then(language::primary_language);
    let language = match (given_language, page_language) {
        (Some(given), _) => {
            origins.insert("language", Origin::Record);
            Some(given)
        }
        (None, Some(page)) => {
            origins.insert("language", Origin::Page);
            Some(page)
        }
        (None, None) => {
            let detected = language::detect(&title, &body);
            if detected.is_some() {
                origins.insert("language", Origin::Body);
            }
            detected
        }
    };
    let mut authors: Vec<String> = raw
        .authors
        .iter()
        .map(|a| text::clean_line(a))
        .filter(|a| !a.is_empty())
        .collect();
    if !authors.is_empty() {
        origins.insert("authors", Origin::Record);
    } else if let Some(m) = meta {
        authors = m
            .authors
            .iter()
            .map(|a| text::clean_decoded_line(a))
            .filter(|a| !a.is_empty())
            .collect();
        if !authors.is_empty() {
            origins.insert("authors", Origin::Page);
        }
    }
    let description = meta
        .and_then(|m| m.description.as_deref())
        .map(text::clean_decoded_line)
        .filter(|d| !d.is_empty());
    let image = meta
        .and_then(|m| m.image.as_deref())
        .map(str::trim)
        .filter(|i| !i.is_empty() && !i.chars().any(char::is_control))
        .map(str::to_string);
    for (field, present) in [
        ("description", description.is_some()),
        ("image", image.is_some()),
    ] {
        if present {
            origins.insert(field, Origin::Page);
        }
    }
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
        authors,
        extra: raw.extra,
        warnings,
        description,
        image,
        origins,
        extraction: page.map(|p| ExtractionInfo {
            method: p.method.as_str(),
            confidence: p.confidence,
            fallback_reason: p.fallback_reason,
        }),
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
    fn page_metadata_is_decoded_once() {
        let html = "<html><head><title>AT&amp;amp;T &amp; friends</title>\
                    <meta name=\"description\" content=\"Fish &amp;amp; chips\">\
                    <meta property=\"og:site_name\" content=\"B&amp;amp;Q\"></head>\
                    <body><article><p>Plenty of text about the company, its results and its plans for \
                    the year, with several clauses, commas, and enough words to count.</p></article>\
                    </body></html>";
        let a = norm(&serde_json::json!({ "html": html }).to_string());
        assert_eq!(a.title, "AT&amp;T & friends");
        assert_eq!(a.source.as_deref(), Some("B&amp;Q"));
        assert_eq!(a.description.as_deref(), Some("Fish &amp; chips"));
    }

    const PAGE: &str = r#"<html lang="en-GB"><head><title>Big news in Paris | The Site</title>
        <meta property="og:site_name" content="The Site"><meta name="description" content="What happened.">
        <meta property="og:image" content="https://e.com/i.png"><link rel="canonical" href="https://E.com/a?utm_source=x">
        <script type="application/ld+json">{"@graph": [{"@type": "NewsArticle", "datePublished": "2022-11-03T10:00:00Z",
        "author": [{"@type": "Person", "name": "Jane Doe"}, {"name": "John Roe"}]}]}</script></head>
        <body><nav class="menu"><a href="/">Home</a> <a href="/world">World</a></nav>
        <article><h1>Big news in Paris</h1><p>Paris is big, and it is getting bigger every year, the mayor said on Friday, to nobody's surprise.</p>
        <div class="share-bar">Share on Facebook</div>
        <p>Second paragraph, with more words, commas, and detail, so the scoring has something to work on.</p></article>
        <div id="comments"><p>First comment, which is long enough to be a paragraph, but it is not the article.</p></div>
        <footer><p>Copyright, all rights reserved, and a long footer line about the company and its many offices.</p></footer></body></html>"#;

    fn page_record(extra: &str) -> Vec<u8> {
        let html = serde_json::to_string(PAGE).unwrap();
        format!(r#"{{"html": {html}{extra}}}"#).into_bytes()
    }

    #[test]
    fn a_page_gives_its_article_and_metadata() {
        let a = normalize(parse(&page_record(""), 1 << 20).unwrap()).unwrap();
        assert_eq!(a.title, "Big news in Paris");
        assert!(a.body.starts_with("Paris is big"), "{}", a.body);
        assert!(a.body.ends_with("something to work on."), "{}", a.body);
        for chrome in ["Home", "Share on", "comment", "Copyright"] {
            assert!(!a.body.contains(chrome), "{chrome} in {}", a.body);
        }
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2022-11-03T10:00:00+00:00"
        );
        assert_eq!(a.authors, ["Jane Doe", "John Roe"]);
        assert_eq!(a.url.as_deref(), Some("https://e.com/a"));
        assert_eq!(a.source.as_deref(), Some("The Site"));
        assert_eq!(a.language.as_deref(), Some("en"));
        assert_eq!(a.description.as_deref(), Some("What happened."));
        assert_eq!(a.image.as_deref(), Some("https://e.com/i.png"));
        assert!(
            a.origins.values().all(|&o| o == Origin::Page),
            "{:?}",
            a.origins
        );
        assert_eq!(a.origins.len(), 8);
        let extraction = a.extraction.unwrap();
        assert_eq!(extraction.method, "main_content");
        assert!(extraction.confidence.is_some());
    }

    #[test]
    fn record_fields_win_over_the_page() {
        let extra = r#", "title": "Given", "published_at": "2020-01-01", "authors": ["A"], "url": "https://x.com/b", "language": "fr", "source": "S""#;
        let a = normalize(parse(&page_record(extra), 1 << 20).unwrap()).unwrap();
        assert_eq!(a.title, "Given");
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2020-01-01T00:00:00+00:00"
        );
        assert_eq!(a.authors, ["A"]);
        assert_eq!(a.url.as_deref(), Some("https://x.com/b"));
        assert_eq!(a.language.as_deref(), Some("fr"));
        assert_eq!(a.source.as_deref(), Some("S"));
        for field in [
            "title",
            "published_at",
            "authors",
            "url",
            "language",
            "source",
        ] {
            assert_eq!(a.origins[field], Origin::Record, "{field}");
        }
        assert_eq!(a.origins["description"], Origin::Page);
        // A given body is kept as is: no extraction.
        let b = norm(r#"{"body": "Own body text.", "html": "<p>Page text</p>", "title": "T"}"#);
        assert_eq!(b.body, "Own body text.");
        assert_eq!(b.extraction, None);
    }

    #[test]
    fn a_page_without_main_content_falls_back_to_its_text() {
        let a = norm(r#"{"html": "<p>Just one line.</p>", "title": "T"}"#);
        assert_eq!(a.body, "Just one line.");
        let extraction = a.extraction.unwrap();
        assert_eq!(extraction.method, "whole_page");
        assert!(extraction.fallback_reason.is_some());
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
