//! The Open Inference Protocol (KServe "V2" inference protocol), REST: server and model health and
//! metadata, and inference with JSON tensors or the binary tensor data extension. Errors are
//! [`V2Error`]s (`{"error": "..."}`). Inference shares admission, the engine, coalescing and
//! every metric with `/predict` ([`super::serve`]).

pub(crate) mod request;
mod response;

use super::serve::{admitted, named_model, predict_rows};
use crate::error::{ApiError, V2Error, v2_error_responses};
use crate::metrics::ErrorKind;
use crate::model::coalesce::Coalescer;
use crate::state::{AppState, ServingModel, WorkerIndex};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use metrics_core::http::{LogFields, RequestId};
use request::{InferRequest, InputSpec, shown};
use response::Answer;
use response::InferResponse;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use utoipa::openapi::{RefOr, Response};
use utoipa::{IntoResponses, ToSchema};

/// What `GET /v2` lists as supported extensions.
const EXTENSIONS: [&str; 1] = ["binary_tensor_data"];

/// The platform of every model this server runs (the protocol's `<project>_<format>` names).
const PLATFORM: &str = "onnx_onnxv1";

/// Server metadata.
#[derive(Serialize, ToSchema)]
struct ServerMetadata {
    #[schema(example = "inference-api")]
    name: &'static str,
    #[schema(example = "0.1.0")]
    version: &'static str,
    /// The protocol extensions this server supports.
    #[schema(example = json!(["binary_tensor_data"]))]
    extensions: [&'static str; 1],
}

#[derive(Serialize, ToSchema)]
struct Live {
    live: bool,
}

#[derive(Serialize, ToSchema)]
struct Ready {
    ready: bool,
}

#[derive(Serialize, ToSchema)]
struct ModelReady<'a> {
    #[schema(example = "breast-cancer")]
    name: &'a str,
    ready: bool,
}

/// A model's metadata.
#[derive(Serialize, ToSchema)]
struct ModelMetadata<'a> {
    #[schema(example = "breast-cancer")]
    name: &'a str,
    #[schema(example = json!(["1.0.0"]))]
    versions: [&'a str; 1],
    #[schema(example = "onnx_onnxv1")]
    platform: &'static str,
    inputs: [TensorMetadata<'a>; 1],
    outputs: [TensorMetadata<'a>; 2],
}

/// A tensor's name, datatype and shape (-1: any number of rows).
#[derive(Serialize, ToSchema)]
struct TensorMetadata<'a> {
    #[schema(example = "input")]
    name: &'a str,
    #[schema(example = "FP32")]
    datatype: &'static str,
    #[schema(example = json!([-1, 30]))]
    shape: Vec<i64>,
}

/// The `{name}` and `{version}` of a model route.
const MODEL: &str = "the model's name (its manifest's `name`)";
const VERSION: &str = "the model's version (its manifest's `version`)";

/// Server metadata.
#[utoipa::path(get, path = "/v2", tag = "v2", operation_id = "v2_server_metadata",
    responses((status = 200, description = "name, version and supported extensions", body = ServerMetadata)))]
pub(crate) async fn server_metadata() -> HttpResponse {
    HttpResponse::Ok().json(ServerMetadata {
        name: "inference-api",
        version: env!("CARGO_PKG_VERSION"),
        extensions: EXTENSIONS,
    })
}

/// Liveness: 200 while the process serves HTTP.
#[utoipa::path(get, path = "/v2/health/live", tag = "v2", operation_id = "v2_live",
    responses((status = 200, description = "live", body = Live)))]
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Live { live: true })
}

/// Readiness: 200 once the model is loaded and warmed up, else 503.
#[utoipa::path(get, path = "/v2/health/ready", tag = "v2", operation_id = "v2_ready", responses(
    (status = 200, description = "ready", body = Ready),
    (status = 503, description = "the model is not loaded yet", body = Ready)))]
pub(crate) async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.model() {
        Ok(_) => HttpResponse::Ok().json(Ready { ready: true }),
        Err(_) => not_ready(Ready { ready: false }),
    }
}

/// Model readiness: 200 once that model is served, 503 before it is loaded.
#[utoipa::path(get, path = "/v2/models/{name}/ready", tag = "v2", operation_id = "v2_model_ready",
    params(("name" = String, Path, description = MODEL, example = "breast-cancer")),
    responses(
        (status = 200, description = "the model is ready", body = ModelReady),
        (status = 503, description = "the model is not loaded yet", body = ModelReady),
        V2UnknownModel))]
