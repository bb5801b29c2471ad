//! Typed settings: embedded `configuration/base.yaml`, then `<APP_ENVIRONMENT>.yaml`
//! (`local` by default), then `APP_…` environment variables (`APP_SERVER__PORT=9200`,
//! `APP_COLLECTORS__MODEL_BUNDLES=/models/a,/models/b`).

use metrics_core::settings::Layers;
pub use metrics_core::telemetry::LogSettings;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

const BASE: &str = include_str!("../configuration/base.yaml");
const LOCAL: &str = include_str!("../configuration/local.yaml");
const PRODUCTION: &str = include_str!("../configuration/production.yaml");

/// Keys whose environment values are comma-separated lists.
const LIST_KEYS: [&str; 3] = [
    "collectors.model_repositories",
    "collectors.model_bundles",
    "collectors.mountpoints",
];

#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub collectors: CollectorSettings,
    pub log: LogSettings,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub(crate) workers: usize,
    pub(crate) shutdown_timeout_seconds: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CollectorSettings {
    pub sampling_interval_seconds: f64,
    /// Model repositories: every folder in one is a model folder, listed again at every scrape.
    #[serde(default)]
    pub model_repositories: Vec<PathBuf>,
    /// Model folders outside any repository.
    #[serde(default)]
    pub model_bundles: Vec<PathBuf>,
    pub mountpoints: Vec<MountPoint>,
    pub(crate) watch_model_filesystems: bool,
    /// How long one scrape waits for a collector before reporting it unsuccessful.
    pub(crate) timeout_seconds: f64,
    /// The largest file a collector reads (`model.json`); a larger one fails its collector.
    pub(crate) max_file_bytes: u64,
}

impl CollectorSettings {
    /// The CPU sampling interval, at least 100 ms.
    pub(crate) fn sampling_interval(&self) -> Duration {
        Duration::try_from_secs_f64(self.sampling_interval_seconds)
            .unwrap_or(Duration::from_secs(5))
            .max(Duration::from_millis(100))
    }

    /// The per-collector deadline of a scrape, at least 10 ms.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.timeout_seconds)
            .unwrap_or(Duration::from_secs(2))
            .max(Duration::from_millis(10))
    }
}

/// A filesystem to report: statvfs of `path`, exported as `mountpoint="<label>"`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "MountPointSpec")]
pub struct MountPoint {
    pub path: PathBuf,
    pub label: String,
}

/// `"/"`, `"/host/root=/"`, or `{ path: /host/root, label: / }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum MountPointSpec {
    Short(String),
    Long {
        path: PathBuf,
        label: Option<String>,
    },
}

impl TryFrom<MountPointSpec> for MountPoint {
    type Error = String;

    fn try_from(spec: MountPointSpec) -> Result<Self, Self::Error> {
        let (path, label) = match spec {
            MountPointSpec::Short(s) => match s.split_once('=') {
                Some((path, label)) => (PathBuf::from(path.trim()), Some(label.trim().to_owned())),
                None => (PathBuf::from(s.trim()), None),
            },
            MountPointSpec::Long { path, label } => (path, label),
        };
        if path.as_os_str().is_empty() {
            return Err("a mount point needs a path".into());
        }
        let label = label
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| path.display().to_string());
        Ok(Self { path, label })
    }
}

impl Settings {
    pub(crate) fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_timeout_seconds)
    }
}

/// Reads the settings for `APP_ENVIRONMENT` (default `local`) with `APP_` overrides.
pub fn get_configuration() -> Result<Settings, config::ConfigError> {
    let layers = Layers {
        base: BASE,
        local: LOCAL,
        production: PRODUCTION,
    };
    metrics_core::settings::load(&layers, &LIST_KEYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_watch_the_bundled_model() {
        let s = get_configuration().expect("embedded configuration parses");
        assert_eq!(s.server.port, 9101);
        assert_eq!(s.server.workers, 1);
        assert_eq!(
            s.collectors.model_repositories,
            vec![PathBuf::from("models")]
        );
        assert!(s.collectors.model_bundles.is_empty());
        assert_eq!(
            s.collectors.mountpoints,
            vec![MountPoint {
                path: "/".into(),
                label: "/".into()
            }]
        );
        assert_eq!(s.collectors.sampling_interval(), Duration::from_secs(5));
        assert_eq!(s.collectors.timeout(), Duration::from_secs(2));
        assert_eq!(s.collectors.max_file_bytes, 1024 * 1024);
    }

    #[test]
    fn mount_points_parse_in_every_form() {
        let parse = |yaml: &str| -> Vec<MountPoint> {
            config::Config::builder()
                .add_source(config::File::from_str(yaml, config::FileFormat::Yaml))
                .build()
                .and_then(|c| c.get("m"))
                .expect("parses")
        };
        let got = parse("m: [/, /host/root=/, {path: /data, label: data}, {path: /srv}]");
        let want = [
            ("/", "/"),
            ("/host/root", "/"),
            ("/data", "data"),
            ("/srv", "/srv"),
        ];
        assert_eq!(got.len(), want.len());
        for (g, (path, label)) in got.iter().zip(want) {
            assert_eq!((g.path.to_str(), g.label.as_str()), (Some(path), label));
        }
    }
}
