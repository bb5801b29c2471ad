//! Against the real API: every kind of bad request gets the status the API promises, and the
//! API's own request counter agrees with the report.

use crate::helpers::{EXCLUSIVE, assert_totals_add_up, run_report, spawn_real_api};
use std::collections::BTreeMap;
use traffic_gen::plan::RequestKind;

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

    let metrics = reqwest::get(format!("{}/metrics", api.address))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    for (status, count) in &r.status_codes {
        let series = format!(
            "inference_http_requests_total{{route=\"/predict\",method=\"POST\",status=\"{status}\"}} {count}\n"
        );
        assert!(metrics.contains(&series), "missing {series} in\n{metrics}");
    }
}
