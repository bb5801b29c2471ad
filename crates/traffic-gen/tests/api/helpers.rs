//! Servers to point the generator at, and shortcuts to run it in-process.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use clap::Parser;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use traffic_gen::cli::{Cli, Command, RunArgs};
use traffic_gen::report::Report;

static TRACING: LazyLock<()> = LazyLock::new(|| {
    use metrics_core::telemetry::{get_subscriber, init_subscriber};
    if std::env::var("TEST_LOG").is_ok() {
        init_subscriber(get_subscriber("test", "info", std::io::stdout));
    } else {
        init_subscriber(get_subscriber("test", "info", std::io::sink));
    }
});

/// Rate-sensitive runs take turns inside one test process (`cargo test` runs tests as threads).
pub static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn bundle_dir() -> PathBuf {
    repo_root().join("models/breast-cancer")
}

/// `traffic-gen run --no-progress --bundle <repo bundle> <args>`, parsed.
pub fn run_args(args: &[&str]) -> RunArgs {
    let bundle = bundle_dir();
    let mut argv = vec!["traffic-gen", "run", "--no-progress"];
    // The bundled default model unless the test says where its bundles are.
    if !args.contains(&"--bundle") && !args.contains(&"--models-dir") {
        argv.extend(["--bundle", bundle.to_str().expect("utf-8 path")]);
    }
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).expect("valid arguments").command {
        Command::Run(args) => *args,
        other => panic!("not a run: {other:?}"),
    }
}

/// Runs the generator in-process to the end and returns its report.
pub async fn run_report(args: &[&str]) -> Report {
    LazyLock::force(&TRACING);
    traffic_gen::Runner::build(run_args(args))
        .expect("runner builds")
        .run(CancellationToken::new())
        .await
        .expect("run succeeds")
}

/// Sum of the status-code counts of one kind in a report.
pub fn statuses_of(report: &Report, kind: &str) -> std::collections::BTreeMap<u16, u64> {
    report
        .kinds
        .iter()
        .find(|k| k.kind.as_str() == kind)
        .map(|k| k.status_codes.clone())
        .unwrap_or_default()
}

/// A stand-in for the inference API: the same routes, content-type check, body limit and
/// feature validation, without a model. Optionally slow during a window.
pub struct Stub {
    pub address: String,
    pub predictions: Arc<AtomicU64>,
}

#[derive(Clone, Copy)]
pub struct StubOptions {
    pub max_body_bytes: usize,
    /// Requests arriving from `stall_after` to `stall_after + stall_for` after the first
    /// `/predict` request are each held for `stall_for`.
    pub stall: Option<(Duration, Duration)>,
    /// `GET /ready` answers 503 until this long after the stub started.
    pub ready_after: Duration,
}

impl Default for StubOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            stall: None,
            ready_after: Duration::ZERO,
        }
    }
}

struct StubState {
    options: StubOptions,
    started: Instant,
    first: Mutex<Option<Instant>>,
    predictions: Arc<AtomicU64>,
}

pub async fn spawn_stub(options: StubOptions) -> Stub {
    LazyLock::force(&TRACING);
    let predictions = Arc::new(AtomicU64::new(0));
    let state = web::Data::new(StubState {
        options,
        started: Instant::now(),
        first: Mutex::new(None),
        predictions: predictions.clone(),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(options.max_body_bytes))
            .route("/health", web::get().to(HttpResponse::Ok))
            .route("/ready", web::get().to(stub_ready))
            .route("/predict", web::post().to(stub_predict))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    Stub {
        address: format!("http://127.0.0.1:{port}"),
        predictions,
    }
}

async fn stub_ready(state: web::Data<StubState>) -> HttpResponse {
    if state.started.elapsed() >= state.options.ready_after {
        HttpResponse::Ok().finish()
    } else {
        error(503, "not_ready")
    }
}

fn error(status: u16, code: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("valid status"))
        .json(json!({"error": {"code": code, "message": code}}))
}

fn row_ok(row: &Value) -> Result<(), &'static str> {
    let values: Vec<&Value> = match row {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) => o.values().collect(),
        _ => return Err("invalid_request"),
    };
    if values.len() != 30 {
        return Err("wrong_feature_count");
    }
    if values.iter().any(|v| !v.is_number()) {
        return Err("non_numeric_value");
    }
    Ok(())
}

async fn stub_predict(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<StubState>,
) -> HttpResponse {
    let now = Instant::now();
    let first = *state.first.lock().expect("not poisoned").get_or_insert(now);
    if let Some((after, len)) = state.options.stall {
        let since = now - first;
        if since >= after && since < after + len {
            tokio::time::sleep(len).await;
        }
    }
    let json_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return error(415, "unsupported_media_type");
    }
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "malformed_json");
    };
    let rows: Vec<&Value> = match (doc.get("features"), doc.get("instances")) {
        (Some(row), None) => vec![row],
        (None, Some(Value::Array(rows))) => rows.iter().collect(),
        _ => return error(422, "invalid_request"),
    };
    if let Some(code) = rows.iter().find_map(|r| row_ok(r).err()) {
        return error(422, code);
    }
    state
        .predictions
        .fetch_add(rows.len() as u64, Ordering::Relaxed);
    let predictions: Vec<Value> = rows
        .iter()
        .map(|_| json!({"label": "benign", "class_index": 1, "confidence": 0.9}))
        .collect();
    HttpResponse::Ok().json(json!({"model": "stub", "predictions": predictions}))
}

/// The real inference API with the bundled model, loaded and ready.
pub struct RealApi {
    pub address: String,
}

pub async fn spawn_real_api() -> RealApi {
    LazyLock::force(&TRACING);
    let root = repo_root();
    let mut settings =
        inference_api::configuration::get_configuration().expect("API configuration");
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.server.workers = 2;
    settings.model.repository = root.join("models");
    settings.model.onnxruntime_path = root.join(&settings.model.onnxruntime_path);
    let app = inference_api::startup::Application::build(settings)
        .await
        .expect("the API builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client.get(format!("{address}/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "the API never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    RealApi { address }
}

/// Asserts the report's totals are consistent with each other.
pub fn assert_totals_add_up(r: &Report) {
    assert_eq!(r.completed + r.unfinished, r.sent, "completed + unfinished");
    assert_eq!(r.succeeded + r.errors, r.completed, "succeeded + errors");
    let statuses: u64 = r.status_codes.values().sum();
    let failures: u64 = r.transport_errors.values().sum();
    assert_eq!(statuses + failures, r.completed, "statuses + failures");
    let two_xx: u64 = r
        .status_codes
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(two_xx, r.succeeded, "2xx = succeeded");
    assert_eq!(r.kinds.iter().map(|k| k.sent).sum::<u64>(), r.sent);
    assert_eq!(
        r.kinds.iter().map(|k| k.completed).sum::<u64>(),
        r.completed
    );
    assert_eq!(r.kinds.iter().map(|k| k.errors).sum::<u64>(), r.errors);
    for k in &r.kinds {
        let n: u64 =
            k.status_codes.values().sum::<u64>() + k.transport_errors.values().sum::<u64>();
        assert_eq!(n, k.completed, "{}: statuses + failures", k.kind);
    }
    assert_eq!(r.latency.count, r.completed);
    assert_eq!(r.service_time.count, r.completed);
    assert!(r.latency.max_ms >= r.service_time.max_ms * 0.999);
}
