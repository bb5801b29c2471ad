//! The exposition must parse as OpenMetrics, which is what the exporter serves (and what
//! Prometheus negotiates). `promtool check metrics` only reads the classic text format and
//! rejects OpenMetrics `info` families, so the reference parser of the Python client is used:
//! `prometheus-client` from PyPI in the repository's `.venv` (scripts/setup.sh), else in the
//! `python3` on PATH. EXPORTER_TEST_PYTHON names another interpreter.

use crate::helpers::{repo_root, spawn_app};
use std::io::Write;
use std::process::{Command, Stdio};

const PARSE: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    print(family.name, family.type, len(family.samples))
"#;

fn python() -> String {
    let venv = repo_root().join(".venv/bin/python");
    std::env::var("EXPORTER_TEST_PYTHON").unwrap_or_else(|_| {
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    })
}

/// Runs the reference parser on `text`: `Ok(families)` or `Err(parse error)`.
fn parse_openmetrics(text: &str) -> Result<String, String> {
    let python = python();
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
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the OpenMetrics parser is missing: `{python} -m pip install prometheus-client` \
         (scripts/requirements-dev.txt)"
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(stderr)
    }
}

#[tokio::test]
async fn a_scrape_is_valid_openmetrics() {
    let app = spawn_app().await;
    app.get("/health").await;

    let text = app.metrics_text().await;
    let families =
        parse_openmetrics(&text).unwrap_or_else(|e| panic!("invalid OpenMetrics:\n{e}\n{text}"));

    for expected in [
        "system_memory_total_bytes gauge 1",
        "system_filesystem_avail_bytes gauge 1",
        "system_load1 gauge 1",
        "model_artifact_modified_timestamp_seconds gauge ",
        "model info 1",
        "model_trained_timestamp_seconds gauge 1",
        "model_max_age_seconds gauge 1",
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
    let unclosed_labels = "# TYPE a gauge\na{x=\"1\" 1\n# EOF\n";
    let no_eof = "# TYPE a gauge\na 1\n";

    for text in [unclosed_labels, no_eof] {
        let err = parse_openmetrics(text).expect_err(text);
        assert!(err.contains("Error"), "{err}");
    }
    assert!(parse_openmetrics("# TYPE a gauge\na 1\n# EOF\n").is_ok());
}
