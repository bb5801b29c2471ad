//! Building and running the HTTP application.

use crate::configuration::Settings;
use crate::error::ApiError;
use crate::metrics::{ErrorKind, InferenceMetrics};
use crate::model::coalesce::Coalescer;
use crate::model::loader;
use crate::openapi::{self, RenderedDocument, openapi_json};
pub use crate::reload::ModelLoader;
use crate::routes::{self, v2};
use crate::state::{AppState, WorkerIndex};
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, FromRequest, Handler, HttpServer, Responder, Route, web};
use metrics_core::exposition::metrics_endpoint;
use metrics_core::http::{ObserveHttp, route_template};
use prometheus_client::registry::Registry;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A bound, not yet running application. `port()` is the real port (tests bind port 0).
pub struct Application {
    port: u16,
    server: Server,
    loader: ModelLoader,
}

impl Application {
    /// Checks the ONNX Runtime library is there, registers metrics and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        loader::check_runtime(&settings.model)?;
        let mut registry = Registry::default();
        let metrics = InferenceMetrics::register(&mut registry, &settings.metrics);
        let workers = settings.server.worker_count();
        let state = web::Data::new(AppState::new(&settings, metrics, workers));
        let registry = web::Data::new(registry);
        let document = web::Data::new(RenderedDocument(openapi::document()?.into()));

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {}:{}: {e}",
                    settings.server.host,
                    settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let next_worker = Arc::new(AtomicUsize::new(0));
        let app_state = state.clone();
        let coalesce_rows = settings.model.coalesce_max_rows;
        let access_log = settings.log.access;

        let server = HttpServer::new(move || {
            let worker = WorkerIndex(next_worker.fetch_add(1, Ordering::Relaxed));
            let coalescer = Coalescer::new(worker.0, coalesce_rows);
            App::new()
                .wrap(from_fn(count_errors))
                .wrap(ObserveHttp::new(app_state.metrics.http.clone()).access_log(access_log))
                .app_data(app_state.clone())
                .app_data(registry.clone())
                .app_data(web::Data::new(worker))
                .app_data(web::Data::new(coalescer))
                .app_data(document.clone())
                .configure(|cfg| api_routes().register(cfg))
                .default_service(web::to(routes::not_found))
        })
        .workers(workers)
        .shutdown_timeout(settings.server.shutdown_timeout_seconds)
        .listen(listener)?
        .run();

        tracing::info!(port, workers, "listening");
        if settings.testing.predict_delay_ms > 0 {
            tracing::warn!(
                predict_delay_ms = settings.testing.predict_delay_ms,
                "test-only /predict delay is active: every /predict waits this many extra \
                 milliseconds; never set testing.predict_delay_ms in production"
            );
        }
        let loader = ModelLoader::new(state, settings.model.clone(), workers);
        Ok(Self {
            port,
            server,
            loader,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The loader of this application's model (tests load it explicitly).
    pub fn loader(&self) -> ModelLoader {
        self.loader.clone()
    }

    /// Serves, loads the model and then watches its folder for new versions; returns when the
    /// server stops (SIGTERM/SIGINT), or with the load error after stopping the server if no
    /// version can be loaded at startup.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let loader = self.loader;
        let load = async move {
            let result = loader.load().await;
            if result.is_err() {
                handle.stop(false).await;
                return result;
            }
            loader.watch().await;
            Ok(())
        };
        let server = self.server;
        tokio::pin!(server);
        tokio::select! {
            served = &mut server => Ok(served?),
            loaded = load => {
                // Polling is off (the loader returned at once) or loading failed and stopped it.
                let served = server.await;
                loaded?;
                Ok(served?)
            }
        }
    }

    /// Serves without loading a model: everything that needs it answers 503 until
    /// `loader().load()` is called.
    pub async fn run_without_loading(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Every route the API serves, in one table: the app registers exactly these, and a test
/// compares them with the OpenAPI document (`openapi::tests`). Add a route here, and its
/// handler to `openapi::ApiDoc`.
pub(crate) fn api_routes() -> RouteTable {
    let mut table = RouteTable::default();
    table
        .add(Method::POST, "/predict", routes::predict)
        .add(Method::POST, "/feedback", routes::feedback)
        .add(Method::GET, "/", routes::service_info)
        .add(Method::GET, "/model", routes::model_manifest)
        .add(Method::GET, "/models", routes::models)
        .add(Method::GET, "/health", routes::health)
        .add(Method::GET, "/ready", routes::ready)
        .add(Method::GET, "/metrics", metrics_endpoint)
        .add(Method::GET, "/openapi.json", openapi_json)
        .add(Method::GET, "/v2", v2::server_metadata)
        .add(Method::GET, "/v2/health/live", v2::live)
        .add(Method::GET, "/v2/health/ready", v2::ready)
        // Paths with `{…}` segments are matched by a regex each, tried in this order (by the
        // router and by the route label in metrics): inference first.
        .add(Method::POST, "/v2/models/{name}/infer", v2::infer)
        .add(
            Method::POST,
            "/v2/models/{name}/versions/{version}/infer",
            v2::version_infer,
        )
        .add(
            Method::POST,
            "/models/{name}/predict",
            routes::model_predict,
        )
        .add(
            Method::POST,
            "/models/{name}/versions/{version}/predict",
            routes::version_predict,
        )
        .add(Method::GET, "/v2/models/{name}", v2::model_metadata)
        .add(Method::GET, "/v2/models/{name}/ready", v2::model_ready)
        .add(
            Method::GET,
            "/v2/models/{name}/versions/{version}",
            v2::version_metadata,
        )
        .add(
            Method::GET,
            "/v2/models/{name}/versions/{version}/ready",
            v2::version_ready,
        );
    table
}

/// Routes by path template, in the order they were added (actix matches in that order).
#[derive(Default)]
pub(crate) struct RouteTable {
    resources: Vec<(&'static str, Vec<(Method, Route)>)>,
}

impl RouteTable {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::method(method.clone()).to(handler);
        match self.resources.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push((method, route)),
            None => self.resources.push((path, vec![(method, route)])),
        }
        self
    }

    /// Every route as (method, path template).
    #[cfg(test)]
    pub(crate) fn served(&self) -> Vec<(Method, &'static str)> {
        self.resources
            .iter()
            .flat_map(|(path, routes)| routes.iter().map(|(m, _)| (m.clone(), *path)))
            .collect()
    }

    /// One resource per path; any other method on it answers 405 (in the Open Inference
    /// Protocol's error shape under `/v2`).
    fn register(self, cfg: &mut web::ServiceConfig) {
        for (path, routes) in self.resources {
            let resource = routes
                .into_iter()
                .fold(web::resource(path), |r, (_, route)| r.route(route));
            cfg.service(if path.starts_with("/v2") {
                resource.default_service(web::to(v2::method_not_allowed))
            } else {
                resource.default_service(web::to(method_not_allowed))
            });
        }
    }
}

async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// Counts every error response by route template and kind (the kind comes from `ApiError`).
async fn count_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let res = next.call(req).await?;
    let kind = res.response().extensions().get::<ErrorKind>().copied();
    if let (Some(kind), Some(state)) = (kind, state) {
        state
            .metrics
            .count_error(route_template(res.request()), kind);
    }
    Ok(res)
}
