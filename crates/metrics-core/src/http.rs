//! HTTP request metrics, request ids and the access log, as one actix-web middleware.
//!
//! Every request is counted by **route template** (`/predict`, never a raw path; anything the
//! router did not match is `route="unmatched"`), so no request can create a new series. The same
//! middleware gives each request an id (an incoming `X-Request-Id` if it is sane, else a new UUID),
//! returns it in the `X-Request-Id` response header, serves the request inside a span carrying
//! `request_id`, `method` and `route` (so every line logged meanwhile has them), and writes at most
//! one access line when the request ends, as [`AccessLog`] says. Handlers add their own fields to
//! that line through [`LogFields`].

use crate::buckets::{Buckets, HistogramFamily};
use crate::labels::Method;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{LocalBoxFuture, Ready, ready};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// The route label of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";
const MAX_REQUEST_ID_LEN: usize = 128;

/// The name of the span every request is served in (bunyan lines inside it start with
/// `[HTTP REQUEST - EVENT]`).
pub const REQUEST_SPAN: &str = "HTTP request";
/// Its level; the log filter keeps it whatever the configured level (see [`is_request_span`]).
pub const REQUEST_SPAN_LEVEL: tracing::Level = tracing::Level::INFO;

/// Whether `meta` is the request span (the log filter always enables it).
pub fn is_request_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span() && meta.name() == REQUEST_SPAN && meta.target() == module_path!()
}

/// Which requests get an access-log line (`log.access`, `APP_LOG__ACCESS`). Whatever it says,
/// every request is counted in the metrics and served in its span, so lines logged while serving
/// it (errors included) still carry its `request_id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLog {
    /// One line per request.
    #[default]
    All,
    /// Only requests answered with a status of 400 or more.
    Errors,
    /// None.
    Off,
}

impl AccessLog {
    /// Whether a request answered with `status` gets an access line.
    pub fn logs(self, status: u16) -> bool {
        match self {
            Self::All => true,
            Self::Errors => status >= 400,
            Self::Off => false,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: Arc<str>,
    pub method: Method,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: Arc<str>,
    pub method: Method,
}

/// `<prefix>_http_requests_total`, `<prefix>_http_request_duration_seconds`,
/// `<prefix>_http_requests_in_flight`.
/// Requests refused by actix-http's own HTTP/1 parser, counted by the telemetry layer (they never
/// reach the middleware). One per process, registered by every [`HttpMetrics`].
pub static PROTOCOL_ERRORS: std::sync::LazyLock<Counter> =
    std::sync::LazyLock::new(Counter::default);

#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily<RouteLabels>,
    in_flight: Gauge,
}

impl HttpMetrics {
    /// Registers the HTTP metrics in `registry` (give it a prefixed sub-registry).
    pub fn new(registry: &mut Registry, latency_buckets: &[f64]) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Buckets::new(latency_buckets).family(),
            in_flight: Gauge::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from receiving a request to having its response ready, by route template",
            Unit::Seconds,
            metrics.duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being processed right now",
            metrics.in_flight.clone(),
        );
        registry.register(
            "http_protocol_errors",
            "Requests refused by the HTTP/1 parser (bad Content-Length, oversize head, ...): answered 400 or 431 before routing, so not in http_requests_total",
            PROTOCOL_ERRORS.clone(),
        );
        metrics
    }

    fn observe(&self, route: Arc<str>, method: Method, status: u16, seconds: f64) {
        self.duration
            .get_or_create(&RouteLabels {
                route: route.clone(),
                method,
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
    }
}

/// The route template that matches `req`'s path (`/items/{id}`), or [`UNMATCHED_ROUTE`].
/// Works before and after routing, so middleware and handlers agree on the label. Matched on the
/// path the router sees (percent-encoded unreserved characters decoded: `/%70redict` is
/// `/predict`), so a request is counted under the route that served it.
pub fn route_template(req: &HttpRequest) -> Arc<str> {
    match req.resource_map().match_pattern(req.match_info().as_str()) {
        Some(p) => Arc::from(p),
        None => Arc::from(UNMATCHED_ROUTE),
    }
}

/// The id of the current request; extract it in a handler (`id: RequestId`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_header(value: Option<&HeaderValue>) -> Self {
        let incoming = value
            .and_then(|v| v.to_str().ok())
            .filter(|s| is_sane_request_id(s));
        match incoming {
            Some(s) => RequestId(Arc::from(s)),
            None => RequestId(Arc::from(uuid::Uuid::new_v4().simple().to_string())),
        }
    }
}

