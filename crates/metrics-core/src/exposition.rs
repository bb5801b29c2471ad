//! OpenMetrics text exposition of a registry.

use actix_web::{HttpResponse, web};
use prometheus_client::registry::Registry;

/// The content type of OpenMetrics text, understood by Prometheus 2.x and 3.x.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Renders the whole registry, ending with `# EOF`.
pub fn render(registry: &Registry) -> String {
    let mut body = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail; an encoding error would be a bug in a metric's encoder.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, registry) {
        tracing::error!(error.message = %e, "encoding metrics failed");
    }
    body
}

/// `GET /metrics` for actix-web: `App::new().app_data(web::Data::from(registry)).route("/metrics", web::get().to(metrics_endpoint))`.
#[cfg_attr(feature = "openapi", utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    summary = "Prometheus metrics",
    description = "Every metric of the service, for Prometheus to scrape.",
    responses((
        status = 200,
        description = "every metric, in OpenMetrics text ending with `# EOF`",
        body = String,
        // OPENMETRICS_CONTENT_TYPE (a test of the API's document checks they agree)
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )),
))]
pub async fn metrics_endpoint(registry: web::Data<Registry>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(OPENMETRICS_CONTENT_TYPE)
        .body(render(&registry))
}

/// [`metrics_endpoint`] for a registry whose collectors do blocking I/O at scrape time (the
/// exporter's): renders on actix's blocking thread pool, so a slow scrape never stalls the
/// worker that serves the other routes (`/health`).
pub async fn blocking_metrics_endpoint(registry: web::Data<Registry>) -> HttpResponse {
    let registry = registry.into_inner();
    match web::block(move || render(&registry)).await {
        Ok(body) => HttpResponse::Ok()
            .content_type(OPENMETRICS_CONTENT_TYPE)
            .body(body),
        Err(e) => {
            tracing::error!(error.message = %e, "rendering metrics failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}
