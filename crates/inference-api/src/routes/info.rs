use crate::error::{ApiError, NotReadyResponse, V2Error};
use crate::state::AppState;
use actix_web::ResponseError;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// The answer to `GET /`.
#[derive(Serialize, ToSchema)]
struct ServiceInfo<'a> {
    #[schema(example = "inference-api")]
    service: &'static str,
    /// The service's version.
    #[schema(example = "0.1.0")]
    version: &'static str,
    /// The model being served; null until it is loaded.
    model: Option<ModelSummary<'a>>,
    endpoints: Vec<Endpoint>,
}

/// The model being served.
#[derive(Serialize, ToSchema)]
struct ModelSummary<'a> {
    #[schema(example = "breast-cancer")]
    name: &'a str,
    #[schema(example = "1.0.0")]
    version: &'a str,
    /// How many features a row has.
    features: usize,
    /// The class names, in the model's order.
    classes: &'a [String],
}

/// One endpoint of this service.
#[derive(Serialize, ToSchema)]
struct Endpoint {
    #[schema(example = "POST")]
    method: &'static str,
    #[schema(example = "/predict")]
    path: &'static str,
    description: &'static str,
}

/// Service info: what this service is and what it serves.
#[utoipa::path(
    get,
    path = "/",
    tag = "service",
    responses((status = 200, description = "the service, its model and endpoints", body = ServiceInfo)),
)]
pub(crate) async fn service_info(state: web::Data<AppState>) -> HttpResponse {
    let serving = state.model().ok();
    let model = serving.as_ref().map(|s| {
        let m = &s.model.manifest;
        ModelSummary {
            name: m.name(),
            version: m.version(),
            features: m.features.len(),
            classes: &m.classes,
        }
    });
    let endpoint = |method, path, description| Endpoint {
        method,
        path,
        description,
    };
    HttpResponse::Ok().json(ServiceInfo {
        service: "inference-api",
        version: env!("CARGO_PKG_VERSION"),
        model,
        endpoints: vec![
            endpoint(
                "POST",
                "/predict",
                "predict one row ({\"features\": ...}) or a batch ({\"instances\": [...]})",
            ),
            endpoint(
                "POST",
                "/models/{name}[/versions/{version}]/predict",
                "predict with any model of the repository (a version, if given, must be the one served)",
            ),
            endpoint(
                "POST",
                "/feedback",
                "the true class of a prediction: {\"request_id\", \"row\", \"label\"}",
            ),
            endpoint(
                "GET",
                "/model",
                "the model manifest without training statistics",
            ),
            endpoint(
                "GET",
                "/models",
                "every model version in the model's folder and its state",
            ),
            endpoint("GET", "/health", "liveness"),
            endpoint(
                "GET",
                "/ready",
                "200 once the model is loaded and warmed up",
            ),
            endpoint("GET", "/metrics", "Prometheus metrics (OpenMetrics text)"),
            endpoint("GET", "/openapi.json", "this API's OpenAPI 3.1 document"),
            endpoint(
                "GET",
                "/v2",
                "Open Inference Protocol (V2): server metadata",
            ),
            endpoint("GET", "/v2/health/live", "V2 liveness"),
            endpoint("GET", "/v2/health/ready", "V2 readiness"),
            endpoint(
                "GET",
                "/v2/models/{name}[/versions/{version}]",
                "V2 model metadata",
            ),
            endpoint(
                "GET",
                "/v2/models/{name}[/versions/{version}]/ready",
                "V2 model readiness",
            ),
            endpoint(
                "POST",
                "/v2/models/{name}[/versions/{version}]/infer",
                "V2 inference: JSON or binary tensors",
            ),
        ],
    })
}

/// The manifest of the model bundle without the training statistics (the `GET /model` body).
struct PublicManifest;

impl ToSchema for PublicManifest {}

impl PartialSchema for PublicManifest {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let strings = || ArrayBuilder::new().items(string());
        let object = || ObjectBuilder::new().schema_type(Type::Object);
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "The model bundle's manifest (`model.json`) without \
                 `training.feature_stats`",
            ))
            .property("name", string())
            .property("version", string())
            .property(
                "trained_at",
                string().description(Some("RFC 3339 time of training")),
            )
            .property(
                "features",
                strings().description(Some("the feature names, in the model's order")),
            )
            .property(
                "classes",
                strings().description(Some("the class names, in the model's order")),
            )
            .property("input", object())
            .property("outputs", object())
            .property(
                "validation",
                object().property(
                    "scores",
                    object()
                        .description(Some("held-out scores by metric, e.g. accuracy"))
                        .additional_properties(Some(
                            ObjectBuilder::new().schema_type(Type::Number),
                        )),
                ),
            )
            .property("training", object())
            .required("name")
            .required("version")
            .required("trained_at")
            .required("features")
            .required("classes")
            .required("input")
            .required("outputs")
            .required("validation")
            .required("training")
            .into()
    }
}

/// The model's manifest without the bulky training statistics.
#[utoipa::path(
    get,
    path = "/model",
    tag = "service",
    responses(
        (status = 200, description = "the manifest (all feature names)", body = PublicManifest),
        NotReadyResponse,
    ),
)]
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
