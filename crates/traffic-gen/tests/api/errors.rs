//! Against the real API: every kind of bad request gets the status the API promises, and the
//! API's own request counter agrees with the report.

use crate::helpers::{EXCLUSIVE, assert_totals_add_up, run_report, spawn_real_api};
use std::collections::BTreeMap;
use traffic_gen::plan::RequestKind;
use traffic_gen::report::Report;

/// Asserts the API's `inference_http_requests_total` for `POST /predict` has each status count
/// of `report` (the API is fresh, so they are the report's requests).
async fn assert_api_counted(address: &str, report: &Report) {
    let metrics = reqwest::get(format!("{address}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    for (status, count) in &report.status_codes {
        let series = format!(
            "inference_http_requests_total{{route=\"/predict\",method=\"POST\",status=\"{status}\"}} {count}\n"
        );
        assert!(metrics.contains(&series), "missing {series} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_errors_kind_gets_the_status_the_api_promises() {
    let _turn = EXCLUSIVE.lock().await;
    let api = spawn_real_api().await;

    let r = run_report(&[
        "--target",
        &api.address,
        "-s",
        "errors",
        "--bad-share",
        "0.8",
        "-r",
        "200",
        "-n",
        "600",
        "--seed",
        "9",
        "-c",
        "32",
    ])
    .await;

    let kinds: Vec<RequestKind> = r.kinds.iter().map(|k| k.kind).collect();
    let mut want = vec![RequestKind::Single];
    want.extend(RequestKind::BAD);
    assert_eq!(kinds, want);
    for k in &r.kinds {
        assert!(
            k.transport_errors.is_empty(),
            "{}: {:?}",
            k.kind,
            r.transport_error_examples
        );
        assert_eq!(
            k.status_codes,
            BTreeMap::from([(k.kind.expected_status(), k.completed)]),
            "{}",
            k.kind
        );
    }
    assert_totals_add_up(&r);

    assert_api_counted(&api.address, &r).await;
}

/// The API refuses an oversized body from its `Content-Length`, answering 413 before it has read
/// the body; at 16 MiB the body is still going out when the answer arrives (it is far more than
/// the socket buffers hold). Every one must be recorded as that 413, none as a broken pipe or a
/// reset, with several in flight at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_recorded_as_the_413_the_api_answers_before_reading_them() {
    let _turn = EXCLUSIVE.lock().await;
    let api = spawn_real_api().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("oversized.yaml");
    std::fs::write(
        &scenario,
        "name: oversized\nphases:\n  - {name: refused, duration: 1m, rate: 40, weights: {oversized: 1}}\n",
    )
    .expect("scenario written");

    let r = run_report(&[
        "--target",
        &api.address,
        "-s",
        scenario.to_str().expect("utf-8 path"),
        "--oversized-bytes",
        &(16 * 1024 * 1024).to_string(),
        "-n",
        "80",
        "-c",
        "8",
        "--seed",
        "13",
    ])
    .await;

    assert_eq!(
        (r.sent, r.completed, r.errors),
        (80, 80, 80),
        "{:?}",
        r.transport_error_examples
    );
    assert_eq!(r.status_codes, BTreeMap::from([(413, 80)]));
    assert!(
        r.transport_errors.is_empty(),
        "{:?}",
        r.transport_error_examples
    );
    assert_totals_add_up(&r);
    assert_api_counted(&api.address, &r).await;
}
