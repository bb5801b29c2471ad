//! Building and running the HTTP application.

use crate::configuration::{ModelSettings, Settings};
use crate::error::ApiError;
use crate::metrics::{ErrorKind, InferenceMetrics, LoadOutcome};
use crate::model::coalesce::Coalescer;
use crate::model::{load_bundle, loader};
use crate::openapi::{self, RenderedDocument, openapi_json};
use crate::routes::models::{ModelView, ModelsView, VersionState};
use crate::routes::{self, v2};
use crate::state::{AppState, WorkerIndex};
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, FromRequest, Handler, HttpServer, Responder, Route, web};
use metrics_core::exposition::metrics_endpoint;
use metrics_core::http::{ObserveHttp, route_template};
use model_bundle::repository::{Fingerprint, ModelVersions, model_versions};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A bound, not yet running application. `port()` is the real port (tests bind port 0).
pub struct Application {
    port: u16,
    server: Server,
    loader: ModelLoader,
}

/// Loads the newest version of the configured model in the background, publishes it to the
/// running server, and then keeps looking for a newer one (`model.poll_interval_seconds`).
#[derive(Clone)]
pub struct ModelLoader {
    state: web::Data<AppState>,
    settings: ModelSettings,
    workers: usize,
    watch: Arc<Mutex<Watched>>,
}

/// What the loader has seen in the model's folder.
#[derive(Default)]
struct Watched {
    /// The version served, as its files were when it was loaded.
    served: Option<(PathBuf, Fingerprint)>,
    /// The versions refused, as their files were, and why: not tried again until they change.
    refused: HashMap<PathBuf, (Fingerprint, String)>,
    /// The problems last logged with the folder's versions: each is logged once, not every poll.
    reported: Vec<String>,
}

impl ModelLoader {
    /// Loads, warms up and publishes the newest version (unless it is served already); `/ready`
    /// answers 200 afterwards.
    pub async fn load(&self) -> anyhow::Result<()> {
        self.check().await.map(|_| ())
    }

    /// Looks at the model's folder every `model.poll_interval_seconds` and serves the newest
    /// version whenever it is new or changed. Never returns (unless polling is off).
    pub async fn watch(&self) {
        let Some(every) = self.settings.poll_interval() else {
            return;
        };
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            // Errors are logged and counted by `check`; the version serving keeps serving.
            let _ = self.check().await;
        }
    }

    /// Loads the newest version if it is not the one served (nor one already refused as it is).
    /// `Ok(Some(version))` when it loaded one, `Ok(None)` when there was nothing new, `Err` when
    /// there is no version or the newest was refused.
    async fn check(&self) -> anyhow::Result<Option<String>> {
        let dir = self.settings.bundle_dir.clone();
        let found =
            tokio::task::spawn_blocking(move || model_versions(&dir, loader::MAX_MANIFEST_BYTES))
                .await?;
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                self.report(vec![e.clone()]);
                anyhow::bail!(e);
            }
        };
        let mut problems: Vec<String> = found.bad.iter().map(|b| b.reason.clone()).collect();
        let Some(latest) = found.latest().cloned() else {
            problems.push(format!(
                "{}: no model version (no model.json in it or in a sub-folder)",
                self.settings.bundle_dir.display()
            ));
            let e = problems.join("; ");
            self.report(problems);
            anyhow::bail!(e);
        };
        self.report(problems);
        let seen = Some((latest.dir.clone(), latest.fingerprint));
        let (served, refused) = {
            let mut watched = self.watched();
            // Forget refusals of versions that are gone.
            watched
                .refused
                .retain(|dir, _| found.versions.iter().any(|v| &v.dir == dir));
            let refused = watched
                .refused
                .get(&latest.dir)
                .is_some_and(|(f, _)| *f == latest.fingerprint);
            (watched.served == seen, refused)
        };
        self.show(&found, (!served && !refused).then_some(&latest.dir));
        if served {
            return Ok(None);
        }
        if refused {
            anyhow::bail!("{} was refused", latest.dir.display());
        }
        let (settings, workers, dir) = (self.settings.clone(), self.workers, latest.dir.clone());
        let started = std::time::Instant::now();
        let loaded =
            tokio::task::spawn_blocking(move || load_bundle(&settings, &dir, workers)).await?;
        let model = match loaded {
            Ok(model) => model,
            Err(e) => {
                self.state
                    .metrics
                    .count_load(&found.model, LoadOutcome::Failed);
                tracing::error!(
                    model = %found.model,
                    model_version = %latest.version,
                    bundle_dir = %latest.dir.display(),
                    error.message = %format!("{e:#}"),
                    "model version refused; the version already serving keeps serving"
                );
                self.watched()
                    .refused
                    .insert(latest.dir.clone(), (latest.fingerprint, format!("{e:#}")));
                self.show(&found, None);
                return Err(e);
            }
        };
        let (ort_version, ort_build) = loader::runtime_description(&self.settings);
        let (name, version, sessions) = (
            model.manifest.name().to_string(),
            model.manifest.version().to_string(),
            model.sessions(),
        );
        // Published before it is logged: whoever reads "model loaded" can predict at once.
        let replaced = self.state.publish(model);
        self.state.metrics.count_load(&name, LoadOutcome::Loaded);
        self.watched().served = seen;
        self.show(&found, None);
        tracing::info!(
            model = %name,
            model_version = %version,
            replaced_version = replaced.as_ref().map(|r| r.model.manifest.version()),
            sessions,
            load_seconds = started.elapsed().as_secs_f64(),
            onnxruntime_version = %ort_version,
            onnxruntime_build = %ort_build,
            bundle_dir = %latest.dir.display(),
            "model loaded"
        );
        Ok(Some(version))
    }

    /// Updates `GET /models` from a scan of the folder; `loading` is the version being loaded.
    fn show(&self, found: &ModelVersions, loading: Option<&PathBuf>) {
        let watched = self.watched();
        let view = ModelView::new(&self.settings.bundle_dir, found, |v| {
            let at = Some((v.dir.clone(), v.fingerprint));
            match watched.refused.get(&v.dir) {
                Some((f, why)) if *f == v.fingerprint => (VersionState::Failed, Some(why.clone())),
                _ if watched.served == at => (VersionState::Ready, None),
                _ if loading == Some(&v.dir) => (VersionState::Loading, None),
                _ => (VersionState::Available, None),
            }
        });
        drop(watched);
        self.state
            .set_models_view(ModelsView { models: vec![view] });
    }

    /// Logs the folder's problems when they differ from those logged last.
    fn report(&self, problems: Vec<String>) {
        let mut watched = self.watched();
        if watched.reported != problems {
            for problem in &problems {
                tracing::error!(
                    model_dir = %self.settings.bundle_dir.display(),
                    error.message = %problem,
                    "model version unusable"
                );
            }
            watched.reported = problems;
        }
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.watch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes an already loaded model (tests publish models with fake engines).
    pub fn publish(&self, model: crate::model::LoadedModel) {
        self.state.publish(model);
    }
}

impl Application {
    /// Checks the ONNX Runtime library is there, registers metrics and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        loader::check_runtime(&settings.model)?;
        let mut registry = Registry::default();
        let metrics = InferenceMetrics::register(&mut registry, &settings.metrics);
        let workers = settings.server.worker_count();
        let state = web::Data::new(AppState::new(
            metrics,
            settings.limits.clone(),
            settings.quality.clone(),
            settings.testing.clone(),
            settings.feedback.clone(),
            workers,
        ));
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
        let loader = ModelLoader {
            state,
            settings: settings.model.clone(),
            workers,
            watch: Arc::default(),
        };
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
