//! A stalling server shows up as latency and late sends, never as a lower rate.

use crate::helpers::{EXCLUSIVE, StubOptions, assert_totals_add_up, run_report, spawn_stub};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_ms_stall_is_corrected_latency_and_late_sends_not_a_lower_rate() {
    let _turn = EXCLUSIVE.lock().await;
    // One second in, every request arriving during the next 500 ms is held for 500 ms.
    let stub = spawn_stub(StubOptions {
        stall: Some((Duration::from_secs(1), Duration::from_millis(500))),
        ..StubOptions::default()
    })
    .await;

    // 200 req/s needs ~100 requests in flight during the stall; allow only 20.
    let r = run_report(&[
        "--target",
        &stub.address,
        "-s",
        "steady",
        "-r",
        "200",
        "-d",
        "3s",
        "-c",
        "20",
        "--seed",
        "3",
    ])
    .await;

    assert!(r.latency.max_ms >= 500.0, "{:?}", r.latency);
    // ~80 requests fall due while all 20 slots are held (1.1 s to 1.5 s in).
    assert!(r.late_sends >= 60, "late sends: {} {r:#?}", r.late_sends);
    // Requests that waited for a free slot are slow from the client's point of view, though
    // the server answered them at once.
    assert!(r.latency.p90_ms > 100.0, "{:?}", r.latency);
    assert!(r.service_time.p90_ms < 50.0, "{:?}", r.service_time);
    // Nothing was skipped: the schedule caught up (the wall clock may cut off a last send or
    // two on a busy machine).
    assert!((594..=600).contains(&r.sent), "{}", r.sent);
    assert!(
        (r.achieved_rate - 200.0).abs() <= 4.0,
        "{}",
        r.achieved_rate
    );
    assert_eq!(r.errors, 0);
    assert_totals_add_up(&r);
}
