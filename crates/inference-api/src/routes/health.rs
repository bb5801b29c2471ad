use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// `GET /health`: the process is up and answering.
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /ready`: 200 once the model is loaded and warmed up, else 503.
pub(crate) async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let serving = state.model()?;
    let m = &serving.model.manifest;
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "model": m.name, "version": m.version})))
}
