//! Showing the configuration without its secrets: the masked TOML dump, and redaction of
//! secret values from text a client library wrote.

use super::{Config, secret};

impl Config {
    /// The effective config as TOML, with every secret masked.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }

    /// `text` (a client library's error or log line, which may quote a setting it was
    /// given) with every secret value of this config replaced by `***`: the SASL password,
    /// secret-looking librdkafka properties, and credentials inside URL values.
    pub fn redact(&self, text: &str) -> String {
        let k = &self.kafka;
        let mut secrets: Vec<String> = k
            .sasl_password
            .iter()
            .map(|p| p.expose().to_string())
            .collect();
        let properties = k.consumer_properties.0.iter();
        for (key, value) in properties.chain(&k.producer_properties.0) {
            if secret::is_secret_name(key) {
                secrets.push(value.clone());
            } else {
                secrets.extend(secret::url_credentials(value));
            }
        }
        if let Some(r) = &self.enrich.remote {
            secrets.extend(secret::url_credentials(r.url.expose()));
        }
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut text = text.to_string();
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            text = text.replace(s.as_str(), secret::MASK);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{MINIMAL, env};
    use super::*;

    #[test]
    fn secrets_are_masked_everywhere() {
        let c = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[
                ("NEWSFLOW__KAFKA__SASL_PASSWORD", "hunter2"),
                (
                    "NEWSFLOW__KAFKA__PRODUCER_PROPERTIES__SSL__KEY__PASSWORD",
                    "hunter3",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.sasl_password.as_ref().unwrap().expose(), "hunter2");
        let shown = format!("{} {:?}", c.to_masked_toml(), c);
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
    }

    #[test]
    fn oauthbearer_config_and_url_credentials_are_masked() {
        let text = format!(
            "{MINIMAL}
            [kafka.consumer_properties]
            \"sasl.oauthbearer.config\" = \"clientId=me clientSecret=s3cr3t-1\"
            \"sasl.oauthbearer.token.endpoint.url\" = \"https://me:s3cr3t-2@idp.example.com/token\"
            [enrich.remote]
            url = \"https://user:s3cr3t-3@models.example.com/ner?api_key=s3cr3t-4&region=eu\"
            task = \"token-classification\"
            "
        );
        let c = Config::from_toml_str(&text, "t", env(&[])).unwrap();
        let shown = format!("{}\n{:?}", c.to_masked_toml(), c);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("models.example.com/ner"), "{shown}");
        assert!(shown.contains("region=eu"), "{shown}");
        assert_eq!(
            c.kafka.consumer_properties.0["sasl.oauthbearer.config"],
            "clientId=me clientSecret=s3cr3t-1"
        );
        let remote = c.enrich.remote.unwrap();
        assert!(remote.url.expose().contains("s3cr3t-3"));
    }

    #[test]
    fn redact_masks_every_secret_value_in_library_text() {
        let text = format!(
            "{MINIMAL}
            [kafka.producer_properties]
            \"sasl.oauthbearer.config\" = \"clientSecret=s3cr3t-1\"
            [enrich.remote]
            url = \"https://user:s3cr3t-3@h.example/?token=s3cr3t-4\"
            task = \"token-classification\"
            "
        );
        let c = Config::from_toml_str(
            &text,
            "t",
            env(&[("NEWSFLOW__KAFKA__SASL_PASSWORD", "s3cr3t-2")]),
        )
        .unwrap();
        let said = "Invalid value \"clientSecret=s3cr3t-1\" for configuration property \
                    \"sasl.oauthbearer.config\"; password s3cr3t-2; s3cr3t-3 s3cr3t-4";
        let shown = c.redact(said);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("sasl.oauthbearer.config"), "{shown}");
    }
}
