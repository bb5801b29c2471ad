//! `POST /predict`: the handler. Its body is parsed in [`body`], plain numeric rows through
//! [`fast_json`].

pub(crate) mod body;
mod fast_json;
mod response;

use crate::error::ApiError;
use crate::model::coalesce::Coalescer;
use crate::model::features::Preprocessing;
use crate::state::{AppState, ServingModel, WorkerIndex};
use actix_web::error::JsonPayloadError;
use actix_web::http::header::ContentType;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use body::PredictBody;
use metrics_core::http::{LogFields, RequestId};
use response::RowPrediction;
use std::sync::Arc;
use std::time::Instant;

pub(crate) async fn predict(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    worker: web::Data<WorkerIndex>,
    coalescer: web::Data<Coalescer>,
    id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let serving = state.model()?;
    let model = &serving.model;
    req.extensions_mut().insert(LogFields {
        model: Some(model.name.clone()),
        rows: None,
    });
    let body = super::json::read(&req, body, &state.limits).await?;
    // Admission once the body is here: a slow sender holds no slot.
    let _permit = state.try_admit().ok_or(ApiError::Overloaded)?;
    let answer = answer(&req, &body, serving, &state, worker.0, &coalescer, &id).await;
    // Test-only (`testing.predict_delay_ms`, 0 = off, never set in production): every admitted
    // request, answered or failed, is as slow as a slow model would make it, slot held.
    if let Some(delay) = state.testing.predict_delay() {
        tokio::time::sleep(delay).await;
    }
    answer
}

/// The answer to an admitted request's body.
async fn answer(
    req: &HttpRequest,
    body: &[u8],
    serving: &Arc<ServingModel>,
    state: &AppState,
    worker: usize,
    coalescer: &Coalescer,
    id: &RequestId,
) -> Result<HttpResponse, ApiError> {
    let model = &serving.model;
    let started = Instant::now();
    let how = Preprocessing {
        schema: &model.schema,
        max_rows: state.limits.max_batch_rows,
        missing: state.quality.missing_values,
    };
    let parsed = super::json::parse(body, |b| PredictBody::from_json(b, how));
    if let Some(log) = req.extensions_mut().get_mut::<LogFields>() {
        log.rows = parsed.as_ref().ok().map(PredictBody::row_count);
    }
    let matrix = parsed?.into_matrix(how).map_err(|e| {
        serving.handles.count_missing(&e.missing);
        ApiError::Validation(e)
    })?;
    serving.handles.observe_preprocess(started.elapsed());
    // Data quality and drift bookkeeping, timed in neither histogram.
    serving.observe_inputs(worker, &matrix);

    let out = coalescer
        .run(serving, &matrix.values, matrix.rows)
        .await
        .map_err(ApiError::Model)?;

    let classes = &model.manifest.classes;
    let mut predictions = Vec::with_capacity(out.rows());
    for (class_index, probs) in out.iter() {
        let confidence = probs.iter().copied().fold(0f32, f32::max);
        serving.handles.observe_prediction(class_index, confidence);
        predictions.push(RowPrediction {
            class_index,
            probabilities: probs,
            confidence,
        });
    }
    let classes_predicted = predictions.iter().map(|p| p.class_index as u16).collect();
    let evicted = serving
        .feedback
        .insert(worker, id.0.clone(), classes_predicted);
    if evicted > 0 {
        serving.handles.count_evicted(evicted);
    }
    let m = &model.manifest;
    Ok(
        match response::write(&m.name, &m.version, id.as_str(), classes, &predictions) {
            Ok(body) => HttpResponse::Ok()
                .content_type(ContentType::json())
                .body(body),
            // What `HttpResponse::json` answers when serde_json fails (it cannot, for these types).
            Err(e) => HttpResponse::from_error(JsonPayloadError::Serialize(e)),
        },
    )
}
