//! `newsflow check-config`: validates the configuration and prints it, secrets masked.

use std::path::Path;

use crate::app::load_config;

/// Prints the effective configuration (file plus environment overrides) as TOML.
pub fn command(config: &Path) -> anyhow::Result<()> {
    let config = load_config(config)?;
    print!("{}", config.to_masked_toml());
    Ok(())
}
