//! Layered configuration: embedded defaults → optional file → environment.
//!
//! Environment variables use the `SWITCHBOARD_` prefix with `__` for nesting
//! (`SWITCHBOARD_INGRESS__LISTEN` sets `ingress.listen`). The conventional
//! `DATABASE_URL` and `AMQP_URL` are honoured too and win over everything else.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;

/// The environment prefix of every Switchboard setting.
pub const ENV_PREFIX: &str = "SWITCHBOARD_";

/// A configuration that could not be loaded or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read or a value has the wrong type.
    #[error("configuration could not be loaded: {0}")]
    Load(#[from] Box<figment::Error>),
    /// The values were read but break a rule.
    #[error("invalid configuration: {key}: {reason}")]
    Invalid {
        /// The dotted key at fault.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`] for `key`.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Checks the semantic rules of a loaded configuration so a service fails fast at start.
pub trait Validate {
    /// Returns the first rule the configuration breaks.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Builds the figment for `defaults` (a TOML document), an optional file and the environment.
pub fn figment(defaults: &str, file: Option<&Path>) -> Figment {
    let mut figment = Figment::from(Toml::string(defaults));
    if let Some(path) = file {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment.merge(Env::prefixed(ENV_PREFIX).split("__")).merge(
        Env::raw()
            .only(&["DATABASE_URL", "AMQP_URL"])
            .map(|k| k.as_str().to_ascii_lowercase().into()),
    )
}

/// Like [`figment`], with `overlay` between the embedded defaults and the file and environment
/// (`switchboard dev` puts its development defaults there, so the environment still wins).
pub fn figment_with(defaults: &str, overlay: impl figment::Provider, file: Option<&Path>) -> Figment {
    let mut figment = Figment::from(Toml::string(defaults)).merge(overlay);
    if let Some(path) = file {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment.merge(Env::prefixed(ENV_PREFIX).split("__")).merge(
        Env::raw()
            .only(&["DATABASE_URL", "AMQP_URL"])
            .map(|k| k.as_str().to_ascii_lowercase().into()),
    )
}

/// Loads and validates a configuration of type `T`.
pub fn load_config<T>(defaults: &str, file: Option<&Path>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Validate,
{
    extract(figment(defaults, file))
}

/// Extracts and validates `T` from an already built figment (tests merge their own values).
pub fn extract<T>(figment: Figment) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Validate,
{
    let config: T = figment.extract().map_err(Box::new)?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment's large error
mod tests {
    use figment::Jail;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        database_url: String,
        ingress: Ingress,
    }

    #[derive(Debug, Deserialize)]
    struct Ingress {
        listen: String,
        body_limit: usize,
    }

    impl Validate for Sample {
        fn validate(&self) -> Result<(), ConfigError> {
            if self.ingress.body_limit == 0 {
                return Err(ConfigError::invalid("ingress.body_limit", "must be above 0"));
            }
            Ok(())
        }
    }

    const DEFAULTS: &str = r#"
        database_url = "postgres://default"
        [ingress]
        listen = "0.0.0.0:8080"
        body_limit = 65536
    "#;

    #[test]
    fn layers_defaults_file_and_env_in_order() {
        Jail::expect_with(|jail| {
            jail.create_file("sb.toml", "[ingress]\nlisten = \"127.0.0.1:1\"\nbody_limit = 10\n")?;
            jail.set_env("SWITCHBOARD_INGRESS__BODY_LIMIT", "20");
            jail.set_env("DATABASE_URL", "postgres://from-env");
            let cfg: Sample = load_config(DEFAULTS, Some(Path::new("sb.toml"))).expect("loads");
            assert_eq!(cfg.ingress.listen, "127.0.0.1:1");
            assert_eq!(cfg.ingress.body_limit, 20);
            assert_eq!(cfg.database_url, "postgres://from-env");
            Ok(())
        });
    }

    #[test]
    fn validate_rejects_bad_values_with_the_key() {
        Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD_INGRESS__BODY_LIMIT", "0");
            let err = load_config::<Sample>(DEFAULTS, None).expect_err("invalid");
            assert!(err.to_string().contains("ingress.body_limit"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn wrong_types_are_load_errors() {
        Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD_INGRESS__BODY_LIMIT", "lots");
            assert!(matches!(load_config::<Sample>(DEFAULTS, None), Err(ConfigError::Load(_))));
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let err = load_config::<Sample>(DEFAULTS, Some(Path::new("/nonexistent/sb.toml")));
        assert!(matches!(err, Err(ConfigError::Load(_))));
    }
}
