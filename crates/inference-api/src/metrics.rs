//! The inference API's metrics, registered once. Handlers call intent methods; per-model and
//! per-class handles are resolved once when a model is published, so the hot path does no lookups.

use crate::configuration::MetricsSettings;
use crate::model::LoadedModel;
use metrics_core::buckets::{Buckets, HistogramFamily};
use metrics_core::http::HttpMetrics;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

type FloatGauge = Gauge<f64, AtomicU64>;

/// Why a request failed: the closed set behind `inference_errors_total{kind}`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ErrorKind {
    MalformedJson,
    UnsupportedMediaType,
    PayloadTooLarge,
    Validation,
    Overloaded,
    NotReady,
    NotFound,
    MethodNotAllowed,
    Model,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Validation => "validation",
            Self::Overloaded => "overloaded",
            Self::NotReady => "not_ready",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Model => "model",
            Self::Internal => "internal",
        }
    }
}

impl EncodeLabelValue for ErrorKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    route: Arc<str>,
    kind: ErrorKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    model: Arc<str>,
    class: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    model: Arc<str>,
    version: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScoreLabels {
    model: Arc<str>,
    metric: Arc<str>,
}

/// Every metric of the inference API (`inference_*`), plus HTTP metrics from metrics-core.
#[derive(Clone)]
pub struct InferenceMetrics {
    pub http: HttpMetrics,
    errors: Family<ErrorLabels, Counter>,
    preprocess: HistogramFamily<ModelLabels>,
    model_run: HistogramFamily<ModelLabels>,
    batch_size: HistogramFamily<ModelLabels>,
    predictions: Family<ClassLabels, Counter>,
    confidence: HistogramFamily<ClassLabels>,
    model_info: Family<VersionLabels, Gauge>,
    loaded: Family<ModelLabels, FloatGauge>,
    trained: Family<ModelLabels, FloatGauge>,
    validation: Family<ScoreLabels, FloatGauge>,
}

/// Handles of one published model, resolved once.
pub struct ModelHandles {
    preprocess: Histogram,
    model_run: Histogram,
    batch_size: Histogram,
    per_class: Vec<(Counter, Histogram)>,
}

impl InferenceMetrics {
    /// Registers everything under `inference_` in `registry`, plus process and build info.
    pub fn register(registry: &mut Registry, buckets: &MetricsSettings) -> Self {
        metrics_core::process::register(registry);
        let r = registry.sub_registry_with_prefix("inference");
        metrics_core::build_info::register(r, "inference-api", env!("CARGO_PKG_VERSION"));
        let m = Self {
            http: HttpMetrics::new(r, &buckets.http_latency_seconds),
            errors: Family::default(),
            preprocess: Buckets::new(&buckets.preprocess_seconds).family(),
            model_run: Buckets::new(&buckets.model_run_seconds).family(),
            batch_size: Buckets::new(&buckets.batch_rows).family(),
            predictions: Family::default(),
            confidence: Buckets::new(&buckets.confidence).family(),
            model_info: Family::default(),
            loaded: Family::default(),
            trained: Family::default(),
            validation: Family::default(),
        };
        r.register(
            "errors",
            "Failed requests by route template and kind",
            m.errors.clone(),
        );
        r.register_with_unit(
            "preprocess_duration",
            "Time parsing and validating a request body into model input",
            Unit::Seconds,
            m.preprocess.clone(),
        );
        r.register_with_unit(
            "model_run_duration",
            "Time in one model run",
            Unit::Seconds,
            m.model_run.clone(),
        );
        r.register(
            "batch_size",
            "Rows per prediction call",
            m.batch_size.clone(),
        );
        r.register(
            "predictions",
            "Predicted rows by predicted class",
            m.predictions.clone(),
        );
        r.register(
            "prediction_confidence",
            "Probability of the predicted class, by predicted class",
            m.confidence.clone(),
        );
        r.register(
            "model_info",
            "The served model and its version (always 1)",
            m.model_info.clone(),
        );
        r.register_with_unit(
            "model_loaded_timestamp",
            "When the served model was loaded, Unix time",
            Unit::Seconds,
            m.loaded.clone(),
        );
        r.register_with_unit(
            "model_trained_timestamp",
            "When the served model was trained (manifest trained_at), Unix time",
            Unit::Seconds,
            m.trained.clone(),
        );
        r.register(
            "model_validation_score",
            "Validation scores of the served model on its held-out split (manifest)",
            m.validation.clone(),
        );
        m
    }

    pub fn count_error(&self, route: Arc<str>, kind: ErrorKind) {
        self.errors
            .get_or_create(&ErrorLabels { route, kind })
            .inc();
    }

    /// Sets the model's info gauges and resolves its hot-path handles.
    pub fn publish_model(&self, model: &LoadedModel) -> ModelHandles {
        let name: Arc<str> = model.name.clone();
        let m = &model.manifest;
        let labels = ModelLabels {
            model: name.clone(),
        };
        self.model_info
            .get_or_create(&VersionLabels {
                model: name.clone(),
                version: Arc::from(m.version.as_str()),
            })
            .set(1);
        self.loaded.get_or_create(&labels).set(model.loaded_at_unix);
        self.trained
            .get_or_create(&labels)
            .set(m.trained_at_unix().unwrap_or(0.0));
        for (metric, score) in &m.validation.scores {
            self.validation
                .get_or_create(&ScoreLabels {
                    model: name.clone(),
                    metric: Arc::from(metric.as_str()),
                })
                .set(*score);
        }
        let per_class = m
            .classes
            .iter()
            .map(|c| {
                let l = ClassLabels {
                    model: name.clone(),
                    class: Arc::from(c.as_str()),
                };
                (
                    self.predictions.get_or_create_owned(&l),
                    self.confidence.get_or_create_owned(&l),
                )
            })
            .collect();
        ModelHandles {
            preprocess: self.preprocess.get_or_create_owned(&labels),
            model_run: self.model_run.get_or_create_owned(&labels),
            batch_size: self.batch_size.get_or_create_owned(&labels),
            per_class,
        }
    }
}

impl ModelHandles {
    pub fn observe_preprocess(&self, d: Duration) {
        self.preprocess.observe(d.as_secs_f64());
    }

    pub fn observe_run(&self, d: Duration, rows: usize) {
        self.model_run.observe(d.as_secs_f64());
        self.batch_size.observe(rows as f64);
    }

    pub fn observe_prediction(&self, class_index: usize, confidence: f32) {
        if let Some((count, conf)) = self.per_class.get(class_index) {
            count.inc();
            conf.observe(f64::from(confidence));
        }
    }
}
