//! `POST /predict`.

use crate::error::ApiError;
use crate::model::features::PredictRequest;
use crate::state::{AppState, WorkerIndex};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use metrics_core::http::{LogFields, RequestId};
use serde::Serialize;
use serde::ser::SerializeMap;
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

fn is_json(req: &HttpRequest) -> Result<(), ApiError> {
    let given = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match req.mime_type() {
        Ok(Some(m)) if m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json") => Ok(()),
        _ if given.is_empty() => Err(ApiError::UnsupportedMediaType("no Content-Type".into())),
        _ => Err(ApiError::UnsupportedMediaType(format!("{given:?}"))),
    }
}

/// Reads the body (limit from `web::PayloadConfig`), mapping actix's errors to ours.
fn body_or_error(
    body: Result<web::Bytes, actix_web::Error>,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    body.map_err(|e| match e.as_response_error().status_code().as_u16() {
        413 => ApiError::PayloadTooLarge { limit },
        _ => ApiError::MalformedJson(format!("could not read the body: {e}")),
    })
}

pub async fn predict(
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
    state: web::Data<AppState>,
    worker: web::Data<WorkerIndex>,
    id: RequestId,
) -> Result<HttpResponse, ApiError> {
    is_json(&req)?;
    let body = body_or_error(body, state.limits.max_body_bytes)?;
    let serving = state.model().ok_or(ApiError::NotReady)?;
    let model = &serving.model;
    let mut log = LogFields {
        model: Some(model.name.clone()),
        rows: None,
    };

    let started = Instant::now();
    let parsed = serde_json::from_slice::<PredictRequest>(&body).map_err(|e| {
        if e.is_data() {
            ApiError::Validation(crate::model::features::ValidationError {
                code: crate::model::features::ValidationCode::InvalidRequest,
                message: e.to_string(),
            })
        } else {
            ApiError::MalformedJson(e.to_string())
        }
    });
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            req.extensions_mut().insert(log);
            return Err(e);
        }
    };
    log.rows = Some(parsed.row_count());
    req.extensions_mut().insert(log);
    let matrix = parsed
        .into_matrix(&model.schema, state.limits.max_batch_rows)
        .map_err(ApiError::Validation)?;
    let preprocessed = Instant::now();
    serving.handles.observe_preprocess(preprocessed - started);

    let out = model
        .run(worker.0, &matrix.values, matrix.rows)
        .map_err(ApiError::Model)?;
    serving
        .handles
        .observe_run(preprocessed.elapsed(), matrix.rows);

    let classes = &model.manifest.classes;
    let n = classes.len();
    let mut predictions = Vec::with_capacity(matrix.rows);
    for (label, probs) in out.labels.iter().zip(out.probabilities.chunks_exact(n)) {
        let class_index = usize::try_from(*label)
            .ok()
            .filter(|i| *i < n)
            .ok_or_else(|| {
                ApiError::Model(crate::model::EngineError::Run(format!(
                    "class index {label} out of range"
                )))
            })?;
        let confidence = probs.iter().copied().fold(0f32, f32::max);
        serving.handles.observe_prediction(class_index, confidence);
        predictions.push(RowPrediction {
            label: &classes[class_index],
            class_index,
            probabilities: Probabilities {
                classes,
                values: probs,
            },
            confidence,
        });
    }
    let m = &model.manifest;
    Ok(HttpResponse::Ok().json(PredictResponse {
        model: &m.name,
        version: &m.version,
        request_id: id.as_str(),
        predictions,
    }))
}
