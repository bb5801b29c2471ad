//! The inference API's metrics, registered once. Handlers call intent methods; per-model and
//! per-class handles are resolved once when a model is published, so the hot path does no lookups.

use crate::configuration::MetricsSettings;
use crate::model::LoadedModel;
use crate::quality::drift::DriftWindow;
use metrics_core::buckets::{Buckets, HistogramFamily};
use metrics_core::http::HttpMetrics;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

type FloatGauge = Gauge<f64, AtomicU64>;

/// Why a request failed: the closed set behind `inference_errors_total{kind}`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    MalformedJson,
    UnsupportedMediaType,
    PayloadTooLarge,
    BodyTimeout,
    Validation,
    Overloaded,
    NotReady,
    NotFound,
    MethodNotAllowed,
    Conflict,
    Model,
}

impl ErrorKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::Validation => "validation",
            Self::Overloaded => "overloaded",
            Self::NotReady => "not_ready",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::Model => "model",
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
struct FeatureLabels {
    model: Arc<str>,
    feature: Arc<str>,
}

/// The outcome of a feedback label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) enum FeedbackOutcome {
    Correct,
    Incorrect,
}

impl EncodeLabelValue for FeedbackOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Self::Correct => "correct",
            Self::Incorrect => "incorrect",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    model: Arc<str>,
    outcome: FeedbackOutcome,
}

/// How an attempt to load a model version ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) enum LoadOutcome {
    /// Loaded, warmed up and served.
    Loaded,
    /// Refused (bad manifest, bad ONNX, checksum mismatch, wrong shapes, too large): the
    /// version already serving keeps serving.
    Failed,
}

