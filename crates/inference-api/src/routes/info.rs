use crate::error::{ApiError, V2Error};
use crate::state::AppState;
use actix_web::ResponseError;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

/// `GET /`: what this service is and what it serves.
pub(crate) async fn service_info(state: web::Data<AppState>) -> HttpResponse {
    let model = state.model().ok().map(|s| {
        let m = &s.model.manifest;
        json!({"name": m.name, "version": m.version, "features": m.features.len(), "classes": m.classes})
    });
    HttpResponse::Ok().json(json!({
        "service": "inference-api",
        "version": env!("CARGO_PKG_VERSION"),
        "model": model,
        "endpoints": [
            {"method": "POST", "path": "/predict", "description": "predict one row ({\"features\": ...}) or a batch ({\"instances\": [...]})"},
            {"method": "POST", "path": "/feedback", "description": "the true class of a prediction: {\"request_id\", \"row\", \"label\"}"},
            {"method": "GET", "path": "/model", "description": "the model manifest without training statistics"},
            {"method": "GET", "path": "/health", "description": "liveness"},
            {"method": "GET", "path": "/ready", "description": "200 once the model is loaded and warmed up"},
            {"method": "GET", "path": "/metrics", "description": "Prometheus metrics (OpenMetrics text)"},
            {"method": "GET", "path": "/v2", "description": "Open Inference Protocol (V2): server metadata"},
            {"method": "GET", "path": "/v2/health/live", "description": "V2 liveness"},
            {"method": "GET", "path": "/v2/health/ready", "description": "V2 readiness"},
            {"method": "GET", "path": "/v2/models/{name}[/versions/{version}]", "description": "V2 model metadata"},
            {"method": "GET", "path": "/v2/models/{name}[/versions/{version}]/ready", "description": "V2 model readiness"},
            {"method": "POST", "path": "/v2/models/{name}[/versions/{version}]/infer", "description": "V2 inference: JSON or binary tensors"},
        ],
    }))
}

/// `GET /model`: the manifest without the bulky training statistics.
pub(crate) async fn model_manifest(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let serving = state.model()?;
    Ok(HttpResponse::Ok().json(&serving.model.public_manifest))
}

/// Every path no route matches; under `/v2/` in the Open Inference Protocol's error shape.
pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    let e = ApiError::NotFound(format!("{} {}", req.method(), req.path()));
    if req.path().starts_with("/v2/") {
        V2Error(e).error_response()
    } else {
        e.error_response()
    }
}
