//! Typed settings: embedded `configuration/base.yaml`, then `<APP_ENVIRONMENT>.yaml`
//! (`local` by default), then `APP_…` environment variables (`APP_SERVER__PORT=9000`).

use metrics_core::buckets;
use metrics_core::settings::Layers;
pub use metrics_core::telemetry::LogSettings;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

const BASE: &str = include_str!("../configuration/base.yaml");
const LOCAL: &str = include_str!("../configuration/local.yaml");
const PRODUCTION: &str = include_str!("../configuration/production.yaml");

#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub model: ModelSettings,
    pub limits: LimitSettings,
    pub quality: QualitySettings,
    pub feedback: FeedbackSettings,
    pub log: LogSettings,
    #[serde(default)]
    pub(crate) metrics: MetricsSettings,
    #[serde(default)]
    pub testing: TestingSettings,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub shutdown_timeout_seconds: u64,
}

impl ServerSettings {
    /// Worker threads to start: the configured number, or one per CPU when 0.
    pub(crate) fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SessionSharing {
    /// One ONNX session per actix worker thread: no lock contention on the hot path.
    PerWorker,
    /// One session for the whole process behind a mutex.
    Shared,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ModelSettings {
    /// The model repository: one folder per model, named after it, each holding its versions
    /// (`model_bundle::repository`).
    pub repository: PathBuf,
    /// The model `POST /predict` and `/ready` serve: the name of a folder in `repository`.
    pub default: String,
    /// Seconds between looks at the repository for a new, changed or removed version; 0 = never.
    pub poll_interval_seconds: f64,
    /// The largest `model.onnx` loaded; a larger one is refused unread.
    pub max_model_bytes: u64,
    pub onnxruntime_path: PathBuf,
    pub(crate) session_sharing: SessionSharing,
    pub(crate) intra_threads: usize,
    /// Rows of concurrent requests on one worker that may share one model call (0 = never share).
    pub coalesce_max_rows: usize,
}

impl ModelSettings {
    /// The default model's folder.
    pub fn default_model_dir(&self) -> PathBuf {
        self.repository.join(&self.default)
    }

    /// How often to look for a new version, or `None` when hot reload is off.
    pub(crate) fn poll_interval(&self) -> Option<Duration> {
        Duration::try_from_secs_f64(self.poll_interval_seconds)
            .ok()
            .filter(|d| !d.is_zero())
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct LimitSettings {
    pub max_body_bytes: usize,
    pub(crate) max_batch_rows: usize,
    pub max_in_flight: usize,
    /// The whole body must arrive within this many seconds of the request's headers.
    pub body_read_timeout_seconds: f64,
    /// After its first two seconds, a body must arrive at no less than this average rate.
    pub body_min_bytes_per_second: u64,
}

impl LimitSettings {
    pub(crate) fn body_read_timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.body_read_timeout_seconds)
            .unwrap_or(Duration::from_secs(10))
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct QualitySettings {
    pub missing_values: crate::model::features::MissingPolicy,
    pub(crate) drift_tracking: bool,
    pub drift_window_rows: usize,
    pub(crate) drift_window_max_age_seconds: u64,
}

impl QualitySettings {
    pub(crate) fn drift_max_age(&self) -> Duration {
        Duration::from_secs(self.drift_window_max_age_seconds)
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct FeedbackSettings {
    pub store_rows: usize,
}

/// Histogram buckets; each defaults to the named set in `metrics_core::buckets`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct MetricsSettings {
    pub(crate) http_latency_seconds: Vec<f64>,
    pub(crate) preprocess_seconds: Vec<f64>,
    pub(crate) model_run_seconds: Vec<f64>,
    pub(crate) batch_rows: Vec<f64>,
    pub(crate) confidence: Vec<f64>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            http_latency_seconds: buckets::HTTP_LATENCY_SECONDS.to_vec(),
            preprocess_seconds: buckets::FAST_OPERATION_SECONDS.to_vec(),
            model_run_seconds: buckets::FAST_OPERATION_SECONDS.to_vec(),
            batch_rows: buckets::BATCH_ROWS.to_vec(),
            confidence: buckets::CONFIDENCE.to_vec(),
        }
    }
}

/// Test-only knobs: all off by default, never set in production.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TestingSettings {
    /// Every `/predict` answered after admission (success or error) waits this many extra
    /// milliseconds while holding its in-flight slot, like a slow model; 0 = no delay.
    /// `APP_TESTING__PREDICT_DELAY_MS`; the end-to-end test uses it to fire HighLatencyP99.
    pub predict_delay_ms: u64,
}

impl TestingSettings {
    /// The extra `/predict` delay, or `None` when it is off.
    pub(crate) fn predict_delay(&self) -> Option<Duration> {
        (self.predict_delay_ms > 0).then(|| Duration::from_millis(self.predict_delay_ms))
    }
}

/// Reads the settings for `APP_ENVIRONMENT` (default `local`) with `APP_` overrides.
pub fn get_configuration() -> Result<Settings, config::ConfigError> {
    metrics_core::settings::load(
        &Layers {
            base: BASE,
            local: LOCAL,
            production: PRODUCTION,
        },
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_serve_the_bundled_model() {
        let s = get_configuration().expect("embedded configuration parses");
        assert_eq!(s.server.port, 8000);
        assert_eq!(s.model.repository, PathBuf::from("models"));
        assert_eq!(s.model.default, "breast-cancer");
        assert_eq!(
            s.model.default_model_dir(),
            PathBuf::from("models/breast-cancer")
        );
        assert_eq!(s.model.session_sharing, SessionSharing::PerWorker);
        assert_eq!(s.model.poll_interval(), Some(Duration::from_secs(2)));
        assert_eq!(s.model.max_model_bytes, 256 << 20);
        assert_eq!(s.limits.max_batch_rows, 1000);
        assert_eq!(
            s.quality.missing_values,
            crate::model::features::MissingPolicy::Reject
        );
        assert_eq!(s.quality.drift_window_rows, 1000);
        assert_eq!(s.metrics.confidence, buckets::CONFIDENCE);
        assert!(s.server.worker_count() >= 1);
        assert_eq!(s.testing.predict_delay_ms, 0);
        assert_eq!(s.testing.predict_delay(), None);
    }

    #[test]
    fn the_test_only_predict_delay_is_off_unless_set() {
        let on = TestingSettings {
            predict_delay_ms: 300,
        };
        assert_eq!(on.predict_delay(), Some(Duration::from_millis(300)));
        assert_eq!(TestingSettings::default().predict_delay(), None);
    }
}
