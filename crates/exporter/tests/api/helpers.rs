use exporter::configuration::{Settings, get_configuration};
use exporter::startup::Application;
use metrics_core::telemetry::{get_subscriber, init_subscriber};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

/// Logs go to stdout only with TEST_LOG set (`TEST_LOG=1 cargo test -p exporter | bunyan`).
static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        init_subscriber(get_subscriber("test", "debug", std::io::stdout));
    } else {
        init_subscriber(get_subscriber("test", "debug", std::io::sink));
    }
});

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn bundled_model() -> PathBuf {
    repo_root().join("models/breast-cancer")
}

/// A copy of the bundled model in a temporary directory, to modify or delete.
pub fn copy_of_bundled_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(bundled_model()).expect("models/breast-cancer") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
        }
    }
    dir
}

pub struct TestApp {
    pub port: u16,
    pub address: String,
    client: reqwest::Client,
}

/// The exporter on 127.0.0.1 and a free port, watching the bundled model and `/`.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    LazyLock::force(&TRACING);
    let mut settings = get_configuration().expect("configuration");
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.collectors.model_repositories = Vec::new();
    settings.collectors.model_bundles = vec![bundled_model()];
    customize(&mut settings);
    let app = Application::build(settings).expect("app builds");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        port,
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }

    /// `GET /metrics`, which must answer 200 with OpenMetrics text.
    pub async fn metrics_text(&self) -> String {
        let response = self.get("/metrics").await;
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        response.text().await.expect("body")
    }

    pub async fn scrape(&self) -> Scrape {
        Scrape::parse(&self.metrics_text().await)
    }
}

/// The samples of one scrape: `name{labels}` -> value, labels sorted by name.
#[derive(Debug)]
pub struct Scrape {
    samples: BTreeMap<(String, Vec<(String, String)>), f64>,
}

impl Scrape {
    pub fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().expect("numeric value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect("}"))),
                None => (series, Vec::new()),
            };
            samples.insert((name.to_owned(), labels), value);
        }
        Self { samples }
    }

    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    /// The value, failing the test with the whole scrape when it is missing.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in {:#?}", self.samples.keys()))
    }

    /// How many series named `name` there are.
    pub fn count(&self, name: &str) -> usize {
        self.samples.keys().filter(|(n, _)| n == name).count()
    }

    pub fn collector_success(&self, collector: &str) -> f64 {
        self.get("exporter_collector_success", &[("collector", collector)])
    }
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label=\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => {
                    let (_, c) = chars.next().expect("escaped char");
                    value.push(if c == 'n' { '\n' } else { c });
                }
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_owned(), value));
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels.sort();
    labels
}

/// Waits (bounded) until `check` holds for a scrape, returning that scrape.
pub async fn scrape_until(
    app: &TestApp,
    timeout: Duration,
    check: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let scrape = app.scrape().await;
        if check(&scrape) || std::time::Instant::now() > deadline {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `/proc/meminfo` field in bytes.
pub fn meminfo_bytes(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/meminfo"));
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number of kB");
    kib * 1024.0
}

#[test]
fn scrape_parser_reads_labels_with_escapes() {
    let s = Scrape::parse("a{x=\"1\",y=\"q\\\"u,o=te\"} 2.5\nb 3\n# EOF\n");
    assert_eq!(s.value("a", &[("y", "q\"u,o=te"), ("x", "1")]), Some(2.5));
    assert_eq!(s.value("b", &[]), Some(3.0));
    assert_eq!(s.count("a"), 1);
}
