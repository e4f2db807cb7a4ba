//! Page metadata: title, publication date, authors, canonical URL, site name, language,
//! description and main image, from `<meta>` tags, JSON-LD, `<link rel=canonical>`,
//! `<html lang>`, `<time>`, `<h1>` and bylines, gathered during the extraction walk.
//!
//! Bounds: each field keeps its first value (later ones cost a comparison); JSON-LD blocks
//! are parsed only up to [`MAX_JSON_LD_BYTES`] each and [`MAX_JSON_LD_BLOCKS`] in all, and
//! searched at most [`MAX_JSON_LD_DEPTH`] levels deep; every string kept is cut to
//! [`MAX_FIELD_CHARS`].

use serde_json::Value;

use super::tokenizer::Tag;

/// Largest JSON-LD block parsed.
pub const MAX_JSON_LD_BYTES: usize = 256 * 1024;
/// JSON-LD blocks parsed per page.
pub const MAX_JSON_LD_BLOCKS: usize = 8;
/// How deep the search for an article object goes into a JSON-LD value.
pub const MAX_JSON_LD_DEPTH: usize = 6;
/// Longest metadata value kept, in characters.
pub const MAX_FIELD_CHARS: usize = 1000;
/// Longest JSON-LD `articleBody` kept, in characters.
pub const MAX_BODY_CHARS: usize = 200_000;
/// Most authors kept.
pub const MAX_AUTHORS: usize = 10;

/// Metadata found in a page; every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageMeta {
    pub title: Option<String>,
    /// As written in the page (parsed by the caller).
    pub published: Option<String>,
    pub authors: Vec<String>,
    pub canonical_url: Option<String>,
    pub site_name: Option<String>,
    /// The `<html lang>` value, e.g. `en-US`.
    pub language: Option<String>,
    pub description: Option<String>,
    pub image: Option<String>,
    /// JSON-LD `articleBody`, when present (a fallback for pages whose text is not in the
    /// markup), cut to [`MAX_BODY_CHARS`].
    pub article_body: Option<String>,
}

/// Candidates seen during the walk, by source.
#[derive(Default)]
pub(crate) struct MetaCollector<'a> {
    lang: Option<&'a str>,
    title_tag: Option<&'a str>,
    /// `(key, content)` of `<meta property|name|itemprop=key content=...>`, first per key.
    metas: Vec<(String, &'a str)>,
    canonical: Option<&'a str>,
    time: Option<&'a str>,
    ld: LdArticle,
    ld_blocks: usize,
}

/// What JSON-LD said about the article.
#[derive(Default)]
struct LdArticle {
    headline: Option<String>,
    published: Option<String>,
    authors: Vec<String>,
    url: Option<String>,
    publisher: Option<String>,
    description: Option<String>,
    image: Option<String>,
    body: Option<String>,
}

/// The meta keys kept.
const META_KEYS: &[&str] = &[
    "og:title",
    "twitter:title",
    "og:url",
    "og:site_name",
    "og:description",
    "twitter:description",
    "description",
    "og:image",
    "twitter:image",
    "author",
    "article:author",
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "parsely-pub-date",
    "pubdate",
    "publishdate",
    "date",
    "dc.date",
    "dc.date.issued",
    "dcterms.created",
    "sailthru.date",
    "dc.creator",
    "parsely-author",
    "sailthru.author",
    "application-name",
];

