//! The test-only `testing.predict_delay_ms`: what the end-to-end test uses to make /predict slow
//! enough to fire HighLatencyP99, and what it must not cost when it is off (the default).

use crate::helpers::{TestApp, sample, samples, spawn_app, spawn_app_with};
use serde_json::json;
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_millis(300);

/// One valid single-row /predict, checked like any client would, and how long it took.
async fn timed_prediction(app: &TestApp) -> Duration {
    let body = json!({"features": samples()[0].0});
    let started = Instant::now();
    let r = app.post_predict(&body).await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["model"], "breast-cancer");
    assert_eq!(r.body["version"], "1.0.0");
    assert_eq!(r.body["request_id"].as_str(), r.request_id.as_deref());
    let predictions = r.body["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), 1, "{}", r.body);
    let label = predictions[0]["label"].as_str().expect("label");
    assert!(["malignant", "benign"].contains(&label), "{label}");
    took
}

#[tokio::test]
async fn the_test_delay_slows_every_admitted_predict_and_shows_in_its_latency_histogram() {
    let app = spawn_app_with(|s| s.testing.predict_delay_ms = 300).await;

    let took = timed_prediction(&app).await;
    assert!(took >= DELAY, "took {took:?}");

    let text = app.metrics().await;
    let bucket = |le: &str| {
        let series = format!(
            r#"inference_http_request_duration_seconds_bucket{{le="{le}",route="/predict",method="POST"}}"#
        );
        sample(&text, &series).unwrap_or_else(|| panic!("{series} missing from\n{text}"))
    };
    assert_eq!(
        sample(
            &text,
            r#"inference_http_requests_total{route="/predict",method="POST",status="200"}"#
        ),
        Some(1.0)
    );
    let (fast, all) = (bucket("0.25"), bucket("+Inf"));
    assert_eq!(all, 1.0);
    assert!(
        fast < all,
        "le=0.25 holds {fast} of {all} /predict requests"
    );

    // A failed answer after admission waits too, like a slow model would make it.
    let started = Instant::now();
    let r = app.post_predict(&json!({"features": [1]})).await;
    let took = started.elapsed();
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(took >= DELAY, "took {took:?}");
}

#[tokio::test]
async fn without_the_test_delay_a_prediction_is_not_slowed() {
    let app = spawn_app().await;
    let mut fastest = Duration::MAX;
    for _ in 0..5 {
        fastest = fastest.min(timed_prediction(&app).await);
    }
    // Loose on purpose (a loaded 2-core machine): far from the 300 ms the delay test sets.
    assert!(fastest < Duration::from_millis(250), "fastest {fastest:?}");
}
