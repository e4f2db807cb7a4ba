//! Dead-letter records: the rejected input with its error and origin in `newsflow.*`
//! headers, in full or bare form.

use super::Shared;
use crate::config::Config;
use crate::pipeline::Rejection;
use crate::sink::OutRecord;
use crate::source::InputRecord;

/// How much of the input a dead-letter record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeadLetterForm {
    /// The original bytes (truncated to `pipeline.max_message_bytes`) and headers.
    Full,
    /// No payload and only newsflow's headers: for a broker that refused the full form.
    Bare,
}

/// The dead-letter record for a rejected input: original bytes (truncated to the limit if
/// needed), original key and headers, and the error and origin in `newsflow.*` headers.
pub fn dead_letter_record(
    config: &Config,
    input: &InputRecord,
    rejection: &Rejection,
) -> OutRecord {
    dead_letter_in_form(config, input, rejection, DeadLetterForm::Full)
}

/// The dead-letter record as this run sends it: with the run's own headers too (a replay's
/// `newsflow.replay.id`), so dead-letter records of a backfill can be told apart.
pub(super) fn for_run(
    shared: &Shared,
    input: &InputRecord,
    rejection: &Rejection,
    form: DeadLetterForm,
) -> OutRecord {
    let mut record = dead_letter_in_form(&shared.config, input, rejection, form);
    record
        .headers
        .extend(shared.options.extra_headers.iter().cloned());
    record
}

pub(super) fn dead_letter_in_form(
    config: &Config,
    input: &InputRecord,
    rejection: &Rejection,
    form: DeadLetterForm,
) -> OutRecord {
    let (limit, mut headers) = match form {
        DeadLetterForm::Full => (config.pipeline.max_message_bytes, input.headers.clone()),
        DeadLetterForm::Bare => (0, Vec::new()),
    };
    let truncated = input.value.len() > limit;
    let payload = if truncated {
        input.value[..limit].to_vec()
    } else {
        input.value.clone()
    };
    let mut add = |k: &str, v: String| headers.push((k.to_string(), v.into_bytes()));
    add(
        "newsflow.error.class",
        rejection.reason.as_str().to_string(),
    );
    add("newsflow.error.message", rejection.message.clone());
    add("newsflow.source.topic", input.topic.clone());
    add("newsflow.source.partition", input.partition.to_string());
    add("newsflow.source.offset", input.offset.to_string());
    if let Some(ts) = input.timestamp_ms {
        add("newsflow.source.timestamp", ts.to_string());
    }
    if truncated {
        add("newsflow.truncated", "true".into());
        add("newsflow.original.size", input.value.len().to_string());
    }
    OutRecord {
        topic: config.topics.dead_letter.clone(),
        // Always a key: a compacted dead-letter topic refuses records without one, which
        // would leave the partition's commits stuck behind the refused record.
        key: Some(input.key.clone().unwrap_or_else(|| {
            format!("{}/{}/{}", input.topic, input.partition, input.offset).into_bytes()
        })),
        payload,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::RejectReason;

    #[test]
    fn dead_letter_forms_full_keeps_the_input_bare_keeps_only_newsflow_headers() {
        let toml = "[kafka]\nbootstrap_servers = \"b:9092\"\ngroup_id = \"g\"\n\
                    [topics]\ninput = \"in\"\noutput = \"out\"\ndead_letter = \"dlq\"\n\
                    [pipeline]\nmax_message_bytes = 4096\n";
        let config = Config::from_toml_str(toml, "t", Vec::new()).unwrap();
        let input = InputRecord {
            topic: "in".into(),
            partition: 2,
            offset: 7,
            timestamp_ms: None,
            key: Some(b"k".to_vec()),
            value: vec![b'x'; 5000],
            headers: vec![("trace".into(), b"1".to_vec())],
        };
        let rejection = Rejection {
            reason: RejectReason::InvalidJson,
            message: "bad".into(),
        };
        let header = |r: &OutRecord, k: &str| {
            r.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let full = dead_letter_in_form(&config, &input, &rejection, DeadLetterForm::Full);
        assert_eq!(full.payload.len(), 4096);
        assert_eq!(header(&full, "trace").as_deref(), Some("1"));
        assert_eq!(
            header(&full, "newsflow.original.size").as_deref(),
            Some("5000")
        );
        let bare = dead_letter_in_form(&config, &input, &rejection, DeadLetterForm::Bare);
        assert!(bare.payload.is_empty());
        assert!(bare.headers.iter().all(|(k, _)| k.starts_with("newsflow.")));
        assert_eq!(header(&bare, "newsflow.truncated").as_deref(), Some("true"));
        assert_eq!(
            header(&bare, "newsflow.original.size").as_deref(),
            Some("5000")
        );
        assert_eq!(
            header(&bare, "newsflow.error.class").as_deref(),
            Some("invalid_json")
        );
        assert_eq!(bare.key, full.key);
    }

    #[test]
    fn dead_letter_record_without_an_input_key_is_keyed_by_its_origin() {
        let toml = "[kafka]\nbootstrap_servers = \"b:9092\"\ngroup_id = \"g\"\n\
                    [topics]\ninput = \"in\"\noutput = \"out\"\ndead_letter = \"dlq\"\n";
        let config = Config::from_toml_str(toml, "t", Vec::new()).unwrap();
        let input = InputRecord {
            topic: "in".into(),
            partition: 3,
            offset: 42,
            timestamp_ms: None,
            key: None,
            value: b"{".to_vec(),
            headers: Vec::new(),
        };
        let rejection = Rejection {
            reason: RejectReason::InvalidJson,
            message: "bad".into(),
        };
        for form in [DeadLetterForm::Full, DeadLetterForm::Bare] {
            let record = dead_letter_in_form(&config, &input, &rejection, form);
            assert_eq!(record.key.as_deref(), Some(&b"in/3/42"[..]));
        }
    }
}