fn is_sane_request_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_REQUEST_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

impl FromRequest for RequestId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let id = req.extensions().get::<RequestId>().cloned();
        // Without the middleware there is no id yet: make one rather than fail the request.
        ready(Ok(id.unwrap_or_else(|| RequestId::from_header(None))))
    }
}

/// Extra fields for the access-log line, set by handlers that serve a model:
/// `req.extensions_mut().insert(LogFields { .. })`.
#[derive(Clone, Debug, Default)]
pub struct LogFields {
    pub model: Option<Arc<str>>,
    pub rows: Option<usize>,
}

/// The middleware: `App::new().wrap(ObserveHttp::new(metrics).access_log(AccessLog::All))`.
#[derive(Clone)]
pub struct ObserveHttp {
    metrics: Rc<HttpMetrics>,
    access: AccessLog,
}

impl ObserveHttp {
    /// With an access line for every request; see [`Self::access_log`].
    pub fn new(metrics: HttpMetrics) -> Self {
        Self {
            metrics: Rc::new(metrics),
            access: AccessLog::All,
        }
    }

    /// Which requests get an access line.
    pub fn access_log(mut self, access: AccessLog) -> Self {
        self.access = access;
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for ObserveHttp
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = ObserveHttpService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObserveHttpService {
            service: Rc::new(service),
            metrics: self.metrics.clone(),
            access: self.access,
        }))
    }
}

pub struct ObserveHttpService<S> {
    service: Rc<S>,
    metrics: Rc<HttpMetrics>,
    access: AccessLog,
}

