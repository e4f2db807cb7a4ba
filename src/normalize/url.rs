//! Canonical URLs: lower-case scheme and host, no default port, no fragment, no tracking
//! parameters, and no credentials: neither `user:password@` nor parameters that carry a
//! token, key, signature or session (a scraped link often does; the canonical URL is both
//! published in the event and hashed into `article_id`, so it must hold no secret).

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

/// Query parameters that carry a credential: a token, key, signature, password or session.
/// Matched on the name's words (split at `_`, `-`, `.`), so `api_key`, `X-Amz-Signature`
/// and `access_token` match while `monkey` or `keyword` do not.
pub fn is_credential_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if matches!(
        name.as_str(),
        // Not `sid`: on many sites it is the story id, and the canonical URL is hashed into
        // article_id, so dropping it would merge different articles.
        "apikey" | "sig" | "jwt" | "pwd" | "pass" | "passwd" | "oauth"
    ) {
        return true;
    }
    name.split(['_', '-', '.']).any(|word| {
        matches!(
            word,
            "token"
                | "accesstoken"
                | "key"
                | "apikey"
                | "signature"
                | "sig"
                | "auth"
                | "authorization"
                | "password"
                | "passwd"
                | "secret"
                | "session"
                | "sessionid"
                | "credential"
                | "jwt"
        )
    })
}

/// The canonical form of `raw`, or an error message when it is not an absolute http(s) URL.
pub fn canonical_url(raw: &str) -> Result<String, String> {
    let mut url = Url::parse(raw.trim()).map_err(|e| format!("invalid url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("unsupported url scheme `{}`", url.scheme()));
    }
    url.set_fragment(None);
    // Fails only for URLs that cannot carry credentials; http(s) URLs always can.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_tracking_param(k) && !is_credential_param(k))
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

    #[test]
    fn credentials_are_stripped_from_user_info_and_query() {
        assert_eq!(
            canonical_url("https://user:secret@Example.com/a?token=abc").unwrap(),
            "https://example.com/a"
        );
        assert_eq!(
            canonical_url("https://user@example.com/a?id=3&api_key=k&X-Amz-Signature=s&access_token=t&sessionid=x&sig=y&auth=z").unwrap(),
            "https://example.com/a?id=3"
        );
        // Words that merely contain "key" or "token" are kept.
        assert_eq!(
            canonical_url("https://example.com/s?keyword=k&monkey=m&tokens_per_page=5").unwrap(),
            "https://example.com/s?keyword=k&monkey=m&tokens_per_page=5"
        );
        // An article id that looks like a session id stays: it tells articles apart.
        assert_eq!(
            canonical_url("https://slashdot.org/story.pl?sid=04/12/01/123").unwrap(),
            "https://slashdot.org/story.pl?sid=04%2F12%2F01%2F123"
        );
    }
}
