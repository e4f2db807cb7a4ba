//! Canonical URLs: lower-case scheme and host, no default port, no fragment, no tracking
//! parameters.

use url::Url;

/// Query parameters that identify a click, not a page.
fn is_tracking_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_")
        || matches!(
            name.as_str(),
            "fbclid"
                | "gclid"
                | "dclid"
                | "gbraid"
                | "wbraid"
                | "msclkid"
                | "mc_cid"
                | "mc_eid"
                | "igshid"
                | "yclid"
                | "_ga"
                | "_gl"
                | "ocid"
                | "cmpid"
                | "ncid"
                | "smid"
        )
}

/// The canonical form of `raw`, or an error message when it is not an absolute http(s) URL.
pub fn canonical_url(raw: &str) -> Result<String, String> {
    let mut url = Url::parse(raw.trim()).map_err(|e| format!("invalid url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("unsupported url scheme `{}`", url.scheme()));
    }
    url.set_fragment(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_tracking_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_is_dropped_and_host_lowered() {
        assert_eq!(
            canonical_url("HTTPS://WWW.Example.COM:443/News/a?id=3&utm_source=x&fbclid=y#top")
                .unwrap(),
            "https://www.example.com/News/a?id=3"
        );
        assert_eq!(
            canonical_url("http://example.com/a?utm_medium=m").unwrap(),
            "http://example.com/a"
        );
        assert!(canonical_url("not a url").is_err());
        assert!(canonical_url("ftp://example.com/x").is_err());
    }
}
