//! What every worker shares.

use crate::configuration::{
    FeedbackSettings, LimitSettings, QualitySettings, Settings, TestingSettings,
};
use crate::error::ApiError;
use crate::metrics::{InferenceMetrics, ModelHandles};
use crate::model::coalesce::RunModel;
use crate::model::features::FeatureMatrix;
use crate::model::{EngineError, LoadedModel, Predictions};
use crate::quality::drift::{DriftWindow, FeatureBins};
use crate::quality::feedback::FeedbackStore;
use crate::routes::models::{ModelView, ModelsView};
use arc_swap::{ArcSwap, ArcSwapOption};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The published model with its metric handles, drift window and feedback store.
pub(crate) struct ServingModel {
    pub(crate) model: LoadedModel,
    pub(crate) handles: ModelHandles,
    pub(crate) bins: FeatureBins,
    pub(crate) drift: Option<Arc<DriftWindow>>,
    /// Shared by the model's versions: feedback on a prediction made before a swap still counts.
    pub(crate) feedback: Arc<FeedbackStore>,
}

impl RunModel for ServingModel {
    /// One model call on `worker`'s engine, timed into the run-duration and batch-size histograms.
    fn run(&self, worker: usize, values: &[f32], rows: usize) -> Result<Predictions, EngineError> {
        let started = Instant::now();
        let out = self.model.run(worker, values, rows)?;
        self.handles.observe_run(started.elapsed(), rows);
        Ok(out)
    }
}

impl ServingModel {
    /// Data quality and drift bookkeeping for rows about to be predicted on `worker`.
    pub(crate) fn observe_inputs(&self, worker: usize, matrix: &FeatureMatrix) {
        self.handles.count_missing(&matrix.imputed);
        let (min, max) = (&self.bins.min, &self.bins.max);
        for row in matrix.values.chunks_exact(self.bins.features()) {
            let within = |((&x, &lo), &hi): ((&f32, &f32), &f32)| x >= lo && x <= hi;
            // Most rows are within the training range: one pass without a branch per value
            // (the compiler compares several at once) decides whether to look for which are not.
            let outside = row
                .iter()
                .zip(min)
                .zip(max)
                .fold(false, |any, v| any | !within(v));
            if outside {
                for (j, v) in row.iter().zip(min).zip(max).enumerate() {
                    if !within(v) {
                        self.handles.count_out_of_range(j);
                    }
                }
            }
        }
        if let Some(window) = &self.drift {
            window.record(worker, &matrix.values, Instant::now());
        }
    }
}

/// One model of the repository: the version it serves, swapped whole (a request keeps the
/// version it started with).
#[derive(Default)]
pub(crate) struct ModelSlot {
    serving: ArcSwapOption<ServingModel>,
}

pub(crate) struct AppState {
    /// The default model (`model.default`): `POST /predict`, `/ready`. Also in `models`.
    default_name: Arc<str>,
    default: Arc<ModelSlot>,
    /// Every model of the repository by name, the default included.
    models: ArcSwap<BTreeMap<Arc<str>, Arc<ModelSlot>>>,
    pub(crate) metrics: InferenceMetrics,
    pub(crate) limits: LimitSettings,
    pub(crate) quality: QualitySettings,
    /// Test-only knobs (`testing.predict_delay_ms`); all off in production.
    pub(crate) testing: TestingSettings,
    feedback: FeedbackSettings,
    workers: usize,
    in_flight: AtomicUsize,
    /// `GET /models`: what the loader last saw in each model's folder.
    models_view: Mutex<BTreeMap<String, ModelView>>,
}

/// The index of the actix worker a request runs on; picks that worker's ONNX session and shards.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorkerIndex(pub usize);

impl AppState {
    pub(crate) fn new(settings: &Settings, metrics: InferenceMetrics, workers: usize) -> Self {
        let default_name: Arc<str> = Arc::from(settings.model.default.as_str());
        let default = Arc::new(ModelSlot::default());
        let models = BTreeMap::from([(default_name.clone(), default.clone())]);
        Self {
            default_name,
            default,
            models: ArcSwap::from_pointee(models),
            metrics,
            limits: settings.limits.clone(),
            quality: settings.quality.clone(),
            testing: settings.testing.clone(),
            feedback: settings.feedback.clone(),
            workers,
            in_flight: AtomicUsize::new(0),
            models_view: Mutex::default(),
        }
    }

    /// The default model, or `NotReady` (503) until one of its versions is loaded and warmed up.
    pub(crate) fn model(&self) -> Result<Arc<ServingModel>, ApiError> {
        self.default.serving.load_full().ok_or(ApiError::NotReady)
    }