fn cut(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(MAX_FIELD_CHARS) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Decodes character references and collapses whitespace in an attribute or title value.
/// Only a prefix is decoded: a value (an unclosed `<title>`, a 1 MiB `content=`) is cut to a
/// few times the kept length first, so the work does not grow with the page.
fn clean(s: &str) -> String {
    let mut end = s.len().min(12 * MAX_FIELD_CHARS);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let decoded = html_escape::decode_html_entities(&s[..end]);
    cut(&crate::normalize::text::collapse_line(&decoded))
}

impl<'a> MetaCollector<'a> {
    /// The page's `<title>`, decoded and cut like the other fields.
    pub(crate) fn title_tag(&self) -> Option<String> {
        self.title_tag.map(clean).filter(|t| !t.is_empty())
    }

    pub(crate) fn open(&mut self, tag: &Tag<'a>) {
        if tag.name.is("html") && self.lang.is_none() {
            self.lang = tag.attr("lang").or_else(|| tag.attr("xml:lang"));
        } else if tag.name.is("time")
            && let Some(dt) = tag.attr("datetime")
        {
            let published = tag.attr("pubdate").is_some()
                || tag
                    .attr("itemprop")
                    .is_some_and(|p| p.eq_ignore_ascii_case("datePublished"));
            if self.time.is_none() || published {
                self.time = Some(dt);
            }
        }
    }

    pub(crate) fn void(&mut self, tag: &Tag<'a>) {
        if tag.name.is("meta") {
            let Some(content) = tag.attr("content") else {
                return;
            };
            for key_attr in ["property", "name", "itemprop"] {
                let Some(keys) = tag.attr(key_attr) else {
                    continue;
                };
                // `property="og:title twitter:title"` names several keys.
                for key in keys.split_whitespace().take(4) {
                    let key = key.to_ascii_lowercase();
                    if META_KEYS.contains(&key.as_str())
                        && !self.metas.iter().any(|(k, _)| *k == key)
                    {
                        self.metas.push((key, content));
                    }
                }
            }
        } else if tag.name.is("link") && self.canonical.is_none() {
            let canonical = tag.attr("rel").is_some_and(|r| {
                r.split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("canonical"))
            });
            if canonical {
                self.canonical = tag.attr("href");
            }
        }
    }

    pub(crate) fn raw(&mut self, tag: &Tag<'a>, content: &'a str) {
        if tag.name.is("title") {
            if self.title_tag.is_none() {
                self.title_tag = Some(content);
            }
        } else if tag.name.is("script")
            && tag
                .attr("type")
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/ld+json"))
            && self.ld_blocks < MAX_JSON_LD_BLOCKS
            && content.len() <= MAX_JSON_LD_BYTES
        {
            self.ld_blocks += 1;
            if let Ok(value) = serde_json::from_str::<Value>(content.trim()) {
                // Articles first, then WebPage objects for whatever no article gave (fill
                // keeps the first value), whatever their order in the block.
                self.ld.search(&value, 0, false);
                self.ld.search(&value, 0, true);
            }
        }
    }

    fn meta(&self, key: &str) -> Option<String> {
        self.metas
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| clean(v))
            .filter(|v| !v.is_empty())
    }

    fn first_meta(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.meta(k))
    }

    /// The metadata, given the page's first `<h1>` text and byline texts.
    pub(crate) fn finish(self, h1: Option<&str>, bylines: &[&str]) -> PageMeta {
        let site_name = self
            .first_meta(&["og:site_name", "application-name"])
            .or_else(|| self.ld.publisher.clone());
        let title_tag = self.title_tag.map(clean).filter(|t| !t.is_empty());
        let title = self
            .first_meta(&["og:title", "twitter:title"])
            .map(|t| strip_site_suffix(&t, site_name.as_deref(), false))
            .or_else(|| self.ld.headline.clone())
            .or_else(|| {
                // The `<h1>` when the `<title>` agrees with it (a page's first `<h1>` is
                // sometimes the site's logo or a section name), else the `<title>`.
                let h1 = h1.map(cut).filter(|t| !t.is_empty());
                match (h1, title_tag.as_deref()) {
                    (Some(h), Some(t)) if t.contains(h.as_str()) => Some(h),
                    (Some(h), None) => Some(h),
                    (_, Some(t)) => Some(strip_site_suffix(t, site_name.as_deref(), true)),
                    (None, None) => None,
                }
            });
        let published = self
            .ld
            .published
            .clone()
            .or_else(|| {
                self.first_meta(&[
                    "article:published_time",
                    "og:article:published_time",
                    "datepublished",
                    "parsely-pub-date",
                    "pubdate",
                    "publishdate",
                    "sailthru.date",
                    "dc.date.issued",
                    "dc.date",
                    "dcterms.created",
                    "date",
                ])
            })
            .or_else(|| self.time.map(clean).filter(|t| !t.is_empty()));
        let mut authors = self.ld.authors.clone();
        if authors.is_empty()
            && let Some(a) = self.first_meta(&[
                "author",
                "dc.creator",
                "parsely-author",
                "sailthru.author",
                "article:author",
            ])
            && !a.starts_with("http")
        {
            authors = a
                .split([',', ';'])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect();
        }
        if authors.is_empty() {
            // The first byline that names someone; later ones are repeats or comments.
            authors = bylines
                .iter()
                .find_map(|b| byline_name(b))
                .into_iter()
                .collect();
        }
        authors.dedup();
        authors.truncate(MAX_AUTHORS);
        PageMeta {
            title,
            published,
            authors,
            canonical_url: self
                .canonical
                .map(clean)
                .filter(|u| !u.is_empty())
                .or_else(|| self.meta("og:url"))
                .or_else(|| self.ld.url.clone()),
            site_name,
            language: self.lang.map(clean).filter(|l| !l.is_empty()),
            description: self
                .first_meta(&["og:description", "description", "twitter:description"])
                .or_else(|| self.ld.description.clone()),
            image: self
                .first_meta(&["og:image", "twitter:image"])
                .or_else(|| self.ld.image.clone()),
            article_body: self.ld.body,
        }
    }
}

