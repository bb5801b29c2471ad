//! `POST /predict`: the handler. Its body is parsed in [`body`], plain numeric rows through
//! [`fast_json`].

pub(crate) mod body;
mod fast_json;

use super::serve::{admitted, confidence, predict_rows};
use crate::error::ApiError;
use crate::model::coalesce::Coalescer;
use crate::model::features::Preprocessing;
use crate::state::{AppState, ServingModel, WorkerIndex};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use body::PredictBody;
use metrics_core::http::{LogFields, RequestId};
use serde::Serialize;
use serde::ser::SerializeMap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Serialize)]
struct PredictResponse<'a> {
    model: &'a str,
    version: &'a str,
    request_id: &'a str,
    predictions: Vec<RowPrediction<'a>>,
}

#[derive(Serialize)]
struct RowPrediction<'a> {
    label: &'a str,
    class_index: usize,
    probabilities: Probabilities<'a>,
    confidence: f32,
}

/// `{"malignant": 0.02, "benign": 0.98}` in class order.
struct Probabilities<'a> {
    classes: &'a [String],
    values: &'a [f32],
}

impl Serialize for Probabilities<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.classes.len()))?;
        for (c, p) in self.classes.iter().zip(self.values) {
            map.serialize_entry(c, p)?;
        }
        map.end()
    }
}

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
    admitted(
        &state,
        answer(&req, &body, serving, &state, worker.0, &coalescer, &id),
    )
    .await
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
    let out = predict_rows(serving, worker, coalescer, id, matrix, started).await?;

    let classes = &model.manifest.classes;
    let predictions = out
        .iter()
        .map(|(class_index, probs)| RowPrediction {
            label: &classes[class_index],
            class_index,
            probabilities: Probabilities {
                classes,
                values: probs,
            },
            confidence: confidence(probs),
        })
        .collect();
    let m = &model.manifest;
    Ok(HttpResponse::Ok().json(PredictResponse {
        model: &m.name,
        version: &m.version,
        request_id: id.as_str(),
        predictions,
    }))
}
