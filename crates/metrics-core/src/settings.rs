//! Layered service configuration (zero-to-production style), the same for every binary:
//! the embedded `base.yaml`, then the `<APP_ENVIRONMENT>.yaml` overlay (`local` by default,
//! `production` in containers), then `APP_` environment variables with `__` between levels
//! (`APP_SERVER__PORT=9000`). Lists from the environment are comma-separated for `list_keys`.

use serde::de::DeserializeOwned;

/// A service's configuration files, embedded with `include_str!` so the binary needs no files.
pub struct Layers {
    pub base: &'static str,
    pub local: &'static str,
    pub production: &'static str,
}

/// Where the settings run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Local,
    Production,
}

impl TryFrom<String> for Environment {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.to_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "production" => Ok(Self::Production),
            other => Err(format!(
                "APP_ENVIRONMENT={other:?} is neither `local` nor `production`"
            )),
        }
    }
}

/// Reads `T` for `APP_ENVIRONMENT` (default `local`) with `APP_` overrides.
pub fn load<T: DeserializeOwned>(
    layers: &Layers,
    list_keys: &[&str],
) -> Result<T, config::ConfigError> {
    let environment: Environment = std::env::var("APP_ENVIRONMENT")
        .unwrap_or_else(|_| "local".into())
        .try_into()
        .map_err(config::ConfigError::Message)?;
    let overlay = match environment {
        Environment::Local => layers.local,
        Environment::Production => layers.production,
    };
    let mut env = config::Environment::with_prefix("APP")
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true);
    if !list_keys.is_empty() {
        env = env.list_separator(",");
        for key in list_keys {
            env = env.with_list_parse_key(key);
        }
    }
    config::Config::builder()
        .add_source(config::File::from_str(
            layers.base,
            config::FileFormat::Yaml,
        ))
        .add_source(config::File::from_str(overlay, config::FileFormat::Yaml))
        .add_source(env)
        .build()?
        .try_deserialize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_environments_are_rejected() {
        assert!(Environment::try_from("staging".to_string()).is_err());
        assert_eq!(
            Environment::try_from("Production".to_string()),
            Ok(Environment::Production)
        );
    }

    #[test]
    fn the_overlay_wins_over_the_base() {
        #[derive(serde::Deserialize)]
        struct S {
            a: u32,
            b: u32,
        }
        let layers = Layers {
            base: "a: 1\nb: 2\n",
            local: "b: 3\n",
            production: "b: 4\n",
        };
        let s: S = load(&layers, &[]).expect("loads");
        let want_b = if std::env::var("APP_ENVIRONMENT").is_ok_and(|e| e == "production") {
            4
        } else {
            3
        };
        assert_eq!((s.a, s.b), (1, want_b));
    }
}
