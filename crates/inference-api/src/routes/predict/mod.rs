//! `POST /predict`: the handler. Its body is parsed in [`body`], plain numeric rows through
//! [`fast_json`](super::fast_json).

pub(crate) mod body;
mod response;

use super::json::JsonBodyErrors;
use super::serve::{admitted, confidence, named_model, predict_rows};
use crate::error::{ApiError, ErrorBody, NotReadyResponse};
use crate::model::coalesce::Coalescer;
use crate::model::features::Preprocessing;
use crate::state::{AppState, ServingModel, WorkerIndex};
use actix_web::error::JsonPayloadError;
use actix_web::http::header::ContentType;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use body::{PredictBody, PredictRequest};
use metrics_core::http::{LogFields, RequestId};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

/// The answer to `POST /predict`.
#[derive(Serialize, ToSchema)]
struct PredictResponse<'a> {
    /// The model's name, from its manifest.
    #[schema(example = "breast-cancer")]
    model: &'a str,
    /// The model's version, from its manifest.
    #[schema(example = "1.0.0")]
    version: &'a str,
    /// The request's id (also in the `X-Request-Id` header): `POST /feedback` takes it.
    request_id: &'a str,
    /// One prediction per row, in the order sent.
    predictions: Vec<RowPrediction<'a>>,
}

/// The prediction for one row.
#[derive(Serialize, ToSchema)]
struct RowPrediction<'a> {
    /// The predicted class name.
    #[schema(example = "malignant")]
    label: &'a str,
    /// The predicted class's index in the manifest's `classes`.
    class_index: usize,
    probabilities: Probabilities<'a>,
    /// The largest probability.
    #[schema(minimum = 0.0, maximum = 1.0)]
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

impl ToSchema for Probabilities<'_> {}

impl PartialSchema for Probabilities<'_> {
    fn schema() -> RefOr<Schema> {
        let probability = ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Float)))
            .minimum(Some(0.0))
            .maximum(Some(1.0));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "The probability of every class, by class name, in the manifest's class order",
            ))
            .additional_properties(Some(probability))
            .examples([json!({"malignant": 0.02, "benign": 0.98})])
            .into()
    }
}

/// Predicts one row or a batch.
///
/// One row is `{"features": {name: value, …}}` with every feature by name (`GET /model` lists
/// them) or `{"features": [v1, …]}` in the manifest's feature order; a batch is
/// `{"instances": [row, …]}`, rows as objects or arrays, at most `limits.max_batch_rows`
/// (default 1000). A missing or null feature is refused (422 `missing_feature`) or imputed,
/// by `quality.missing_values`.
#[utoipa::path(
    post,
    path = "/predict",
    tag = "predict",
    request_body(
        content = PredictRequest,
        content_type = "application/json",
        example = json!({"features": [19.55, 28.77, 133.6, 1207.0, 0.0926, 0.2063, 0.1784, 0.1144,
            0.1893, 0.06232, 0.8426, 1.199, 7.158, 106.4, 0.006356, 0.04765, 0.05765, 0.01975,
            0.01584, 0.005217, 20.26, 35.22, 137.5, 1264.0, 0.1171, 0.4023, 0.3786, 0.1432,
            0.2612, 0.08149]}),
    ),
    responses(
        (status = 200, description = "one prediction per row", body = PredictResponse),
        JsonBodyErrors,
        (status = 422, body = ErrorBody, description = "validation: `wrong_feature_count`, \
            `unknown_feature`, `missing_feature`, `non_numeric_value`, `non_finite_value` \
            (outside the f32 range), `empty_batch`, `batch_too_large`, `invalid_request` \
            (wrong shape); the message names the feature and the batch row"),
        (status = 429, body = ErrorBody, description = "`overloaded`: `limits.max_in_flight` \
            predictions already running; answered at once", headers(
            ("Retry-After" = u32, description = "seconds to wait before retrying: always 1"))),
        NotReadyResponse,
        (status = 500, body = ErrorBody, description = "`model_error`: the model run failed \
            (the details go to the log, never to the body)"),
    ),
)]
pub(crate) async fn predict(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    worker: web::Data<WorkerIndex>,
    coalescer: web::Data<Coalescer>,
    id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let serving = state.model()?;
    serve(req, body, serving, state, worker, coalescer, id).await
}

/// Predictions from any model of the repository, at the version it serves.
#[utoipa::path(
    post,
    path = "/models/{name}/predict",
    tag = "predict",
    params(("name" = String, Path, description = "the model (`GET /models`)", example = "breast-cancer")),
    request_body(content = PredictRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "one prediction per row", body = PredictResponse),
        JsonBodyErrors,
        (status = 404, body = ErrorBody, description = "`unknown_model`: the repository has no such model"),
        (status = 422, body = ErrorBody, description = "validation, as for `POST /predict`"),
        (status = 429, body = ErrorBody, description = "`overloaded`, as for `POST /predict`"),
        NotReadyResponse,
        (status = 500, body = ErrorBody, description = "`model_error`: the model run failed"),
    ),
)]
pub(crate) async fn model_predict(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    worker: web::Data<WorkerIndex>,
    coalescer: web::Data<Coalescer>,
    id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let serving = named_model(&req, &state)?;
    serve(req, body, serving, state, worker, coalescer, id).await
}

/// Predictions from one version of a model: answered only while that version is served (a
/// client that must not get another version's answer says so).
#[utoipa::path(
    post,
    path = "/models/{name}/versions/{version}/predict",
    tag = "predict",
    params(
        ("name" = String, Path, description = "the model (`GET /models`)", example = "breast-cancer"),
        ("version" = String, Path, description = "the version it must serve", example = "1.0.0"),
    ),
    request_body(content = PredictRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "one prediction per row", body = PredictResponse),
        JsonBodyErrors,
        (status = 404, body = ErrorBody, description = "`unknown_model`: no such model, or it \
            does not serve this version"),
        (status = 422, body = ErrorBody, description = "validation, as for `POST /predict`"),
        (status = 429, body = ErrorBody, description = "`overloaded`, as for `POST /predict`"),
        NotReadyResponse,
        (status = 500, body = ErrorBody, description = "`model_error`: the model run failed"),
    ),
)]
pub(crate) async fn version_predict(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    worker: web::Data<WorkerIndex>,
    coalescer: web::Data<Coalescer>,
    id: RequestId,
) -> Result<HttpResponse, ApiError> {
    // The same handler: `named_model` checks `{version}` when the path has one.
    model_predict(req, body, state, worker, coalescer, id).await
}

/// Reads the body and answers it from `serving`, holding an admission slot.
async fn serve(
    req: HttpRequest,
    body: web::Payload,
    serving: Arc<ServingModel>,
    state: web::Data<AppState>,
    worker: web::Data<WorkerIndex>,
    coalescer: web::Data<Coalescer>,
    id: RequestId,
) -> Result<HttpResponse, ApiError> {
    req.extensions_mut().insert(LogFields {
        model: Some(serving.model.name.clone()),
        rows: None,
    });
    let body = super::json::read(&req, body, &state.limits).await?;
    admitted(
        &state,
        answer(&req, &body, &serving, &state, worker.0, &coalescer, &id),
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
    let answer = PredictResponse {
        model: m.name(),
        version: m.version(),
        request_id: id.as_str(),
        predictions,
    };
    // The bytes serde_json would write, written directly (`response`).
    Ok(match response::write(&answer) {
        Ok(body) => HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(body),
        // What `HttpResponse::json` answers when serde_json fails (it cannot, for these types).
        Err(e) => HttpResponse::from_error(JsonPayloadError::Serialize(e)),
    })
}
