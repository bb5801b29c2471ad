//! The open loop holds its rate, and the request mix follows the weights.

use crate::helpers::{
    EXCLUSIVE, StubOptions, assert_totals_add_up, run_report, spawn_real_api, spawn_stub,
    statuses_of,
};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use traffic_gen::plan::RequestKind;
use traffic_gen::scenario::{Builtin, Params, builtin};

fn assert_within(actual: f64, target: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - target).abs() <= target * tolerance,
        "{what}: {actual} is not within {}% of {target}",
        tolerance * 100.0
    );
}

/// Runs `steady` at 1,000 req/s for 5 s against `address` and checks the rate was held and every
/// request answered 200.
async fn holds_1000_per_second(address: &str, seed: &str) -> traffic_gen::report::Report {
    let r = run_report(&[
        "--target", address, "-s", "steady", "-r", "1000", "-d", "5s", "-c", "64", "--seed", seed,
    ])
    .await;
    assert_within(r.target_rate, 1000.0, 0.001, "target rate");
    assert_within(r.achieved_rate, 1000.0, 0.02, "achieved rate");
    assert_within(r.sent as f64, 5000.0, 0.02, "requests sent");
    assert_eq!((r.errors, r.unfinished), (0, 0), "{r:?}");
    assert_eq!(statuses_of(&r, "single"), BTreeMap::from([(200, r.sent)]));
    assert_totals_add_up(&r);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_1000_requests_per_second_for_5_seconds_against_a_stub() {
    let _turn = EXCLUSIVE.lock().await;
    let stub = spawn_stub(StubOptions::default()).await;
    let r = holds_1000_per_second(&stub.address, "1").await;
    // The server saw every request the report counts.
    assert_eq!(stub.predictions.load(Ordering::Relaxed), r.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_1000_requests_per_second_for_5_seconds_against_the_real_api() {
    let _turn = EXCLUSIVE.lock().await;
    let api = spawn_real_api().await;
    holds_1000_per_second(&api.address, "2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_kinds_follow_the_weights_and_a_seed_repeats_the_sequence() {
    let _turn = EXCLUSIVE.lock().await;
    // A small body limit keeps the oversized requests small.
    let stub = spawn_stub(StubOptions {
        max_body_bytes: 64 * 1024,
        ..StubOptions::default()
    })
    .await;
    let args = [
        "--target",
        &stub.address,
        "-s",
        "errors",
        "--bad-share",
        "0.5",
        "-r",
        "4000",
        "-n",
        "4000",
        "--seed",
        "42",
        "--oversized-bytes",
        "70000",
        "-c",
        "64",
    ];

    let first = run_report(&args).await;
    let second = run_report(&args).await;

    let weights = builtin(
        Builtin::Errors,
        &Params {
            bad_share: 0.5,
            ..Params::default()
        },
    )
    .phases[0]
        .weights
        .clone();
    assert_eq!(first.sent, 4000);
    for kind in RequestKind::ALL {
        let sent = first
            .kinds
            .iter()
            .find(|k| k.kind == kind)
            .map_or(0, |k| k.sent);
        let share = sent as f64 / 4000.0;
        // The binomial standard deviation is at most 0.008 here; allow about 3 of them.
        assert!(
            (share - weights.share(kind)).abs() < 0.025,
            "{kind}: {share} vs {}",
            weights.share(kind)
        );
    }
    let by_kind = |r: &traffic_gen::report::Report| {
        r.kinds.iter().map(|k| (k.kind, k.sent)).collect::<Vec<_>>()
    };
    assert_eq!(by_kind(&first), by_kind(&second));
    // The stub validates like the API: each kind gets its own status, and nothing else.
    for k in &first.kinds {
        assert_eq!(
            k.status_codes,
            BTreeMap::from([(k.kind.expected_status(), k.completed)]),
            "{}",
            k.kind
        );
    }
    assert_totals_add_up(&first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_rate_is_bounded_by_the_duration_and_shows_as_late_sends() {
    let _turn = EXCLUSIVE.lock().await;
    let stub = spawn_stub(StubOptions::default()).await;
    let started = std::time::Instant::now();

    let r = run_report(&[
        "--target",
        &stub.address,
        "-s",
        "steady",
        "-r",
        "10000000",
        "-d",
        "1s",
        "-c",
        "4",
    ])
    .await;

    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(r.stopped_by, traffic_gen::report::StopReason::Duration);
    assert!(
        (r.duration_seconds - 1.0).abs() < 0.1,
        "{}",
        r.duration_seconds
    );
    assert_within(r.target_rate, 10_000_000.0, 0.001, "target rate");
    assert!(r.achieved_rate < 1_000_000.0, "{}", r.achieved_rate);
    // Four slots for a firehose: after the first millisecond, every send is behind schedule
    // because of the ceiling, whether it waited for a slot itself or behind one that did.
    assert!(
        r.late_sends * 100 >= r.sent * 99,
        "{} late of {}",
        r.late_sends,
        r.sent
    );
    assert_eq!(r.errors, 0);
    assert_totals_add_up(&r);
}
