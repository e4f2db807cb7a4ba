//! Typed configuration: a TOML file, overridden by `NEWSFLOW__SECTION__KEY` environment
//! variables, checked at start-up. Unknown keys and invalid values fail with the key's name,
//! never with the value: a value may be a secret, and errors end up in logs. Secrets are
//! masked wherever the configuration is shown (see [`secret`]).

mod check;
mod defaults;
mod env;
mod kafka;
mod mask;
pub mod secret;
mod sections;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use self::kafka::{KafkaConfig, Properties, TopicsConfig};
pub use self::secret::{Secret, SecretUrl};
pub use self::sections::{
    DeliveryConfig, DeliveryGuarantee, EnrichConfig, EnricherKind, HttpConfig, LogConfig,
    LogFormat, PipelineConfig, ShutdownConfig,
};
pub use crate::remote::config::{RemoteConfig, RemoteFallback, RemoteTask};

/// Prefix of environment-variable overrides.
pub const ENV_PREFIX: &str = "NEWSFLOW__";

/// A configuration error, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Only the position and the parser's message: the parser's own `Display` quotes the
    /// offending line, which may hold a secret.
    #[error("config file {path} is not valid TOML at line {line}, column {column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub topics: TopicsConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub pipeline: PipelineConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub enrich: EnrichConfig,
}

impl Config {
    /// Loads `path`, applies the environment overrides in `env`, and checks the result.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), env)
    }

    /// Parses TOML text (named `origin` in errors), applies overrides and checks.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e.span().map_or(0, |span| span.start).min(text.len());
            let before = text.get(..at).unwrap_or("");
            ConfigError::Syntax {
                path: origin.to_string(),
                line: before.matches('\n').count() + 1,
                column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
                message: e.message().trim().to_string(),
            }
        })?;
        // Overrides given a number or boolean type by their look, as (key, override).
        let mut typed = Vec::new();
        for (name, value) in env {
            if let Some(rest) = name.strip_prefix(ENV_PREFIX)
                && let Some(key) = env::apply_override(&mut table, rest, &value, false)?
            {
                typed.push((key, rest.to_string(), value));
            }
        }
        // A value that looks like a number but lands in a string key (an all-digit group id)
        // becomes a string again and the config is read once more; each round turns back
        // one override, so this ends after at most `typed.len()` extra rounds.
        let config: Config = loop {
            match serde_path_to_error::deserialize(toml::Value::Table(table.clone())) {
                Ok(config) => break config,
                Err(e) => {
                    let key = e.path().to_string();
                    if let Some(i) = typed.iter().position(|(k, _, _)| *k == key) {
                        let (_, rest, value) = typed.swap_remove(i);
                        env::apply_override(&mut table, &rest, &value, true)?;
                        continue;
                    }
                    let message = secret::value_free(&key, &e.inner().to_string());
                    return Err(ConfigError::Invalid { key, message });
                }
            }
        };
        config.check()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const MINIMAL: &str = r#"
        [kafka]
        bootstrap_servers = "localhost:9092"
        group_id = "g"
        [topics]
        input = "in"
        output = "out"
        dead_letter = "dlq"
    "#;

    pub(super) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_toml_str(MINIMAL, "t", env(&[])).unwrap();
        assert_eq!(c.pipeline.max_message_bytes, 1 << 20);
        assert_eq!(c.kafka.partition_assignment_strategy, "cooperative-sticky");
        assert_eq!(c.http.listen.port(), 9464);
    }

    #[test]
    fn environment_overrides_file_values_with_types() {
        let c = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[
                ("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "7"),
                ("NEWSFLOW__KAFKA__BOOTSTRAP_SERVERS", "b:1"),
                (
                    "NEWSFLOW__KAFKA__CONSUMER_PROPERTIES__FETCH__MAX__BYTES",
                    "1000",
                ),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.pipeline.max_in_flight, 7);
        assert_eq!(c.kafka.bootstrap_servers, "b:1");
        assert_eq!(c.kafka.consumer_properties.0["fetch.max.bytes"], "1000");
    }

    #[test]
    fn unknown_key_fails_naming_the_key() {
        let text = format!("{MINIMAL}\n[pipeline]\nmax_inflight = 3\n");
        let err = Config::from_toml_str(&text, "t", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pipeline") && err.contains("max_inflight"),
            "{err}"
        );
    }

    #[test]
    fn invalid_value_fails_naming_the_key() {
        let err = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "many")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "config key `pipeline.max_in_flight`: invalid type: string, expected usize"
        );
        let err = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "0")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("pipeline.max_in_flight"), "{err}");
    }

    #[test]
    fn an_all_digit_password_from_the_environment_stays_a_string_and_is_never_shown() {
        let c = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[
                ("NEWSFLOW__KAFKA__SASL_PASSWORD", "0123456789"),
                ("NEWSFLOW__KAFKA__GROUP_ID", "4242"),
                ("NEWSFLOW__KAFKA__GROUP_INSTANCE_ID", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.kafka.sasl_password.as_ref().unwrap().expose(),
            "0123456789"
        );
        // Numbers in string keys are strings too, whatever they look like.
        assert_eq!(c.kafka.group_id, "4242");
        assert_eq!(c.kafka.group_instance_id.as_deref(), Some("true"));
        let shown = format!("{} {:?}", c.to_masked_toml(), c);
        assert!(!shown.contains("0123456789"), "{shown}");
        // A number in a numeric key is still a number.
        let c = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "9")]),
        )
        .unwrap();
        assert_eq!(c.pipeline.max_in_flight, 9);
    }

    #[test]
    fn errors_never_echo_a_value() {
        let cases = [
            // A value of the wrong type, for a plain key and a secret one.
            (
                MINIMAL.to_string(),
                ("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "s3cr3t"),
            ),
            (
                format!(
                    "{MINIMAL}\n[enrich.remote]\nurl = \"https://u:s3cr3t@h/\"\ntask = \"s3cr3t\"\n"
                ),
                ("OTHER", ""),
            ),
            (
                format!(
                    "{MINIMAL}\n[enrich.remote]\nurl = \"ftp://u:s3cr3t@h/\"\ntask = \"text-classification\"\n"
                ),
                ("OTHER", ""),
            ),
            (
                MINIMAL.replace(
                    "group_id = \"g\"",
                    "group_id = \"g\"\nsasl_password = [\"s3cr3t\"]",
                ),
                ("OTHER", ""),
            ),
            // A syntax error on a line holding a secret.
            (
                MINIMAL.replace(
                    "group_id = \"g\"",
                    "group_id = \"g\"\nsasl_password = \"s3cr3t",
                ),
                ("OTHER", ""),
            ),
        ];
        for (text, var) in cases {
            let err = Config::from_toml_str(&text, "t", env(&[var])).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
    }

    #[test]
    fn shipped_config_files_are_valid() {
        for file in ["config/default.toml", "config/local.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            Config::load(&path, env(&[])).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}
