//! The API's OpenAPI 3.1 document, generated from the code: each handler carries its own
//! `#[utoipa::path]` (next to it, in `routes/`) and is listed once in [`ApiDoc`]. Served at
//! `GET /openapi.json`; `inference-api openapi` prints it.
//!
//! Every route the app serves is registered through `startup::api_routes`, and a test compares
//! that table with the document both ways (`tests::coverage`): a route added without its
//! description fails the tests.

use crate::error::{ErrorBody, V2ErrorBody, error_responses};
use crate::routes;
use actix_web::{HttpResponse, web};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

const DESCRIPTION: &str = "Serves one ONNX classifier over HTTP.\n\n\
Every error answers `{\"error\": {\"code\", \"message\"}}` (the `ErrorBody` schema); besides the \
statuses listed per operation, any path not described here answers 404 `not_found` and any \
other method on a described path answers 405 `method_not_allowed` (the `NotFound` and \
`MethodNotAllowed` responses).\n\n\
Every request gets an id: an incoming `X-Request-Id` header (1 to 128 of `[A-Za-z0-9-_.:]`) is \
kept, else a UUID is generated; it is returned in the `X-Request-Id` response header and in \
prediction bodies.";

/// The document: every route's description, listed once here.
#[derive(OpenApi)]
#[openapi(
    info(title = "inference-api", description = DESCRIPTION),
    paths(
        routes::predict::predict,
        routes::predict::model_predict,
        routes::predict::version_predict,
        routes::feedback::feedback,
        routes::info::service_info,
        routes::info::model_manifest,
        routes::models::models,
        routes::health::health,
        routes::health::ready,
        metrics_core::exposition::metrics_endpoint,
        openapi_json,
        routes::v2::server_metadata,
        routes::v2::live,
        routes::v2::ready,
        routes::v2::model_metadata,
        routes::v2::model_ready,
        routes::v2::infer,
        routes::v2::version_metadata,
        routes::v2::version_ready,
        routes::v2::version_infer,
    ),
    components(schemas(ErrorBody, V2ErrorBody)),
    modifiers(&RouterErrors),
    tags(
        (name = "predict", description = "Predictions"),
        (name = "feedback", description = "True classes of earlier predictions, for live accuracy"),
        (name = "service", description = "Health, readiness, metrics and descriptions of the service"),
        (name = "v2", description = "The Open Inference Protocol (KServe V2, REST) with the binary tensor data extension; errors are `{\"error\": \"...\"}` (the `V2ErrorBody` schema)"),
    ),
)]
pub(crate) struct ApiDoc;

/// The router's own errors, which belong to no operation: 404 for an unknown path, 405 for
/// another method on a known one.
struct RouterErrors;

impl Modify for RouterErrors {
    fn modify(&self, doc: &mut Document) {
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        let described = error_responses(&[
            (404, "not_found", "`not_found`: no route has this path"),
            (
                405,
                "method_not_allowed",
                "`method_not_allowed`: the path is served, but not with this method",
            ),
        ]);
        for (status, response) in described {
            let name = if status == "404" {
                "NotFound"
            } else {
                "MethodNotAllowed"
            };
            components.responses.insert(name.into(), response);
        }
    }
}

/// The document as JSON, as `GET /openapi.json` serves it.
pub fn document() -> serde_json::Result<String> {
    ApiDoc::openapi().to_pretty_json()
}