    /// The model called `name`: 404 when the repository has no such model, 503 until it is ready.
    pub(crate) fn model_named(&self, name: &str) -> Result<Arc<ServingModel>, ApiError> {
        if name == &*self.default_name {
            return self.model();
        }
        match self.models.load().get(name) {
            Some(slot) => slot.serving.load_full().ok_or(ApiError::NotReady),
            None => Err(ApiError::UnknownModel(format!(
                "unknown model {:?}: this server serves {}",
                crate::routes::v2::request::shown(name),
                self.model_names().join(", ")
            ))),
        }
    }

    /// The name of the default model.
    pub(crate) fn default_model(&self) -> &str {
        &self.default_name
    }

    /// Every model's name, in order.
    pub(crate) fn model_names(&self) -> Vec<String> {
        self.models
            .load()
            .keys()
            .map(|n| format!("{n:?}"))
            .collect()
    }

    /// Serves `model` from now on as the version of the model it names (the default model's
    /// first version makes `/ready` answer 200); requests already running finish on the version
    /// they started with. Returns the version it replaced.
    pub(crate) fn publish(&self, model: LoadedModel) -> Option<Arc<ServingModel>> {
        let slot = self.slot(&model.name);
        let previous = slot.serving.load_full();
        let bins = FeatureBins::from_manifest(&model.manifest);
        let drift = self.quality.drift_tracking.then(|| {
            Arc::new(DriftWindow::new(
                bins.clone(),
                self.quality.drift_window_rows,
                self.quality.drift_max_age(),
                self.workers,
            ))
        });
        let replaced = previous.as_ref().map(|p| p.model.manifest.version());
        let handles = self.metrics.publish_model(&model, replaced, drift.clone());
        let feedback = match &previous {
            Some(p) => p.feedback.clone(),
            None => Arc::new(FeedbackStore::new(self.feedback.store_rows, self.workers)),
        };
        slot.serving.swap(Some(Arc::new(ServingModel {
            model,
            handles,
            bins,
            drift,
            feedback,
        })))
    }

    /// The slot of model `name`, added if the repository did not have it yet.
    fn slot(&self, name: &Arc<str>) -> Arc<ModelSlot> {
        if let Some(slot) = self.models.load().get(name) {
            return slot.clone();
        }
        let added = Arc::new(ModelSlot::default());
        self.models.rcu(|models| {
            let mut models = BTreeMap::clone(models);
            models.entry(name.clone()).or_insert_with(|| added.clone());
            models
        });
        self.models.load().get(name).cloned().unwrap_or(added)
    }

    /// Stops serving the models not in `keep` (their folders are gone); never the default one.
    pub(crate) fn retain_models(&self, keep: &[String]) {
        let gone: Vec<(Arc<str>, Option<Arc<ServingModel>>)> = self
            .models
            .load()
            .iter()
            .filter(|(n, _)| {
                ***n != *self.default_name && !keep.iter().any(|k| k.as_str() == &***n)
            })
            .map(|(n, slot)| (n.clone(), slot.serving.load_full()))
            .collect();
        if gone.is_empty() {
            return;
        }
        self.models.rcu(|models| {
            let mut models = BTreeMap::clone(models);
            models.retain(|n, _| !gone.iter().any(|(g, _)| g == n));
            models
        });
        for (name, served) in &gone {
            let scores = served
                .iter()
                .flat_map(|s| s.model.manifest.validation.scores.keys());
            self.metrics.unpublish_model(name, scores);
        }
        let mut view = self.models_view.lock().unwrap_or_else(|p| p.into_inner());
        view.retain(|n, _| !gone.iter().any(|(g, _)| &**g == n));
    }

    /// What `GET /models` answers: the default model first, then the others by name.
    pub(crate) fn models_view(&self) -> ModelsView {
        let view = self.models_view.lock().unwrap_or_else(|p| p.into_inner());
        let mut models: Vec<ModelView> = view.values().cloned().collect();
        models.sort_by_key(|m| !m.default);
        ModelsView { models }
    }

    pub(crate) fn set_model_view(&self, mut view: ModelView) {
        view.default = view.name == *self.default_name;
        self.models_view
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(view.name.clone(), view);
    }

    /// Admits a prediction if fewer than `max_in_flight` are running; the permit frees its slot on drop.
    pub(crate) fn try_admit(&self) -> Option<Permit<'_>> {
        let max = self.limits.max_in_flight;
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(&self.in_flight))
    }
}

pub(crate) struct Permit<'a>(&'a AtomicUsize);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
