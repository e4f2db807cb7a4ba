//! Environment-variable overrides: `NEWSFLOW__SECTION__KEY=value` applied onto the parsed
//! TOML table before it is read into [`super::Config`].

use super::{ConfigError, ENV_PREFIX, secret};

/// Applies `SECTION__KEY=value` onto the table. Inside the `*_properties` tables, further
/// `__` separators become dots: `KAFKA__CONSUMER_PROPERTIES__FETCH__MAX__BYTES` sets
/// `fetch.max.bytes`. Returns the dotted key when the value was typed as a number or
/// boolean by its look (see [`parse_env_value`]); `as_string` keeps it a string.
pub fn apply_override(
    table: &mut toml::Table,
    path: &str,
    value: &str,
    as_string: bool,
) -> Result<Option<String>, ConfigError> {
    let parts: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    let key_name = parts.join(".");
    let bad = |message: &str| ConfigError::Invalid {
        key: format!("{ENV_PREFIX}{path}"),
        message: message.into(),
    };
    if parts.len() < 2 || parts.iter().any(String::is_empty) {
        return Err(bad(
            "environment overrides need the form NEWSFLOW__SECTION__KEY",
        ));
    }
    let (head, leaf): (Vec<String>, String) =
        if parts.len() > 3 && parts[1].ends_with("_properties") {
            (parts[..2].to_vec(), parts[2..].join("."))
        } else {
            let (last, rest) = parts.split_last().ok_or_else(|| bad("empty key"))?;
            (rest.to_vec(), last.clone())
        };
    let mut node = table;
    for part in &head {
        let entry = node
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| bad(&format!("`{part}` is not a table in {key_name}")))?;
    }
    let is_property_table = head.last().is_some_and(|h| h.ends_with("_properties"));
    let keep_string = as_string || is_property_table || secret::is_secret_name(&leaf);
    let parsed = parse_env_value(value, keep_string);
    let typed = !parsed.is_str();
    node.insert(leaf, parsed);
    Ok(typed.then_some(key_name))
}

/// Environment values are typed by their look: integers, booleans, else strings.
/// librdkafka property values and secrets stay strings, as given (a password `0123` must
/// not become the number 123).
fn parse_env_value(value: &str, keep_string: bool) -> toml::Value {
    if !keep_string {
        if let Ok(i) = value.parse::<i64>() {
            return toml::Value::Integer(i);
        }
        if let Ok(b) = value.parse::<bool>() {
            return toml::Value::Boolean(b);
        }
    }
    toml::Value::String(value.to_string())
}
