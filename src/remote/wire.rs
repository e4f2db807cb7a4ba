//! The Hugging Face inference wire format: `POST {"inputs": [text, ...]}`; per input, a list
//! of entities (token-classification) or of labels (text-classification).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A token-classification answer item (`aggregation_strategy` other than `none` gives
/// `entity_group`; `none` gives `entity`, with `B-`/`I-` prefixes).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RemoteEntity {
    #[serde(alias = "entity")]
    pub entity_group: String,
    #[serde(default)]
    pub word: Option<String>,
    /// Offset into the input, usually in Unicode code points (Python string indices).
    #[serde(default)]
    pub start: Option<usize>,
    #[serde(default)]
    pub end: Option<usize>,
    #[serde(default)]
    pub score: Option<f32>,
}

/// A text-classification answer item.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RemoteLabel {
    pub label: String,
    pub score: f32,
}

/// The request body.
pub fn request_body(texts: &[&str]) -> Vec<u8> {
    serde_json::json!({ "inputs": texts })
        .to_string()
        .into_bytes()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PerInput<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> PerInput<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            PerInput::Many(v) => v,
            PerInput::One(t) => vec![t],
        }
    }
}

#[derive(Deserialize)]
struct ServerError {
    error: serde_json::Value,
}

/// Parses an answer for `inputs` texts into one list per input. Servers answer either a
/// list per input, or (text-classification with top-1) one object per input, or (single
/// input) one flat list.
pub fn parse<T: DeserializeOwned>(body: &[u8], inputs: usize) -> Result<Vec<Vec<T>>, String> {
    let items: Vec<PerInput<T>> = match serde_json::from_slice(body) {
        Ok(items) => items,
        Err(e) => {
            if let Ok(err) = serde_json::from_slice::<ServerError>(body) {
                return Err(format!("server error: {}", short(&err.error.to_string())));
            }
            // serde quotes the offending value, which the server controls: keep it short.
            return Err(format!("not the expected JSON: {}", short(&e.to_string())));
        }
    };
    let all_one = items.iter().all(|i| matches!(i, PerInput::One(_)));
    let all_many = items.iter().all(|i| matches!(i, PerInput::Many(_)));
    if items.len() == inputs && (all_one || all_many) {
        Ok(items.into_iter().map(PerInput::into_vec).collect())
    } else if all_one && inputs == 1 {
        Ok(vec![
            items.into_iter().flat_map(PerInput::into_vec).collect(),
        ])
    } else {
        Err(format!(
            "{} answers for {inputs} inputs, or mixed shapes",
            items.len()
        ))
    }
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Seconds to wait from a `Retry-After` header: delay-seconds, or an HTTP-date (RFC 9110
/// IMF-fixdate, e.g. `Wed, 21 Oct 2015 07:28:00 GMT`) taken relative to `now`; a date in
/// the past means no wait.
pub fn retry_after_secs(value: &str, now: DateTime<Utc>) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&Utc).signed_duration_since(now);
    Some(u64::try_from(wait.num_seconds()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_the_inputs_list() {
        let body = request_body(&["a \"quoted\" text", "b"]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({"inputs": ["a \"quoted\" text", "b"]}));
    }

    #[test]
    fn token_classification_lists_per_input() {
        let body =
            br#"[[{"entity_group":"PER","word":"Anna Berg","start":0,"end":9,"score":0.99}],[]]"#;
        let got: Vec<Vec<RemoteEntity>> = parse(body, 2).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0][0].entity_group, "PER");
        assert_eq!((got[0][0].start, got[0][0].end), (Some(0), Some(9)));
        assert!(got[1].is_empty());
    }

    #[test]
    fn entity_alias_and_flat_list_for_one_input() {
        let body = br#"[{"entity":"B-LOC","word":"Oslo","start":3,"end":7,"score":0.9}]"#;
        let got: Vec<Vec<RemoteEntity>> = parse(body, 1).unwrap();
        assert_eq!(got[0][0].entity_group, "B-LOC");
    }

    #[test]
    fn text_classification_top1_or_all_scores() {
        let top1 = br#"[{"label":"POSITIVE","score":0.9},{"label":"NEGATIVE","score":0.8}]"#;
        let got: Vec<Vec<RemoteLabel>> = parse(top1, 2).unwrap();
        assert_eq!(got[1][0].label, "NEGATIVE");
        let all = br#"[[{"label":"positive","score":0.7},{"label":"negative","score":0.3}]]"#;
        let got: Vec<Vec<RemoteLabel>> = parse(all, 1).unwrap();
        assert_eq!(got[0].len(), 2);
        // One input, all scores, flat.
        let flat = br#"[{"label":"positive","score":0.7},{"label":"negative","score":0.3}]"#;
        let got: Vec<Vec<RemoteLabel>> = parse(flat, 1).unwrap();
        assert_eq!(got[0].len(), 2);
    }

    #[test]
    fn wrong_count_malformed_json_and_server_errors_are_rejected() {
        assert!(parse::<RemoteLabel>(br#"[[],[]]"#, 3).is_err());
        assert!(parse::<RemoteLabel>(b"{not json", 1).is_err());
        let e = parse::<RemoteLabel>(br#"{"error":"Model is loading","estimated_time":20}"#, 1)
            .unwrap_err();
        assert!(e.contains("Model is loading"), "{e}");
        assert!(parse::<RemoteEntity>(br#"[[{"word":"x"}]]"#, 1).is_err());
    }

    #[test]
    fn a_rejected_answer_is_described_in_a_bounded_message() {
        let huge = format!("\"{}\"", "x".repeat(100_000));
        let e = parse::<RemoteEntity>(huge.as_bytes(), 1).unwrap_err();
        assert!(e.len() < 300, "{} bytes", e.len());
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:30Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(retry_after_secs("3", now), Some(3));
        assert_eq!(retry_after_secs(" 0 ", now), Some(0));
        assert_eq!(
            retry_after_secs("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(30)
        );
        assert_eq!(
            retry_after_secs("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(retry_after_secs("-1", now), None);
        assert_eq!(retry_after_secs("soon", now), None);
    }
}
