//! The Open Inference Protocol (KServe "V2" inference protocol), REST: server and model health and
//! metadata, and inference with JSON tensors or the binary tensor data extension. Errors are
//! [`V2Error`]s (`{"error": "..."}`). Inference shares admission, the engine, coalescing and
//! every metric with `/predict` ([`super::serve`]).

pub(crate) mod request;
mod response;

use super::serve::{admitted, predict_rows};
use crate::error::{ApiError, V2Error};
use crate::metrics::ErrorKind;
use crate::model::coalesce::Coalescer;
use crate::state::{AppState, ServingModel, WorkerIndex};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use metrics_core::http::{LogFields, RequestId};
use request::{InferRequest, InputSpec, shown};
use response::Answer;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// What `GET /v2` lists as supported extensions.
const EXTENSIONS: [&str; 1] = ["binary_tensor_data"];

/// The platform of every model this server runs (the protocol's `<project>_<format>` names).
const PLATFORM: &str = "onnx_onnxv1";

/// `GET /v2`: server metadata.
pub(crate) async fn server_metadata() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "inference-api",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": EXTENSIONS,
    }))
}

/// `GET /v2/health/live`: 200 while the process serves HTTP.
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"live": true}))
}

/// `GET /v2/health/ready`: 200 once the model is loaded and warmed up, else 503.
pub(crate) async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.model() {
        Ok(_) => HttpResponse::Ok().json(json!({"ready": true})),
        Err(_) => not_ready(json!({"ready": false})),
    }
}

/// `GET /v2/models/{name}[/versions/{version}]/ready`: 200 once that model is served, 503 before
/// the model is loaded, 404 for a model or version this server does not have.
pub(crate) async fn model_ready(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, V2Error> {
    match model(&req, &state) {
        Ok(serving) => Ok(
            HttpResponse::Ok().json(json!({"name": serving.model.manifest.name, "ready": true}))
        ),
        Err(V2Error(ApiError::NotReady)) => Ok(not_ready(json!({
            "name": req.match_info().get("name").unwrap_or_default(),
            "ready": false,
        }))),
        Err(e) => Err(e),
    }
}

/// A 503 with a readiness body, counted like every other not-ready answer.
fn not_ready(body: serde_json::Value) -> HttpResponse {
    let mut res = HttpResponse::ServiceUnavailable().json(body);
    res.extensions_mut().insert(ErrorKind::NotReady);
    res
}

/// `GET /v2/models/{name}[/versions/{version}]`: model metadata from the manifest.
pub(crate) async fn model_metadata(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, V2Error> {
    let serving = model(&req, &state)?;
    let m = &serving.model.manifest;
    Ok(HttpResponse::Ok().json(json!({
        "name": m.name,
        "versions": [m.version],
        "platform": PLATFORM,
        "inputs": [{"name": m.input.name, "datatype": "FP32", "shape": [-1, m.features.len()]}],
        "outputs": [
            {"name": m.outputs.label, "datatype": "INT64", "shape": [-1]},
            {"name": m.outputs.probabilities, "datatype": "FP32", "shape": [-1, m.classes.len()]},
        ],
    })))
}

/// `POST /v2/models/{name}[/versions/{version}]/infer`.
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
        answer(&req, &body, serving, &state, worker.0, &coalescer, &id),
    )
    .await
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
    let request: InferRequest = super::json::parse(json, |b| serde_json::from_slice(b))?;
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
        model_name: &m.name,
        model_version: &m.version,
        id: parsed.id.as_deref(),
        output_names,
        classes: m.classes.len(),
        wanted: &parsed.outputs,
    }
    .respond(&out))
}

/// The model a V2 route names (`{name}`, and `{version}` when given): 503 until the model is
/// loaded, 404 when this server has no such model or version.
fn model<'a>(req: &HttpRequest, state: &'a AppState) -> Result<&'a Arc<ServingModel>, V2Error> {
    let serving = state.model()?;
    let m = &serving.model.manifest;
    let name = req.match_info().get("name").unwrap_or_default();
    if name != m.name {
        return Err(ApiError::UnknownModel(format!(
            "unknown model {:?}: this server serves {:?}",
            shown(name),
            m.name
        ))
        .into());
    }
    if let Some(version) = req.match_info().get("version")
        && version != m.version
    {
        return Err(ApiError::UnknownModel(format!(
            "model {:?} has no version {:?}: it has {:?}",
            m.name,
            shown(version),
            m.version
        ))
        .into());
    }
    Ok(serving)
}

/// Registers every V2 route, each answering 405 (in the V2 error shape) to other methods.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    fn resource(path: &str, route: actix_web::Route) -> actix_web::Resource {
        web::resource(path)
            .route(route)
            .default_service(web::to(method_not_allowed))
    }
    cfg.service(resource("/v2", web::get().to(server_metadata)))
        .service(resource("/v2/health/live", web::get().to(live)))
        .service(resource("/v2/health/ready", web::get().to(ready)));
    for model in ["/v2/models/{name}", "/v2/models/{name}/versions/{version}"] {
        cfg.service(resource(model, web::get().to(model_metadata)))
            .service(resource(
                &format!("{model}/ready"),
                web::get().to(model_ready),
            ))
            .service(resource(&format!("{model}/infer"), web::post().to(infer)));
    }
}

async fn method_not_allowed() -> Result<HttpResponse, V2Error> {
    Err(ApiError::MethodNotAllowed.into())
}