/// The document, rendered once at startup.
pub(crate) struct RenderedDocument(pub(crate) web::Bytes);

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    responses((status = 200, description = "this document", body = serde_json::Value)),
)]
pub(crate) async fn openapi_json(doc: web::Data<RenderedDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::startup::api_routes;
    use actix_web::http::Method;
    use metrics_core::exposition::OPENMETRICS_CONTENT_TYPE;
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// Routes as `METHOD /template`, compared by [`coverage`].
    type RouteSet = BTreeSet<String>;

    /// What the app serves and the document does not describe (`undocumented`), and the reverse
    /// (`unserved`).
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Coverage {
        undocumented: RouteSet,
        unserved: RouteSet,
    }

    /// Compares the served routes, as `(method, path template)`, with the operations of `doc`.
    fn coverage(served: &[(Method, &str)], doc: &Document) -> Coverage {
        let served: RouteSet = served.iter().map(|(m, p)| format!("{m} {p}")).collect();
        let documented = documented_routes(doc);
        Coverage {
            undocumented: served.difference(&documented).cloned().collect(),
            unserved: documented.difference(&served).cloned().collect(),
        }
    }

    /// Every operation of `doc` as `METHOD /template`.
    fn documented_routes(doc: &Document) -> RouteSet {
        let mut routes = RouteSet::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::OPTIONS, &item.options),
                (Method::HEAD, &item.head),
                (Method::PATCH, &item.patch),
                (Method::TRACE, &item.trace),
            ];
            for (method, operation) in operations {
                if operation.is_some() {
                    routes.insert(format!("{method} {path}"));
                }
            }
        }
        routes
    }

    fn document_json() -> Value {
        serde_json::from_str(&document().expect("renders")).expect("JSON")
    }

    #[test]
    fn every_served_route_is_documented_and_every_documented_route_is_served() {
        assert_eq!(
            coverage(&api_routes().served(), &ApiDoc::openapi()),
            Coverage::default()
        );
    }

    #[test]
    fn a_route_missing_from_the_document_is_reported() {
        let served = [
            (Method::POST, "/predict"),
            (Method::DELETE, "/predict"),
            (Method::GET, "/v3/models/{name}"),
        ];
        let found = coverage(&served, &ApiDoc::openapi());
        assert_eq!(
            found.undocumented,
            RouteSet::from(["DELETE /predict".into(), "GET /v3/models/{name}".into()])
        );
        assert!(found.unserved.contains("GET /health"));
        assert!(!found.unserved.contains("POST /predict"));
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let doc = document_json();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "inference-api");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn every_operation_answers_success_and_every_error_has_a_json_schema() {
        let doc = document_json();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let responses = op["responses"].as_object().expect("responses");
                assert!(responses.contains_key("200"), "{method} {path}: no 200");
                for (status, response) in responses.iter().filter(|(s, _)| *s != "200") {
                    let schema = &response["content"]["application/json"]["schema"];
                    assert!(
                        schema.is_object(),
                        "{method} {path} {status}: no JSON body schema"
                    );
                }
            }
        }
    }

    #[test]
    fn error_responses_carry_the_error_body_and_its_code() {
        let doc = document_json();
        let predict = &doc["paths"]["/predict"]["post"]["responses"];
        let statuses: Vec<&str> = predict
            .as_object()
            .expect("responses")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            statuses,
            [
                "200", "400", "408", "413", "415", "422", "429", "500", "503"
            ]
        );
        let not_ready = &predict["503"]["content"]["application/json"];
        assert_eq!(
            not_ready["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        assert_eq!(not_ready["example"]["error"]["code"], "not_ready");
        assert!(predict["503"]["headers"]["Retry-After"].is_object());
        let feedback = &doc["paths"]["/feedback"]["post"]["responses"];
        for status in ["404", "409", "422"] {
            assert_eq!(
                feedback[status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "/feedback {status}"
            );
        }
        let router = &doc["components"]["responses"];
        assert_eq!(
            router["MethodNotAllowed"]["content"]["application/json"]["example"]["error"]["code"],
            "method_not_allowed"
        );
        assert!(router["NotFound"].is_object());
    }

    #[test]
    fn metrics_are_described_with_the_content_type_they_are_served_with() {
        let doc = document_json();
        let content = &doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
        assert!(content.get(OPENMETRICS_CONTENT_TYPE).is_some(), "{content}");
    }
}
