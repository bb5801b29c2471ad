//! The optional metrics server: client-side series while the run is going, matching the report.

use crate::helpers::{StubOptions, run_args, spawn_stub};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_client_metrics_during_the_run_that_match_the_report() {
    let stub = spawn_stub(StubOptions::default()).await;
    let runner = traffic_gen::Runner::build(run_args(&[
        "--target",
        &stub.address,
        "-s",
        "errors",
        "-r",
        "100",
        "-d",
        "2s",
        "--seed",
        "5",
        "--metrics-addr",
        "127.0.0.1:0",
    ]))
    .expect("runner builds");
    let addr = runner.metrics_addr().expect("metrics address");
    let registry = runner.registry();
    let run = tokio::spawn(runner.run(CancellationToken::new()));

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/openmetrics-text")
    );
    let during = response.text().await.expect("body");
    let health = reqwest::get(format!("http://{addr}/health"))
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let probe = tokio::task::spawn_blocking(move || {
        metrics_core::health::probe("127.0.0.1", addr.port(), "/health", Duration::from_secs(2))
    })
    .await
    .expect("joins");
    let report = run.await.expect("joins").expect("run succeeds");

    let single_ok = "traffic_requests_total{kind=\"single\",outcome=\"success\"}";
    assert!(
        value_of(&during, single_ok).is_some_and(|v| v > 0.0),
        "{during}"
    );
    for name in [
        "traffic_build_info{service=\"traffic-gen\"",
        "traffic_target_rate 100",
        "process_cpu_seconds_total",
        "traffic_late_sends_total 0",
    ] {
        assert!(during.contains(name), "missing {name} in\n{during}");
    }
    assert_eq!(probe, Ok(()));

    let after = metrics_core::exposition::render(&registry);
    for k in &report.kinds {
        let mut by_outcome = std::collections::BTreeMap::<&str, u64>::new();
        for (status, n) in &k.status_codes {
            *by_outcome
                .entry(traffic_gen::metrics::Outcome::from_status(*status).as_str())
                .or_default() += n;
        }
        for (outcome, n) in by_outcome {
            let series = format!(
                "traffic_requests_total{{kind=\"{}\",outcome=\"{outcome}\"}}",
                k.kind
            );
            assert_eq!(value_of(&after, &series), Some(n as f64), "{series}");
        }
        let count = format!(
            "traffic_request_duration_seconds_count{{kind=\"{}\"}}",
            k.kind
        );
        assert_eq!(
            value_of(&after, &count),
            Some(k.completed as f64),
            "{count}"
        );
    }
}
