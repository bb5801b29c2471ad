use crate::error::{ApiError, NotReadyResponse};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

/// The answer to `GET /health`.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// The answer to `GET /ready`.
#[derive(Serialize, ToSchema)]
struct Ready<'a> {
    /// Always `ready`.
    #[schema(example = "ready")]
    status: &'static str,
    /// The model being served.
    #[schema(example = "breast-cancer")]
    model: &'a str,
    #[schema(example = "1.0.0")]
    version: &'a str,
}

/// Liveness: 200 while the process serves HTTP.
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    responses((status = 200, description = "the process is up and answering", body = Health)),
)]
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: 200 once the model is loaded and warmed up, else 503.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "service",
    responses(
        (status = 200, description = "the model is loaded and warmed up", body = Ready),
        NotReadyResponse,
    ),
)]
pub(crate) async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let serving = state.model()?;
    let m = &serving.model.manifest;
    Ok(HttpResponse::Ok().json(Ready {
        status: "ready",
        model: m.name(),
        version: m.version(),
    }))
}
