//! What every worker shares.

use crate::configuration::{FeedbackSettings, LimitSettings, QualitySettings, TestingSettings};
use crate::error::ApiError;
use crate::metrics::{InferenceMetrics, ModelHandles};
use crate::model::coalesce::RunModel;
use crate::model::features::FeatureMatrix;
use crate::model::{EngineError, LoadedModel, Predictions};
use crate::quality::drift::{DriftWindow, FeatureBins};
use crate::quality::feedback::FeedbackStore;
use crate::routes::models::ModelsView;
use arc_swap::ArcSwapOption;
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

pub(crate) struct AppState {
    /// The version being served. Swapped whole: a request keeps the version it started with.
    model: ArcSwapOption<ServingModel>,
    pub(crate) metrics: InferenceMetrics,
    pub(crate) limits: LimitSettings,
    pub(crate) quality: QualitySettings,
    /// Test-only knobs (`testing.predict_delay_ms`); all off in production.
    pub(crate) testing: TestingSettings,
    feedback: FeedbackSettings,
    workers: usize,
    in_flight: AtomicUsize,
    /// `GET /models`: what the loader last saw in the model's folder.
    models_view: Mutex<ModelsView>,
}

/// The index of the actix worker a request runs on; picks that worker's ONNX session and shards.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorkerIndex(pub usize);

impl AppState {
    pub(crate) fn new(
        metrics: InferenceMetrics,
        limits: LimitSettings,
        quality: QualitySettings,
        testing: TestingSettings,
        feedback: FeedbackSettings,
        workers: usize,
    ) -> Self {
        Self {
            model: ArcSwapOption::empty(),
            metrics,
            limits,
            quality,
            testing,
            feedback,
            workers,
            in_flight: AtomicUsize::new(0),
            models_view: Mutex::default(),
        }
    }

    /// The served model, or `NotReady` (503) until one is loaded and warmed up.
    pub(crate) fn model(&self) -> Result<Arc<ServingModel>, ApiError> {
        self.model.load_full().ok_or(ApiError::NotReady)
    }

    /// Serves `model` from now on (the first call makes `/ready` answer 200); requests already
    /// running finish on the version they started with. Returns the version it replaced.
    pub(crate) fn publish(&self, model: LoadedModel) -> Option<Arc<ServingModel>> {
        let previous = self.model.load_full();
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
            Some(p) if p.model.name == model.name => p.feedback.clone(),
            _ => Arc::new(FeedbackStore::new(self.feedback.store_rows, self.workers)),
        };
        self.model.swap(Some(Arc::new(ServingModel {
            model,
            handles,
            bins,
            drift,
            feedback,
        })))
    }

    /// What `GET /models` answers.
    pub(crate) fn models_view(&self) -> ModelsView {
        self.models_view
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_models_view(&self, view: ModelsView) {
        *self.models_view.lock().unwrap_or_else(|p| p.into_inner()) = view;
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