/// Decrements the in-flight gauge however the request ends (also when the client goes away).
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl<S, B> Service<ServiceRequest> for ObserveHttpService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let start = Instant::now();
        let metrics = self.metrics.clone();
        metrics.in_flight.inc();
        let in_flight = InFlight(metrics.in_flight.clone());
        let id = RequestId::from_header(req.headers().get(REQUEST_ID_HEADER));
        req.extensions_mut().insert(id.clone());
        let route = route_template(req.request());
        let method = Method::from(req.method());
        let service = self.service.clone();
        let access = self.access;
        let span = tracing::info_span!(
            REQUEST_SPAN,
            request_id = id.as_str(),
            method = method.as_str(),
            route = route.as_ref(),
        );

        let serve = async move {
            let result = service.call(req).await;
            let status = match &result {
                Ok(res) => res.status(),
                Err(e) => e.as_response_error().status_code(),
            };
            let elapsed = start.elapsed().as_secs_f64();
            metrics.observe(route, method, status.as_u16(), elapsed);
            drop(in_flight);

            if access.logs(status.as_u16()) {
                let fields = match &result {
                    Ok(res) => res.request().extensions().get::<LogFields>().cloned(),
                    Err(_) => None,
                }
                .unwrap_or_default();
                // `request_id`, `method` and `route` come from the span.
                tracing::info!(
                    status = status.as_u16(),
                    latency_seconds = elapsed,
                    model = fields.model.as_deref(),
                    rows = fields.rows,
                    "request completed"
                );
            }

            let mut res = result?;
            if let Ok(v) = HeaderValue::from_str(&id.0) {
                res.headers_mut().insert(REQUEST_ID_HEADER, v);
            }
            Ok(res)
        };
        Box::pin(serve.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{CapturedLines, get_subscriber};
    use actix_web::{App, HttpResponse, test as atest, web};
    use serde_json::Value;

    #[test]
    fn request_ids_are_accepted_only_when_sane() {
        assert!(is_sane_request_id("abc-123_x.y:z"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id("has space"));
        assert!(!is_sane_request_id(&"a".repeat(MAX_REQUEST_ID_LEN + 1)));
    }

    #[actix_web::test]
    async fn counts_by_route_template_and_echoes_the_request_id() {
        let mut registry = Registry::default();
        let metrics = HttpMetrics::new(&mut registry, crate::buckets::HTTP_LATENCY_SECONDS);
        let app = atest::init_service(App::new().wrap(ObserveHttp::new(metrics)).route(
            "/items/{id}",
            web::get().to(|id: RequestId| async move { HttpResponse::Ok().body(id.0.to_string()) }),
        ))
        .await;

        let req = atest::TestRequest::get()
            .uri("/items/42")
            .insert_header(("x-request-id", "given-1"))
            .to_request();
        let res = atest::call_service(&app, req).await;
        assert_eq!(
            res.headers().get("x-request-id").map(|v| v.to_str().ok()),
            Some(Some("given-1"))
        );
        assert_eq!(atest::read_body(res).await, "given-1");
        // `/%69tems/8` is `/items/8` to the router: served and counted under its template.
        for path in ["/items/7", "/%69tems/8", "/nope/1", "/nope/2"] {
            atest::call_service(&app, atest::TestRequest::get().uri(path).to_request()).await;
        }

        let text = crate::exposition::render(&registry);
        assert!(
            text.contains(
                r#"http_requests_total{route="/items/{id}",method="GET",status="200"} 3"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"http_requests_total{route="unmatched",method="GET",status="404"} 2"#),
            "{text}"
        );
        assert!(text.contains("http_requests_in_flight 0"), "{text}");
        assert!(!text.contains("/nope"), "{text}");
    }

    /// Serves `requests` (path, request id) one after the other with `access`, logging at
    /// `level` into memory, and returns the lines logged.
    async fn lines_logged(
        level: &str,
        access: AccessLog,
        requests: &[(&str, &str)],
    ) -> CapturedLines {
        let captured = CapturedLines::default();
        let _default =
            tracing::subscriber::set_default(get_subscriber("unit", level, captured.clone()));
        let metrics = HttpMetrics::new(
            &mut Registry::default(),
            crate::buckets::HTTP_LATENCY_SECONDS,
        );
        let app = atest::init_service(
            App::new()
                .wrap(ObserveHttp::new(metrics).access_log(access))
                .route("/items/{id}", web::get().to(HttpResponse::Ok))
                .route("/invalid", web::get().to(HttpResponse::UnprocessableEntity))
                .route(
                    "/fail",
                    web::get().to(|| async {
                        tracing::error!(error.message = "engine exploded", "request failed");
                        HttpResponse::InternalServerError().finish()
                    }),
                ),
        )
        .await;
        for (path, id) in requests {
            let req = atest::TestRequest::get()
                .uri(path)
                .insert_header(("x-request-id", *id))
                .to_request();
            let res = atest::call_service(&app, req).await;
            assert_eq!(
                res.headers().get("x-request-id").map(|v| v.as_bytes()),
                Some(id.as_bytes())
            );
        }
        captured
    }

    fn access_lines(lines: &[Value]) -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["msg"] == "[HTTP REQUEST - EVENT] request completed")
            .collect()
    }

    #[actix_web::test]
    async fn every_request_gets_one_access_line_with_its_id_method_route_and_status() {
        let logs = lines_logged(
            "info",
            AccessLog::All,
            &[("/items/7", "a-1"), ("/nope/1", "a-2"), ("/invalid", "a-3")],
        )
        .await;
        let all = logs.lines();
        assert_eq!(access_lines(&all).len(), 3, "{all:#?}");
        for (id, route, status) in [
            ("a-1", "/items/{id}", 200),
            ("a-2", "unmatched", 404),
            ("a-3", "/invalid", 422),
        ] {
            let lines = logs.of_request(id);
            assert_eq!(lines.len(), 1, "{lines:#?}");
            let l = &lines[0];
            assert_eq!(l["msg"], "[HTTP REQUEST - EVENT] request completed");
            assert_eq!(l["method"], "GET");
            assert_eq!(l["route"], route);
            assert_eq!(l["status"], status);
            assert_eq!(l["level"], 30);
            assert!(
                l["latency_seconds"].as_f64().is_some_and(|s| s >= 0.0),
                "{l}"
            );
        }
    }

    #[actix_web::test]
    async fn an_error_logged_while_serving_a_request_carries_its_request_id() {
        let logs = lines_logged(
            "info",
            AccessLog::All,
            &[("/fail", "f-1"), ("/items/1", "f-2")],
        )
        .await;
        let lines = logs.of_request("f-1");
        assert_eq!(lines.len(), 2, "the error and the access line: {lines:#?}");
        let (error, access) = (&lines[0], &lines[1]);
        assert_eq!(error["msg"], "[HTTP REQUEST - EVENT] request failed");
        assert_eq!(error["level"], 50);
        assert_eq!(error["error.message"], "engine exploded");
        assert_eq!(
            (&error["method"], &error["route"]),
            (&Value::from("GET"), &Value::from("/fail"))
        );
        // Not an access line: readers of the access log select lines with a status.
        assert!(error.get("status").is_none(), "{error}");
        assert_eq!(access["status"], 500);
        assert_eq!(logs.of_request("f-2").len(), 1);
    }

    #[actix_web::test]
    async fn access_errors_logs_only_responses_of_400_and_above() {
        let logs = lines_logged(
            "info",
            AccessLog::Errors,
            &[
                ("/items/1", "e-1"),
                ("/invalid", "e-2"),
                ("/nope", "e-3"),
                ("/fail", "e-4"),
            ],
        )
        .await;
        assert!(logs.of_request("e-1").is_empty(), "{:#?}", logs.lines());
        let all = logs.lines();
        let statuses: Vec<_> = access_lines(&all)
            .iter()
            .map(|l| l["status"].clone())
            .collect();
        assert_eq!(statuses, [422, 404, 500]);
        assert_eq!(
            logs.of_request("e-4").len(),
            2,
            "the error and the access line"
        );
    }

    #[actix_web::test]
    async fn access_off_logs_no_access_line_and_errors_still_carry_the_request_id() {
        let logs = lines_logged(
            "info",
            AccessLog::Off,
            &[("/items/1", "o-1"), ("/nope", "o-2"), ("/fail", "o-3")],
        )
        .await;
        let all = logs.lines();
        assert!(access_lines(&all).is_empty(), "{all:#?}");
        assert_eq!(all.len(), 1, "{all:#?}");
        assert_eq!(all[0]["msg"], "[HTTP REQUEST - EVENT] request failed");
        assert_eq!(all[0]["request_id"], "o-3");
        assert_eq!(all[0]["route"], "/fail");
    }

    #[actix_web::test]
    async fn errors_carry_the_request_id_also_when_info_is_filtered_out() {
        let logs = lines_logged(
            "warn",
            AccessLog::All,
            &[("/items/1", "w-1"), ("/fail", "w-2")],
        )
        .await;
        let all = logs.lines();
        assert_eq!(all.len(), 1, "access lines are at INFO: {all:#?}");
        assert_eq!(all[0]["request_id"], "w-2");
        assert_eq!(all[0]["level"], 50);
    }

    #[test]
    fn access_log_settings_parse_from_yaml_with_all_as_the_default() {
        let parse = |yaml: &str| -> crate::telemetry::LogSettings {
            config::Config::builder()
                .add_source(config::File::from_str(yaml, config::FileFormat::Yaml))
                .build()
                .and_then(|c| c.try_deserialize())
                .unwrap_or_else(|e| panic!("{yaml}: {e}"))
        };
        assert_eq!(parse("level: info").access, AccessLog::All);
        assert_eq!(parse("level: info\naccess: all").access, AccessLog::All);
        assert_eq!(
            parse("level: info\naccess: errors").access,
            AccessLog::Errors
        );
        // `off` is a string in YAML 1.2, not the boolean it was in YAML 1.1.
        assert_eq!(parse("level: info\naccess: off").access, AccessLog::Off);
        assert!(
            config::Config::builder()
                .add_source(config::File::from_str(
                    "level: info\naccess: some",
                    config::FileFormat::Yaml
                ))
                .build()
                .and_then(|c| c.try_deserialize::<crate::telemetry::LogSettings>())
                .is_err()
        );
    }
}