pub(crate) async fn model_ready(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, V2Error> {
    match model(&req, &state) {
        Ok(serving) => Ok(HttpResponse::Ok().json(ModelReady {
            name: serving.model.manifest.name(),
            ready: true,
        })),
        Err(V2Error(ApiError::NotReady)) => Ok(not_ready(ModelReady {
            name: &shown(req.match_info().get("name").unwrap_or_default()),
            ready: false,
        })),
        Err(e) => Err(e),
    }
}

/// Readiness of one version of the model.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}/ready", tag = "v2", operation_id = "v2_version_ready",
    params(("name" = String, Path, description = MODEL, example = "breast-cancer"),
           ("version" = String, Path, description = VERSION, example = "1.0.0")),
    responses(
        (status = 200, description = "the version is ready", body = ModelReady),
        (status = 503, description = "the model is not loaded yet", body = ModelReady),
        V2UnknownModel))]
pub(crate) async fn version_ready(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, V2Error> {
    model_ready(req, state).await
}

/// A 503 with a readiness body, counted like every other not-ready answer.
fn not_ready(body: impl Serialize) -> HttpResponse {
    let mut res = HttpResponse::ServiceUnavailable().json(body);
    res.extensions_mut().insert(ErrorKind::NotReady);
    res
}

/// Model metadata, from the manifest.
#[utoipa::path(get, path = "/v2/models/{name}", tag = "v2", operation_id = "v2_model_metadata",
    params(("name" = String, Path, description = MODEL, example = "breast-cancer")),
    responses(
        (status = 200, description = "the model's versions, platform, inputs and outputs", body = ModelMetadata),
        V2UnknownModel, V2NotReady))]
pub(crate) async fn model_metadata(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, V2Error> {
    let serving = model(&req, &state)?;
    let m = &serving.model.manifest;
    let tensor = |name, datatype, shape| TensorMetadata {
        name,
        datatype,
        shape,
    };
    Ok(HttpResponse::Ok().json(ModelMetadata {
        name: m.name(),
        versions: [m.version()],
        platform: PLATFORM,
        inputs: [tensor(
            &m.input.name,
            "FP32",
            vec![-1, m.features.len() as i64],
        )],
        outputs: [
            tensor(&m.outputs.label, "INT64", vec![-1]),
            tensor(
                &m.outputs.probabilities,
                "FP32",
                vec![-1, m.classes.len() as i64],
            ),
        ],
    }))
}

/// Metadata of one version of the model.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}", tag = "v2", operation_id = "v2_version_metadata",
    params(("name" = String, Path, description = MODEL, example = "breast-cancer"),
           ("version" = String, Path, description = VERSION, example = "1.0.0")),
    responses(
        (status = 200, description = "the model's versions, platform, inputs and outputs", body = ModelMetadata),
        V2UnknownModel, V2NotReady))]
pub(crate) async fn version_metadata(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, V2Error> {
    model_metadata(req, state).await
}

/// Inference: JSON tensors, or a JSON header and binary tensors (`Inference-Header-Content-Length`).
#[utoipa::path(post, path = "/v2/models/{name}/infer", tag = "v2", operation_id = "v2_infer",
    params(("name" = String, Path, description = MODEL, example = "breast-cancer"),
           ("Inference-Header-Content-Length" = Option<u64>, Header, description = HEADER_DOC)),
    request_body(description = REQUEST_DOC, content(
        (InferRequest = "application/json", example = json!({"id": "a1", "inputs": [{"name": "input",
            "shape": [1, 30], "datatype": "FP32", "data": [19.55, 28.77, 133.6, 1207.0, 0.0926,
            0.2063, 0.1784, 0.1144, 0.1893, 0.06232, 0.8426, 1.199, 7.158, 106.4, 0.006356,
            0.04765, 0.05765, 0.01975, 0.01584, 0.005217, 20.26, 35.22, 137.5, 1264.0, 0.1171,
            0.4023, 0.3786, 0.1432, 0.2612, 0.08149]}]})),
        (Vec<u8> = "application/octet-stream"))),
    responses(
        (status = 200, description = RESPONSE_DOC, content(
            (InferResponse = "application/json"), (Vec<u8> = "application/octet-stream")),
            headers(("Inference-Header-Content-Length" = u64, description = "binary responses: the length of the JSON part"))),
        V2InferErrors))]
pub(crate) async fn infer(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    worker: web::Data<WorkerIndex>,
    coalescer: web::Data<Coalescer>,
    id: RequestId,
) -> Result<HttpResponse, V2Error> {
    let serving = model(&req, &state)?;
    req.extensions_mut().insert(LogFields {
        model: Some(serving.model.name.clone()),
        rows: None,
    });
    let body = super::json::read_v2(&req, body, &state.limits).await?;
    admitted(
        &state,
        answer(&req, &body, &serving, &state, worker.0, &coalescer, &id),
    )
    .await
}