/// A name from a byline such as "By Jane Doe | Reuters"; `None` for what does not look
/// like a name (dates, handles, labels such as "Name *" or "About the author").
pub(crate) fn byline_name(text: &str) -> Option<String> {
    let mut t = text.trim();
    for prefix in ["by ", "By ", "BY ", "Von ", "Par ", "Por "] {
        if let Some(rest) = t.strip_prefix(prefix) {
            t = rest;
        }
    }
    let t = t.split(['|', '•', '·']).next()?.trim();
    let words = t.split_whitespace().count();
    let name_like = (1..=6).contains(&words)
        && !t
            .chars()
            .any(|c| c.is_ascii_digit() || matches!(c, '@' | '*' | ':' | '/'))
        && !t.to_lowercase().contains("author");
    name_like.then(|| cut(t))
}

/// Removes a " | Site" or " - Site" suffix: always when it is the site's name; with
/// `guess`, also when the rest still has at least three words (readability's rule).
fn strip_site_suffix(title: &str, site: Option<&str>, guess: bool) -> String {
    for sep in [" | ", " – ", " — ", " - ", " :: ", " · ", " » "] {
        if let Some(i) = title.rfind(sep) {
            let (head, tail) = (&title[..i], &title[i + sep.len()..]);
            let is_site = site.is_some_and(|s| tail.trim().eq_ignore_ascii_case(s.trim()));
            if is_site || (guess && head.split_whitespace().count() >= 3) {
                return head.trim().to_string();
            }
        }
    }
    title.to_string()
}

const ARTICLE_TYPES: &[&str] = &[
    "Article",
    "NewsArticle",
    "BlogPosting",
    "ReportageNewsArticle",
    "AnalysisNewsArticle",
    "OpinionNewsArticle",
    "Report",
    "ScholarlyArticle",
    "TechArticle",
    "LiveBlogPosting",
    "SocialMediaPosting",
    "BackgroundNewsArticle",
    "ReviewNewsArticle",
];

fn ld_str(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(clean(s)).filter(|s| !s.is_empty()),
        Value::Array(a) => a.iter().find_map(|v| ld_str(Some(v))),
        Value::Object(o) => ld_str(
            o.get("name")
                .or_else(|| o.get("url"))
                .or_else(|| o.get("@id")),
        ),
        _ => None,
    }
}

impl LdArticle {
    /// Looks for article objects (also inside `@graph` and arrays), fills what is missing.
    fn search(&mut self, v: &Value, depth: usize, webpages: bool) {
        if depth > MAX_JSON_LD_DEPTH {
            return;
        }
        match v {
            Value::Array(items) => {
                for item in items.iter().take(64) {
                    self.search(item, depth + 1, webpages);
                }
            }
            Value::Object(o) => {
                let wanted: &[&str] = if webpages {
                    &["WebPage"]
                } else {
                    ARTICLE_TYPES
                };
                let matches = match o.get("@type") {
                    Some(Value::String(t)) => wanted.contains(&t.as_str()),
                    Some(Value::Array(ts)) => ts
                        .iter()
                        .take(8)
                        .any(|t| t.as_str().is_some_and(|t| wanted.contains(&t))),
                    _ => false,
                };
                if matches {
                    self.fill(o);
                }
                if let Some(g) = o.get("@graph") {
                    self.search(g, depth + 1, webpages);
                }
                if let Some(m) = o.get("mainEntity") {
                    self.search(m, depth + 1, webpages);
                }
            }
            _ => {}
        }
    }

