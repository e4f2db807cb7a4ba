//! Secrets in configuration: a string type that never prints, and masking of secret-looking
//! keys and of credentials inside URLs. Everything that shows a configuration value (`Debug`,
//! `check-config`, start-up errors, logs) goes through these, so a secret has one way out:
//! [`Secret::expose`] and [`SecretUrl::expose`], for handing to a client library.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What a masked value shows instead.
pub const MASK: &str = "***";

/// A secret string: never printed, in `Debug`, `Display` or serialized form.
///
/// It deserializes from any scalar, so `sasl_password = 1234` in a file is the password
/// `"1234"` rather than a type error that would have to name the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret value, for handing to the client library only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{MASK}\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

/// Takes any scalar as text; the errors it raises never carry the value.
struct SecretVisitor;

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
}

/// A URL that may carry credentials (`user:pass@`, `?api_key=`): shown with them masked.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(value: impl Into<String>) -> Self {
        SecretUrl(value.into())
    }
    /// The whole URL, credentials included, for the HTTP client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url(&self.0))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&mask_url(&self.0), f)
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&mask_url(&self.0))
    }
}

/// Is the value of a key with this name a secret? Covers newsflow's keys (`sasl_password`)
/// and librdkafka's (`ssl.key.password`, `sasl.oauthbearer.config` with its
/// `clientSecret=`, `sasl.oauthbearer.client.secret`, `ssl.keystore.password`, ...).
/// Errs on the side of masking: a masked harmless value costs less than a leaked secret.
pub fn is_secret_name(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "credential",
        "private",
        "key.pem",
        "keytab",
        "oauthbearer.config",
        "jaas",
        "apikey",
        "api_key",
        "api.key",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// `text` with the credentials of a URL masked: user and password, and the values of
/// query parameters that carry credentials. Text that is not a URL comes back unchanged,
/// unless it looks like one that failed to parse and holds `@` or `?`: then all of it is
/// masked, since where its credentials are cannot be told.
pub fn mask_url(text: &str) -> Cow<'_, str> {
    let Ok(mut url) = url::Url::parse(text) else {
        return if text.contains("://") && (text.contains('@') || text.contains('?')) {
            Cow::Borrowed(MASK)
        } else {
            Cow::Borrowed(text)
        };
    };
    let mut changed = false;
    if !url.username().is_empty() {
        // Fails only for URLs that cannot have credentials, which then have none to mask.
        changed |= url.set_username(MASK).is_ok();
    }
    if url.password().is_some() {
        changed |= url.set_password(Some(MASK)).is_ok();
    }
    let secret_params = url
        .query_pairs()
        .any(|(k, _)| crate::normalize::url::is_credential_param(&k));
    if secret_params {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if crate::normalize::url::is_credential_param(&k) {
                    MASK.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed {
        Cow::Owned(url.to_string())
    } else {
        Cow::Borrowed(text)
    }
}

/// The credentials inside a URL value, decoded and as written: user, password, and the
/// values of secret query parameters. Empty when `text` is not a URL.
pub fn url_credentials(text: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(text) else {
        return Vec::new();
    };
    let mut found = vec![url.username().to_string()];
    found.extend(url.password().map(str::to_string));
    for (k, v) in url.query_pairs() {
        if crate::normalize::url::is_credential_param(&k) {
            found.push(v.into_owned());
        }
    }
    for raw in url.query().unwrap_or("").split('&') {
        if let Some((k, v)) = raw.split_once('=')
            && crate::normalize::url::is_credential_param(k)
        {
            found.push(v.to_string());
        }
    }
    let decoded: Vec<String> = found.iter().filter_map(|s| percent_decoded(s)).collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    found
}

/// `s` with `%XX` escapes decoded, when it has any and they decode to UTF-8.
fn percent_decoded(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
    Some(decoded.into_owned())
}

/// The value of `key` as it may be shown: masked whole for a secret-looking key, else with
/// any URL credentials masked.
pub fn mask_value<'a>(key: &str, value: &'a str) -> Cow<'a, str> {
    if is_secret_name(key) {
        Cow::Borrowed(MASK)
    } else {
        mask_url(value)
    }
}

/// A deserialization error's message without the value it quotes (serde's `invalid type:
/// string "abc", expected u64` becomes `invalid type: string, expected u64`); for a key that
/// may hold a secret, no detail at all.
pub fn value_free(key: &str, message: &str) -> String {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    if is_secret_name(key) || leaf.ends_with("url") {
        return "invalid value (not shown: this key may hold a secret)".into();
    }
    // The first line: the parser appends the key again (``in `pipeline.x` ``).
    let message = message.trim().lines().next().unwrap_or("").trim();
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((found, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
        {
            let kind = found.split(['`', '"']).next().unwrap_or("").trim();
            return format!("{prefix}{kind}, expected {expected}");
        }
    }
    if let Some((_, expected)) = message
        .strip_prefix("unknown variant ")
        .and_then(|rest| rest.split_once(", expected "))
    {
        return format!("unknown variant, expected {expected}");
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        let shown = format!("{s} {s:?} {}", toml::Value::try_from(&s).unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_secret_deserializes_from_any_scalar_as_text() {
        #[derive(Deserialize)]
        struct T {
            s: Secret,
        }
        let t: T = toml::from_str("s = 12345").unwrap();
        assert_eq!(t.s.expose(), "12345");
        let t: T = toml::from_str("s = true").unwrap();
        assert_eq!(t.s.expose(), "true");
    }

    #[test]
    fn librdkafka_secret_properties_are_recognised() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.key.pem",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "sasl.kerberos.keytab",
            "SASL_PASSWORD",
        ] {
            assert!(is_secret_name(key), "{key}");
        }
        for key in ["fetch.max.bytes", "bootstrap.servers", "sasl.mechanisms"] {
            assert!(!is_secret_name(key), "{key}");
        }
    }

    #[test]
    fn url_credentials_and_secret_parameters_are_masked() {
        let shown = mask_url("https://user:pass@models.example.com/ner?api_key=k1&x=1&token=t2");
        assert!(
            !shown.contains("user")
                && !shown.contains("pass@")
                && !shown.contains("k1")
                && !shown.contains("t2"),
            "{shown}"
        );
        assert!(
            shown.contains("models.example.com/ner") && shown.contains("x=1"),
            "{shown}"
        );
        assert_eq!(
            mask_url("https://models.example.com/ner?x=1"),
            "https://models.example.com/ner?x=1"
        );
        assert_eq!(mask_url("localhost:9092"), "localhost:9092");
        assert_eq!(mask_url("http://user:pa ss@[bad"), MASK);
        let found = url_credentials("https://u%40x:p%2Fw@h/?api_key=a%20b&page=2");
        for c in ["u@x", "p/w", "a b", "p%2Fw"] {
            assert!(found.iter().any(|f| f == c), "{c}: {found:?}");
        }
        assert!(!found.iter().any(|f| f == "2"), "{found:?}");
        let url = SecretUrl::new("http://u:p@h/?key=s");
        let shown = format!("{url} {url:?} {}", toml::Value::try_from(&url).unwrap());
        assert!(!shown.contains("u:p") && !shown.contains("=s"), "{shown}");
    }
}
