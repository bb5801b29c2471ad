//! What every worker shares.

use crate::configuration::LimitSettings;
use crate::metrics::{InferenceMetrics, ModelHandles};
use crate::model::LoadedModel;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The published model with its metric handles.
pub struct ServingModel {
    pub model: LoadedModel,
    pub handles: ModelHandles,
}

pub struct AppState {
    model: OnceLock<ServingModel>,
    pub metrics: InferenceMetrics,
    pub limits: LimitSettings,
    in_flight: AtomicUsize,
}

/// The index of the actix worker a request runs on; picks that worker's ONNX session.
#[derive(Clone, Copy, Debug)]
pub struct WorkerIndex(pub usize);

impl AppState {
    pub fn new(metrics: InferenceMetrics, limits: LimitSettings) -> Self {
        Self {
            model: OnceLock::new(),
            metrics,
            limits,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// The served model, or `None` until it is loaded and warmed up.
    pub fn model(&self) -> Option<&ServingModel> {
        self.model.get()
    }

    /// Publishes a loaded model; from now on `/ready` answers 200. Only the first call wins.
    pub fn publish(&self, model: LoadedModel) -> bool {
        let handles = self.metrics.publish_model(&model);
        self.model.set(ServingModel { model, handles }).is_ok()
    }

    /// Admits a prediction if fewer than `max_in_flight` are running; the permit frees its slot on drop.
    pub fn try_admit(&self) -> Option<Permit<'_>> {
        let max = self.limits.max_in_flight;
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(&self.in_flight))
    }
}

pub struct Permit<'a>(&'a AtomicUsize);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