    fn fill(&mut self, o: &serde_json::Map<String, Value>) {
        let webpage = o.get("@type").and_then(Value::as_str) == Some("WebPage");
        if !webpage {
            self.headline = self.headline.take().or_else(|| ld_str(o.get("headline")));
        }
        self.published = self
            .published
            .take()
            .or_else(|| ld_str(o.get("datePublished")));
        if self.authors.is_empty() {
            let names = match o.get("author") {
                Some(Value::Array(a)) => a
                    .iter()
                    .take(MAX_AUTHORS)
                    .filter_map(|v| ld_str(Some(v)))
                    .collect(),
                Some(v) => ld_str(Some(v)).into_iter().collect(),
                None => Vec::new(),
            };
            self.authors = names
                .into_iter()
                .filter(|n: &String| !n.starts_with("http"))
                .collect();
        }
        self.url = self.url.take().or_else(|| ld_str(o.get("url")));
        self.publisher = self.publisher.take().or_else(|| {
            o.get("publisher")
                .and_then(|p| p.get("name"))
                .and_then(|n| ld_str(Some(n)))
        });
        self.description = self
            .description
            .take()
            .or_else(|| ld_str(o.get("description")));
        self.image = self.image.take().or_else(|| ld_str(o.get("image")));
        if self.body.is_none()
            && let Some(Value::String(b)) = o.get("articleBody")
        {
            let decoded = html_escape::decode_html_entities(b);
            let end = decoded
                .char_indices()
                .nth(MAX_BODY_CHARS)
                .map_or(decoded.len(), |(i, _)| i);
            self.body = Some(decoded[..end].trim().to_string()).filter(|b| !b.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::html::extract;

    #[test]
    fn an_article_in_json_ld_wins_over_a_webpage_listed_before_it() {
        let html = r#"<html><head><script type="application/ld+json">{"@graph": [
            {"@type": "WebPage", "datePublished": "2020-01-01", "description": "The site."},
            {"@type": "NewsArticle", "datePublished": "2022-11-03T10:00:00Z"}]}</script>
            </head><body><p>Text.</p></body></html>"#;
        let m = extract(html).meta;
        assert_eq!(m.published.as_deref(), Some("2022-11-03T10:00:00Z"));
        // What no article gives still comes from the WebPage.
        assert_eq!(m.description.as_deref(), Some("The site."));
    }

    #[test]
    fn bylines_give_names_not_dates_or_labels() {
        assert_eq!(
            byline_name("By Jane Doe | Reuters").as_deref(),
            Some("Jane Doe")
        );
        assert_eq!(
            byline_name("Par Jean Dupont").as_deref(),
            Some("Jean Dupont")
        );
        assert_eq!(byline_name("April 5, 2018"), None);
        assert_eq!(byline_name("Name *"), None);
        assert_eq!(byline_name("About the author"), None);
        assert_eq!(byline_name("@handle"), None);
    }

    #[test]
    fn site_suffixes_are_removed_from_titles() {
        assert_eq!(
            strip_site_suffix("Big news | Site", Some("Site"), false),
            "Big news"
        );
        assert_eq!(strip_site_suffix("A - B", None, false), "A - B");
        assert_eq!(
            strip_site_suffix("Three word title - Site", None, true),
            "Three word title"
        );
        assert_eq!(
            strip_site_suffix("Short - Site", None, true),
            "Short - Site"
        );
    }

    #[test]
    fn the_title_is_the_h1_only_when_the_title_tag_agrees() {
        let page =
            |h1: &str| format!("<title>Daring Fireball: Colophon</title><h1>{h1}</h1><p>text</p>");
        let m = extract(&page("About This Site")).meta;
        assert_eq!(m.title.as_deref(), Some("Daring Fireball: Colophon"));
        let m = extract(&page("Colophon")).meta;
        assert_eq!(m.title.as_deref(), Some("Colophon"));
    }

    #[test]
    fn json_ld_in_a_graph_gives_date_authors_and_publisher() {
        let html = r#"<script type="application/ld+json">{"@context": "https://schema.org",
            "@graph": [{"@type": "WebSite", "name": "x"}, {"@type": ["NewsArticle"],
            "headline": "H", "datePublished": "2022-11-03", "author": [{"name": "A"}, "B"],
            "publisher": {"@type": "Organization", "name": "P"}, "image": {"url": "https://i"}}]}
            </script><time datetime="2001-01-01">old</time>"#;
        let m = extract(html).meta;
        assert_eq!(m.title.as_deref(), Some("H"));
        assert_eq!(m.published.as_deref(), Some("2022-11-03"));
        assert_eq!(m.authors, ["A", "B"]);
        assert_eq!(m.site_name.as_deref(), Some("P"));
        assert_eq!(m.image.as_deref(), Some("https://i"));
    }
}
