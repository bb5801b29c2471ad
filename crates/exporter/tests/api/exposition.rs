//! The exposition must parse as OpenMetrics, which is what the exporter serves (and what
//! Prometheus negotiates). `promtool check metrics` only reads the classic text format and
//! rejects OpenMetrics `info` families, so the reference parser of the Python client is used:
//! `python3 -m pip install prometheus-client` (or Debian's python3-prometheus-client).
//! Set EXPORTER_TEST_PYTHON to use another interpreter than `python3`.

use crate::helpers::spawn_app;
use std::io::Write;
use std::process::{Command, Stdio};

const PARSE: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    print(family.name, family.type, len(family.samples))
"#;

fn openmetrics_families(text: &str) -> String {
    let python = std::env::var("EXPORTER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write exposition");
    let out = child.wait_with_output().expect("parser finished");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the OpenMetrics parser is missing: `{python} -m pip install prometheus-client`"
    );
    assert!(
        out.status.success(),
        "invalid OpenMetrics:\n{stderr}\n{text}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_scrape_is_valid_openmetrics() {
    let app = spawn_app().await;
    app.get("/health").await;

    let text = app.metrics_text().await;
    let families = openmetrics_families(&text);

    for expected in [
        "system_memory_total_bytes gauge 1",
        "system_filesystem_avail_bytes gauge 1",
        "system_load1 gauge 1",
        "model_artifact_modified_timestamp_seconds gauge 3",
        "model info 1",
        "model_trained_timestamp_seconds gauge 1",
        "exporter_collector_success gauge 4",
        "exporter_collector_duration_seconds gauge 4",
        "exporter_build info 1",
        "exporter_http_requests counter",
        "process_cpu_seconds counter 1",
    ] {
        assert!(
            families.lines().any(|l| l.starts_with(expected)),
            "missing `{expected}` in\n{families}"
        );
    }
}

#[test]
fn the_parser_rejects_what_prometheus_would_reject() {
    let python = std::env::var("EXPORTER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"# TYPE a gauge\na{x=\"1\" 1\n# EOF\n")
        .expect("write");
    assert!(!child.wait().expect("exit").success());
}
