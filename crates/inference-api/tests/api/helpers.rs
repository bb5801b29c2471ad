use inference_api::configuration::{Settings, get_configuration};
use inference_api::startup::{Application, ModelLoader};
use metrics_core::telemetry::{CapturedLines, get_subscriber, init_subscriber};
use serde_json::Value;
use std::io::{BufRead, BufReader, Lines};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::LazyLock;
use std::time::Duration;

/// Every line logged in this test binary (all its apps share the global subscriber): select a
/// request's lines by its id with `LOGS.of_request(id)`. Also on stdout with TEST_LOG set.
pub static LOGS: LazyLock<CapturedLines> = LazyLock::new(|| {
    let captured = CapturedLines::default();
    if std::env::var("TEST_LOG").is_ok() {
        captured.echoing_to_stdout()
    } else {
        captured
    }
});

static TRACING: LazyLock<()> =
    LazyLock::new(|| init_subscriber(get_subscriber("test", "info", LOGS.clone())));

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn bundle_dir() -> PathBuf {
    repo_root().join("models/breast-cancer")
}

/// The real configuration, isolated: loopback, a free port, absolute paths, two workers.
pub fn test_settings() -> Settings {
    let mut s = get_configuration().expect("configuration");
    s.server.host = "127.0.0.1".into();
    s.server.port = 0;
    s.server.workers = 2;
    s.server.shutdown_timeout_seconds = 1;
    s.model.repository = repo_root().join("models");
    // The configured library path (relative to the repository root), made absolute.
    s.model.onnxruntime_path = repo_root().join(&s.model.onnxruntime_path);
    s
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
}

/// The app with the bundled model loaded and ready.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    let (app, loader) = spawn_unloaded_app_with(change).await;
    loader.load().await.expect("the bundled model loads");
    app
}

/// The app serving, with no model loaded yet; `loader.load()` loads it.
pub async fn spawn_unloaded_app_with(change: impl FnOnce(&mut Settings)) -> (TestApp, ModelLoader) {
    LazyLock::force(&TRACING);
    let mut settings = test_settings();
    change(&mut settings);
    let app = Application::build(settings).await.expect("build");
    let port = app.port();
    let loader = app.loader();
    tokio::spawn(app.run_without_loading());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    (
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client,
        },
        loader,
    )
}

/// A response's status, headers and JSON body.
pub struct Reply {
    pub status: u16,
    pub request_id: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

impl TestApp {
    pub async fn post_predict(&self, body: &Value) -> Reply {
        self.post_raw(body.to_string(), Some("application/json"))
            .await
    }

    pub async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> Reply {
        let mut req = self
            .client
            .post(format!("{}/predict", self.address))
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        reply(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        reply(
            self.client
                .get(format!("{}{path}", self.address))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn metrics(&self) -> String {
        let res = self
            .client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("scrape");
        assert_eq!(res.status().as_u16(), 200);
        res.text().await.expect("body")
    }

    /// The value of the sample written exactly as `series` (`name{labels}`), if exposed.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        sample(&self.metrics().await, series)
    }
}

async fn reply(res: reqwest::Response) -> Reply {
    let status = res.status().as_u16();
    let header = |name| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (request_id, content_type) = (header("x-request-id"), header("content-type"));
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        request_id,
        content_type,
        body,
    }
}

/// The value of `series` in an exposition text.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}

/// The bundled held-out rows: feature values in manifest order and the true class name.
pub fn samples() -> Vec<(Vec<f64>, String)> {
    model_bundle::Bundle::load(&bundle_dir())
        .expect("the bundled model's samples")
        .samples
        .into_iter()
        .map(|s| (s.features, s.label))
        .collect()
}

pub fn manifest() -> Value {
    let text = std::fs::read_to_string(bundle_dir().join("model.json")).expect("model.json");
    serde_json::from_str(&text).expect("json")
}

pub fn feature_names() -> Vec<String> {
    manifest()["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|v| v.as_str().expect("name").to_owned())
        .collect()
}

/// One valid row keyed by feature name.
pub fn named_row(values: &[f64]) -> Value {
    let map: serde_json::Map<String, Value> = feature_names()
        .into_iter()
        .zip(values)
        .map(|(n, v)| (n, Value::from(*v)))
        .collect();
    Value::Object(map)
}

/// The inference-api binary, started from the repository root (where its default settings find
/// the bundled model and the ONNX Runtime library) on a free port with one worker, `env` added,
/// its JSON log lines readable one by one.
pub struct Binary {
    pub child: Child,
    pub logs: Lines<BufReader<ChildStdout>>,
}

impl Binary {
    pub fn spawn(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_inference-api"))
            .env("APP_SERVER__PORT", "0")
            .env("APP_SERVER__WORKERS", "1")
            .envs(env.iter().copied())
            .current_dir(repo_root())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the binary");
        let logs = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, logs }
    }

    /// The next log line whose `msg` is `msg` (the lines before it are skipped).
    pub fn next_log(&mut self, msg: &str) -> Value {
        for line in self.logs.by_ref() {
            let v: Value = serde_json::from_str(&line.expect("line")).expect("every line is JSON");
            if v["msg"] == msg {
                return v;
            }
        }
        panic!("no log line {msg:?}");
    }
}