/// Inference on one version of the model.
#[utoipa::path(post, path = "/v2/models/{name}/versions/{version}/infer", tag = "v2", operation_id = "v2_version_infer",
    params(("name" = String, Path, description = MODEL, example = "breast-cancer"),
           ("version" = String, Path, description = VERSION, example = "1.0.0"),
           ("Inference-Header-Content-Length" = Option<u64>, Header, description = HEADER_DOC)),
    request_body(description = REQUEST_DOC, content(
        (InferRequest = "application/json"), (Vec<u8> = "application/octet-stream"))),
    responses(
        (status = 200, description = RESPONSE_DOC, content(
            (InferResponse = "application/json"), (Vec<u8> = "application/octet-stream")),
            headers(("Inference-Header-Content-Length" = u64, description = "binary responses: the length of the JSON part"))),
        V2InferErrors))]
pub(crate) async fn version_infer(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    worker: web::Data<WorkerIndex>,
    coalescer: web::Data<Coalescer>,
    id: RequestId,
) -> Result<HttpResponse, V2Error> {
    infer(req, body, state, worker, coalescer, id).await
}

/// The answer to an admitted inference request's body.
async fn answer(
    req: &HttpRequest,
    body: &[u8],
    serving: &Arc<ServingModel>,
    state: &AppState,
    worker: usize,
    coalescer: &Coalescer,
    id: &RequestId,
) -> Result<HttpResponse, V2Error> {
    let started = Instant::now();
    let m = &serving.model.manifest;
    let header_length = req
        .headers()
        .get(request::HEADER_LENGTH)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let (json, binary) = request::split(body, header_length)?;
    let request = super::json::parse(json, InferRequest::from_json)?;
    let output_names = [m.outputs.label.as_str(), m.outputs.probabilities.as_str()];
    let input = InputSpec {
        name: &m.input.name,
        features: &m.features,
        max_rows: state.limits.max_batch_rows,
    };
    let parsed = request.into_parsed(binary, &input, &output_names)?;
    if let Some(log) = req.extensions_mut().get_mut::<LogFields>() {
        log.rows = Some(parsed.matrix.rows);
    }
    let out = predict_rows(serving, worker, coalescer, id, parsed.matrix, started).await?;
    Ok(Answer {
        model_name: m.name(),
        model_version: m.version(),
        id: parsed.id.as_deref(),
        output_names,
        classes: m.classes.len(),
        wanted: &parsed.outputs,
    }
    .respond(&out))
}

const HEADER_DOC: &str = "binary tensor data extension: the length of the JSON part of the body; \
    the rest is each binary input's `binary_data_size` bytes, little-endian, in input order";
const REQUEST_DOC: &str = "one input (`input`, FP32 or FP64, shape `[rows, 30]`, `data` flat or \
    nested row-major, or `parameters.binary_data_size` with the binary extension); `outputs` \
    selects outputs and asks for binary ones (`parameters.binary_data`), as does the request's \
    `parameters.binary_data_output`";
const RESPONSE_DOC: &str = "`label` (INT64 class indices, `[rows]`) and `probabilities` (FP32, \
    `[rows, classes]`), or those asked for; binary outputs have `parameters.binary_data_size` \
    instead of `data`, their bytes follow the JSON (`application/octet-stream`)";

/// 404 for a model or version this server does not have.
struct V2UnknownModel;

impl IntoResponses for V2UnknownModel {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        v2_error_responses(&[(404, "no such model or version")])
    }
}

/// 503 before the model is loaded.
struct V2NotReady;

impl IntoResponses for V2NotReady {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        v2_error_responses(&[(503, "the model is not loaded yet")])
    }
}

/// Every error of an inference request.
struct V2InferErrors;

impl IntoResponses for V2InferErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        v2_error_responses(&[
            (
                400,
                "a bad request: malformed JSON; wrong datatype; a shape that is not \
                [rows, 30], is negative, has no or too many rows, or disagrees with the data; a \
                value that is not a finite f32; an unknown input or output; binary sizes that \
                disagree with the shape or the body",
            ),
            (404, "no such model or version"),
            (408, "the body arrived too slowly; the connection is closed"),
            (
                413,
                "the body is over `limits.max_body_bytes`; the connection is closed",
            ),
            (
                415,
                "a Content-Type other than JSON or application/octet-stream, or any \
                Content-Encoding",
            ),
            (
                429,
                "`limits.max_in_flight` predictions already running; answered at once",
            ),
            (503, "the model is not loaded yet"),
            (500, "the model run failed (the details go to the log)"),
        ])
    }
}

/// The model a V2 route names (`{name}`, and `{version}` when given): 503 until the model is
/// loaded, 404 when this server has no such model or version.
fn model(req: &HttpRequest, state: &AppState) -> Result<Arc<ServingModel>, V2Error> {
    Ok(named_model(req, state)?)
}

/// 405 on a V2 path, in the protocol's error shape.
pub(crate) async fn method_not_allowed() -> Result<HttpResponse, V2Error> {
    Err(ApiError::MethodNotAllowed.into())
}
