//! What every prediction route does once its body is read: admission, then the rows through the
//! model with the same bookkeeping, whatever protocol they came in (`/predict`, the V2 `infer`).

use crate::error::ApiError;
use crate::model::Predictions;
use crate::model::coalesce::Coalescer;
use crate::model::features::FeatureMatrix;
use crate::routes::v2::request::shown;
use crate::state::{AppState, ServingModel};
use actix_web::HttpRequest;
use metrics_core::http::RequestId;
use std::sync::Arc;
use std::time::Instant;

/// Runs `answer` holding an admission slot (`limits.max_in_flight`; 429 when none is free).
/// Admission comes once the body is read: a slow sender holds no slot.
pub(crate) async fn admitted<T, E: From<ApiError>>(
    state: &AppState,
    answer: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let _permit = state.try_admit().ok_or(ApiError::Overloaded)?;
    let out = answer.await;
    // Test-only (`testing.predict_delay_ms`, 0 = off, never set in production): every admitted
    // request, answered or failed, is as slow as a slow model would make it, slot held.
    if let Some(delay) = state.testing.predict_delay() {
        tokio::time::sleep(delay).await;
    }
    out
}

/// The model a route names (`{name}`, and `{version}` when given): 404 when this server has no
/// such model or version, 503 until the model is loaded.
pub(crate) fn named_model(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Arc<ServingModel>, ApiError> {
    let name = req.match_info().get("name").unwrap_or_default();
    let serving = state.model_named(name)?;
    let m = &serving.model.manifest;
    if let Some(version) = req.match_info().get("version")
        && version != m.version()
    {
        return Err(ApiError::UnknownModel(format!(
            "model {:?} has no version {:?} being served: it serves {:?}",
            m.name(),
            shown(version),
            m.version()
        )));
    }
    Ok(serving)
}

/// Validated rows through the model: preprocessing time (from `started`), data quality and
/// drift, the (coalesced) engine run, predictions per class and confidence, and the feedback
/// store under the request id. Returns each row's class index and probabilities.
pub(crate) async fn predict_rows(
    serving: &Arc<ServingModel>,
    worker: usize,
    coalescer: &Coalescer,
    id: &RequestId,
    matrix: FeatureMatrix,
    started: Instant,
) -> Result<Predictions, ApiError> {
    serving.handles.observe_preprocess(started.elapsed());
    // Data quality and drift bookkeeping, timed in neither histogram.
    serving.observe_inputs(worker, &matrix);
    let out = coalescer
        .run(serving, &matrix.values, matrix.rows)
        .await
        .map_err(ApiError::Model)?;
    let mut classes_predicted = Vec::with_capacity(out.rows());
    for (class_index, probs) in out.iter() {
        serving
            .handles
            .observe_prediction(class_index, confidence(probs));
        classes_predicted.push(class_index as u16);
    }
    let evicted = serving
        .feedback
        .insert(worker, id.0.clone(), classes_predicted);
    if evicted > 0 {
        serving.handles.count_evicted(evicted);
    }
    Ok(out)
}

/// The probability of the predicted class: the largest of a row.
pub(crate) fn confidence(probabilities: &[f32]) -> f32 {
    probabilities.iter().copied().fold(0f32, f32::max)
}