impl EncodeLabelValue for LoadOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Self::Loaded => "loaded",
            Self::Failed => "failed",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoadLabels {
    model: Arc<str>,
    outcome: LoadOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScoreLabels {
    model: Arc<str>,
    metric: Arc<str>,
}

/// Every metric of the inference API (`inference_*`), plus HTTP metrics from metrics-core.
#[derive(Clone)]
pub(crate) struct InferenceMetrics {
    pub(crate) http: HttpMetrics,
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
    out_of_range: Family<FeatureLabels, Counter>,
    missing: Family<FeatureLabels, Counter>,
    feedback: Family<OutcomeLabels, Counter>,
    feedback_unmatched: Family<ModelLabels, Counter>,
    feedback_evicted: Family<ModelLabels, Counter>,
    loads: Family<LoadLabels, Counter>,
    drift: DriftExports,
    /// The version each model's info series names.
    model_info_versions: Arc<Mutex<BTreeMap<Arc<str>, Arc<str>>>>,
}

/// Handles of one published model, resolved once.
pub(crate) struct ModelHandles {
    preprocess: Histogram,
    model_run: Histogram,
    batch_size: Histogram,
    per_class: Vec<(Counter, Histogram)>,
    out_of_range: Vec<Counter>,
    missing: Vec<Counter>,
    feedback_correct: Counter,
    feedback_incorrect: Counter,
    feedback_unmatched: Counter,
    feedback_evicted: Counter,
}

/// PSI per feature and window size, computed from the drift window at scrape time.
#[derive(Debug)]
struct DriftCollector(DriftExports);

/// The drift window of each model's served version, by model.
type DriftExports = Arc<Mutex<BTreeMap<Arc<str>, Arc<DriftExport>>>>;

struct DriftExport {
    model: Arc<str>,
    features: Vec<Arc<str>>,
    window: Arc<DriftWindow>,
}

impl std::fmt::Debug for DriftExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftExport")
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Collector for DriftCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let exports: Vec<Arc<DriftExport>> = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        if exports.is_empty() {
            return Ok(());
        }
        let now = std::time::Instant::now();
        let snapshots: Vec<_> = exports.iter().map(|e| e.window.snapshot(now)).collect();
        let mut family = encoder.encode_descriptor(
            "drift_window_rows",
            "Rows in the drift window (the PSI sample size)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (export, snapshot) in exports.iter().zip(&snapshots) {
            ConstGauge::new(snapshot.rows as i64).encode(family.encode_family(
                &ModelLabels {
                    model: export.model.clone(),
                },
            )?)?;
        }
        if snapshots.iter().all(|s| s.psi.is_empty()) {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "feature_drift_psi",
            "Population Stability Index of each feature: drift window vs training quantile bins",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (export, snapshot) in exports.iter().zip(&snapshots) {
            for (feature, psi) in export.features.iter().zip(&snapshot.psi) {
                let labels = FeatureLabels {
                    model: export.model.clone(),
                    feature: feature.clone(),
                };
                ConstGauge::new(*psi).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

impl InferenceMetrics {
    /// Registers everything under `inference_` in `registry`, plus process and build info.
    pub(crate) fn register(registry: &mut Registry, buckets: &MetricsSettings) -> Self {
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
            out_of_range: Family::default(),
            missing: Family::default(),
            feedback: Family::default(),
            feedback_unmatched: Family::default(),
            feedback_evicted: Family::default(),
            loads: Family::default(),
            drift: DriftExports::default(),
            model_info_versions: Arc::default(),
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
            "Time in one model run (rows of concurrent requests may share one)",
            Unit::Seconds,
            m.model_run.clone(),
        );
        r.register(
            "batch_size",
            "Rows per model run (rows of concurrent requests may share one)",
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
        r.register(
            "feature_out_of_range",
            "Feature values outside the training min..max, by feature",
            m.out_of_range.clone(),
        );
        r.register(
            "feature_missing",
            "Missing (absent or null) feature values, by feature, rejected or imputed",
            m.missing.clone(),
        );
        r.register(
            "feedback",
            "Feedback labels by whether the prediction was correct",
            m.feedback.clone(),
        );
        r.register(
            "feedback_unmatched",
            "Feedback labels naming no stored prediction (unknown or evicted)",
            m.feedback_unmatched.clone(),
        );
        r.register(
            "feedback_evicted",
            "Predicted rows evicted unlabelled from the feedback store",
            m.feedback_evicted.clone(),
        );
        r.register(
            "model_loads",
            "Attempts to load a model version (at startup or a new one while serving), by outcome",
            m.loads.clone(),
        );
        r.register_collector(Box::new(DriftCollector(m.drift.clone())));
        m
    }

    pub(crate) fn count_error(&self, route: Arc<str>, kind: ErrorKind) {
        self.errors
            .get_or_create(&ErrorLabels { route, kind })
            .inc();
    }

    /// Drops the series that say a model is served (its folder is gone): its info, its
    /// training and load times, its validation `scores` and its drift. Counters and histograms
    /// stay (they only grow).
    pub(crate) fn unpublish_model<'a>(
        &self,
        name: &Arc<str>,
        scores: impl Iterator<Item = &'a String>,
    ) {
        let labels = ModelLabels {
            model: name.clone(),
        };
        self.loaded.remove(&labels);
        self.trained.remove(&labels);
        for metric in scores {
            self.validation.remove(&ScoreLabels {
                model: name.clone(),
                metric: Arc::from(metric.as_str()),
            });
        }
        self.drift
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        // The info series of whichever version it served.
        self.model_info_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .into_iter()
            .for_each(|version| {
                self.model_info.remove(&VersionLabels {
                    model: name.clone(),
                    version,
                });
            });
    }

    /// Counts one attempt to load a version of `model`.
    pub(crate) fn count_load(&self, model: &str, outcome: LoadOutcome) {
        self.loads
            .get_or_create(&LoadLabels {
                model: Arc::from(model),
                outcome,
            })
            .inc();
    }

    /// Sets the model's info gauges (dropping `replaced`, the version it takes over from) and
    /// resolves its hot-path handles; exports `drift` if given.
    pub(crate) fn publish_model(
        &self,
        model: &LoadedModel,
        replaced: Option<&str>,
        drift: Option<Arc<DriftWindow>>,
    ) -> ModelHandles {
        let name: Arc<str> = model.name.clone();
        let m = &model.manifest;
        let labels = ModelLabels {
            model: name.clone(),
        };
        if let Some(old) = replaced.filter(|&v| v != m.version()) {
            self.model_info.remove(&VersionLabels {
                model: name.clone(),
                version: Arc::from(old),
            });
        }
        let version: Arc<str> = Arc::from(m.version());
        self.model_info
            .get_or_create(&VersionLabels {
                model: name.clone(),
                version: version.clone(),
            })
            .set(1);
        self.model_info_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), version);
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
        let features: Vec<Arc<str>> = m.features.iter().map(|f| Arc::from(f.as_str())).collect();
        let per_feature = |family: &Family<FeatureLabels, Counter>| -> Vec<Counter> {
            features
                .iter()
                .map(|f| {
                    family.get_or_create_owned(&FeatureLabels {
                        model: name.clone(),
                        feature: f.clone(),
                    })
                })
                .collect()
        };
        let (out_of_range, missing) = (per_feature(&self.out_of_range), per_feature(&self.missing));
        let outcome = |outcome| {
            self.feedback.get_or_create_owned(&OutcomeLabels {
                model: name.clone(),
                outcome,
            })
        };
        let (feedback_correct, feedback_incorrect) = (
            outcome(FeedbackOutcome::Correct),
            outcome(FeedbackOutcome::Incorrect),
        );
        let mut exports = self.drift.lock().unwrap_or_else(|p| p.into_inner());
        match drift {
            Some(window) => {
                exports.insert(
                    name.clone(),
                    Arc::new(DriftExport {
                        model: name.clone(),
                        features,
                        window,
                    }),
                );
            }
            None => {
                exports.remove(&name);
            }
        }
        drop(exports);
        ModelHandles {
            out_of_range,
            missing,
            feedback_correct,
            feedback_incorrect,
            feedback_unmatched: self.feedback_unmatched.get_or_create_owned(&labels),
            feedback_evicted: self.feedback_evicted.get_or_create_owned(&labels),
            preprocess: self.preprocess.get_or_create_owned(&labels),
            model_run: self.model_run.get_or_create_owned(&labels),
            batch_size: self.batch_size.get_or_create_owned(&labels),
            per_class,
        }
    }
}

impl ModelHandles {
    pub(crate) fn observe_preprocess(&self, d: Duration) {
        self.preprocess.observe(d.as_secs_f64());
    }

    pub(crate) fn observe_run(&self, d: Duration, rows: usize) {
        self.model_run.observe(d.as_secs_f64());
        self.batch_size.observe(rows as f64);
    }

    pub(crate) fn count_missing(&self, features: &[usize]) {
        for &i in features {
            if let Some(c) = self.missing.get(i) {
                c.inc();
            }
        }
    }

    pub(crate) fn count_out_of_range(&self, feature: usize) {
        if let Some(c) = self.out_of_range.get(feature) {
            c.inc();
        }
    }

    pub(crate) fn count_feedback(&self, correct: bool) {
        if correct {
            &self.feedback_correct
        } else {
            &self.feedback_incorrect
        }
        .inc();
    }

    pub(crate) fn count_unmatched_feedback(&self) {
        self.feedback_unmatched.inc();
    }

    pub(crate) fn count_evicted(&self, rows: usize) {
        self.feedback_evicted.inc_by(rows as u64);
    }

    pub(crate) fn observe_prediction(&self, class_index: usize, confidence: f32) {
        if let Some((count, conf)) = self.per_class.get(class_index) {
            count.inc();
            conf.observe(f64::from(confidence));
        }
    }
}
