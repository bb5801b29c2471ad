use crate::helpers::{manifest, sample, samples, spawn_app};
use serde_json::json;

#[tokio::test]
async fn metrics_are_openmetrics_and_every_listed_series_is_exposed() {
    let app = spawn_app().await;
    app.post_predict(&json!({"features": samples()[0].0})).await;
    app.post_predict(&json!({"features": [1]})).await;
    let res = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("scrape");
    assert_eq!(
        res.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = res.text().await.expect("body");
    assert!(text.ends_with("# EOF\n"));
    for name in [
        "inference_http_requests_total{",
        "inference_http_request_duration_seconds_bucket{",
        "inference_http_requests_in_flight ",
        "inference_errors_total{",
        "inference_preprocess_duration_seconds_bucket{",
        "inference_model_run_duration_seconds_bucket{",
        "inference_batch_size_bucket{",
        "inference_predictions_total{",
        "inference_prediction_confidence_bucket{",
        "inference_model_info{",
        "inference_model_loaded_timestamp_seconds{",
        "inference_model_trained_timestamp_seconds{",
        "inference_model_validation_score{",
        "inference_build_info{",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_start_time_seconds ",
        "process_open_fds ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing from\n{text}"
        );
    }
    let m = manifest();
    let scores = &m["validation"]["scores"];
    for metric in ["accuracy", "precision", "recall", "f1", "roc_auc"] {
        let series = format!(
            r#"inference_model_validation_score{{model="breast-cancer",metric="{metric}"}}"#
        );
        assert_eq!(sample(&text, &series), scores[metric].as_f64(), "{series}");
    }
    assert_eq!(
        sample(
            &text,
            r#"inference_model_info{model="breast-cancer",version="1.0.0"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"inference_model_trained_timestamp_seconds{model="breast-cancer"}"#
        ),
        Some(1_795_219_200.0)
    );
}

#[tokio::test]
async fn counters_and_histograms_move_with_requests() {
    let app = spawn_app().await;
    let rows = samples();
    let mut predicted = std::collections::HashMap::<String, f64>::new();
    for (values, _) in rows.iter().take(10) {
        let r = app.post_predict(&json!({"features": values})).await;
        *predicted
            .entry(
                r.body["predictions"][0]["label"]
                    .as_str()
                    .expect("label")
                    .to_owned(),
            )
            .or_default() += 1.0;
    }
    let batch: Vec<&Vec<f64>> = rows.iter().skip(10).take(5).map(|(v, _)| v).collect();
    let r = app.post_predict(&json!({"instances": batch})).await;
    for p in r.body["predictions"].as_array().expect("predictions") {
        *predicted
            .entry(p["label"].as_str().expect("label").to_owned())
            .or_default() += 1.0;
    }
    app.post_predict(&json!({"features": "bad"})).await;

    let text = app.metrics().await;
    let m = |s: &str| sample(&text, s);
    assert_eq!(
        m(r#"inference_http_requests_total{route="/predict",method="POST",status="200"}"#),
        Some(11.0)
    );
    assert_eq!(
        m(r#"inference_http_requests_total{route="/predict",method="POST",status="422"}"#),
        Some(1.0)
    );
    assert_eq!(
        m(r#"inference_http_request_duration_seconds_count{route="/predict",method="POST"}"#),
        Some(12.0)
    );
    assert_eq!(
        m(r#"inference_batch_size_count{model="breast-cancer"}"#),
        Some(11.0)
    );
    assert_eq!(
        m(r#"inference_batch_size_sum{model="breast-cancer"}"#),
        Some(15.0)
    );
    assert_eq!(
        m(r#"inference_model_run_duration_seconds_count{model="breast-cancer"}"#),
        Some(11.0)
    );
    assert_eq!(
        m(r#"inference_preprocess_duration_seconds_count{model="breast-cancer"}"#),
        Some(11.0)
    );
    for class in ["malignant", "benign"] {
        let want = predicted.get(class).copied().unwrap_or(0.0);
        assert_eq!(
            m(&format!(
                r#"inference_predictions_total{{model="breast-cancer",class="{class}"}}"#
            )),
            Some(want)
        );
        assert_eq!(
            m(&format!(
                r#"inference_prediction_confidence_count{{model="breast-cancer",class="{class}"}}"#
            )),
            Some(want)
        );
    }
    // The scrape itself is the one request in flight.
    assert_eq!(m("inference_http_requests_in_flight"), Some(1.0));
}

fn series_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit_once(' ').map_or(l, |(s, _)| s).to_owned())
        .collect()
}

#[tokio::test]
async fn a_thousand_random_paths_add_no_series() {
    let app = spawn_app().await;
    app.get("/warm-up-unmatched").await;
    app.metrics().await; // the first scrape creates the /metrics series
    let before = series_lines(&app.metrics().await);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..1000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let r = app.get(&format!("/x{state:x}/{}", state % 977)).await;
        assert_eq!(r.status, 404);
    }
    let text = app.metrics().await;
    let after = series_lines(&text);
    let added: Vec<&String> = after.iter().filter(|s| !before.contains(s)).collect();
    assert!(
        added.is_empty() && before.len() == after.len(),
        "new series: {added:?}"
    );
    assert!(!text.contains("/x"), "a raw path leaked into a label");
    assert_eq!(
        sample(
            &text,
            r#"inference_http_requests_total{route="unmatched",method="GET",status="404"}"#
        ),
        Some(1001.0)
    );
}
