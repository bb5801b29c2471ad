//! Drift, data quality and live accuracy, seen through /metrics.

use crate::helpers::{
    bundle_dir, feature_names, manifest, named_row, sample, samples, spawn_app, spawn_app_with,
};
use model_bundle::Bundle;
use model_bundle::Drift;
use serde_json::{Value, json};

/// PSI computed here, independently of the server: bins from the manifest (inclusive upper edges,
/// values above the last edge in the last bin), shares floored at 1e-4 (the documented epsilon).
fn independent_psi(rows: &[Vec<f64>]) -> Vec<f64> {
    let m = manifest();
    let stats = m["training"]["feature_stats"].as_array().expect("stats");
    stats
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let edges: Vec<f32> = s["bin_edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e.as_f64().expect("f") as f32)
                .collect();
            let expected: Vec<f64> = s["bin_fractions"]
                .as_array()
                .expect("fr")
                .iter()
                .map(|e| e.as_f64().expect("f"))
                .collect();
            let mut counts = vec![0usize; edges.len()];
            for r in rows {
                let x = r[j] as f32;
                let bin = edges
                    .iter()
                    .position(|e| *e >= x)
                    .unwrap_or(edges.len() - 1);
                counts[bin] += 1;
            }
            counts
                .iter()
                .zip(&expected)
                .map(|(&c, &e)| {
                    let a = (c as f64 / rows.len() as f64).max(1e-4);
                    let e = e.max(1e-4);
                    (a - e) * (a / e).ln()
                })
                .sum()
        })
        .collect()
}

fn psi_from_metrics(text: &str) -> Vec<f64> {
    feature_names()
        .iter()
        .map(|f| {
            sample(
                text,
                &format!(r#"inference_feature_drift_psi{{model="breast-cancer",feature="{f}"}}"#),
            )
            .unwrap_or_else(|| panic!("no PSI for {f}"))
        })
        .collect()
}

/// `n` held-out rows drawn with replacement by a fixed xorshift sequence.
fn resampled(n: usize, seed: u64) -> Vec<Vec<f64>> {
    let pool = samples();
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            pool[(s % pool.len() as u64) as usize].0.clone()
        })
        .collect()
}

async fn send_batches(app: &crate::helpers::TestApp, rows: &[Vec<f64>]) {
    for chunk in rows.chunks(250) {
        let r = app.post_predict(&json!({"instances": chunk})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[tokio::test]
async fn psi_is_low_for_training_like_rows_and_high_for_the_traffic_generator_drift() {
    let normal_app = spawn_app().await;
    let normal = resampled(1000, 0x2545_f491_4f6c_dd1d);
    send_batches(&normal_app, &normal).await;
    let text = normal_app.metrics().await;
    assert_eq!(
        sample(
            &text,
            r#"inference_drift_window_rows{model="breast-cancer"}"#
        ),
        Some(1000.0)
    );
    let served = psi_from_metrics(&text);
    let expected = independent_psi(&normal);
    for (s, e) in served.iter().zip(&expected) {
        assert!((s - e).abs() < 1e-9, "served {s} vs independent {e}");
    }
    assert!(
        mean(&served) < 0.25,
        "mean PSI of training-like rows: {}",
        mean(&served)
    );

    let drift_app = spawn_app().await;
    let bundle = Bundle::load(&bundle_dir()).expect("bundle");
    let drifted: Vec<Vec<f64>> = normal
        .iter()
        .map(|r| Drift::default().apply(r, &bundle.stats))
        .collect();
    send_batches(&drift_app, &drifted).await;
    let served = psi_from_metrics(&drift_app.metrics().await);
    let expected = independent_psi(&drifted);
    for (s, e) in served.iter().zip(&expected) {
        assert!((s - e).abs() < 1e-9, "served {s} vs independent {e}");
    }
    assert!(
        mean(&served) > 0.25,
        "mean PSI of drifted rows: {}",
        mean(&served)
    );
}

#[tokio::test]
async fn the_window_keeps_only_the_most_recent_rows() {
    let app = spawn_app_with(|s| s.quality.drift_window_rows = 100).await;
    let bundle = Bundle::load(&bundle_dir()).expect("bundle");
    let normal = resampled(100, 7);
    let drifted: Vec<Vec<f64>> = resampled(100, 11)
        .iter()
        .map(|r| Drift::default().apply(r, &bundle.stats))
        .collect();
    send_batches(&app, &drifted).await;
    send_batches(&app, &normal).await;
    let text = app.metrics().await;
    assert_eq!(
        sample(
            &text,
            r#"inference_drift_window_rows{model="breast-cancer"}"#
        ),
        Some(100.0)
    );
    let served = psi_from_metrics(&text);
    for (s, e) in served.iter().zip(independent_psi(&normal)) {
        assert!(
            (s - e).abs() < 1e-9,
            "the drifted rows should have left the window: {s} vs {e}"
        );
    }
}

#[tokio::test]
async fn out_of_range_and_missing_values_are_counted_per_feature() {
    let app = spawn_app().await;
    let names = feature_names();
    let m = manifest();
    let max0 = m["training"]["feature_stats"][0]["max"]
        .as_f64()
        .expect("max");
    let min3 = m["training"]["feature_stats"][3]["min"]
        .as_f64()
        .expect("min");
    let mut rows = Vec::new();
    for i in 0..5 {
        let mut r = samples()[i].0.clone();
        r[0] = max0 * 2.0;
        if i < 2 {
            r[3] = min3 - 1.0;
        }
        rows.push(r);
    }
    assert_eq!(
        app.post_predict(&json!({"instances": rows})).await.status,
        200
    );

    let mut missing = named_row(&samples()[0].0);
    missing[&names[7]] = Value::Null;
    missing.as_object_mut().expect("object").remove(&names[9]);
    let r = app.post_predict(&json!({"features": missing})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error"]["code"], "missing_feature");
    let msg = r.body["error"]["message"].as_str().expect("message");
    assert!(msg.contains(&names[7]) && msg.contains(&names[9]), "{msg}");

    let text = app.metrics().await;
    let counter = |metric: &str, f: &str| {
        sample(
            &text,
            &format!(r#"inference_{metric}_total{{model="breast-cancer",feature="{f}"}}"#),
        )
    };
    assert_eq!(counter("feature_out_of_range", &names[0]), Some(5.0));
    assert_eq!(counter("feature_out_of_range", &names[3]), Some(2.0));
    assert_eq!(counter("feature_out_of_range", &names[1]), Some(0.0));
    assert_eq!(counter("feature_missing", &names[7]), Some(1.0));
    assert_eq!(counter("feature_missing", &names[9]), Some(1.0));
    assert_eq!(counter("feature_missing", &names[8]), Some(0.0));
}

#[tokio::test]
async fn the_impute_policy_uses_the_training_mean_and_counts_it() {
    let app = spawn_app_with(|s| {
        s.quality.missing_values = inference_api::model::features::MissingPolicy::Impute;
    })
    .await;
    let names = feature_names();
    let m = manifest();
    let means: Vec<f64> = m["training"]["feature_stats"]
        .as_array()
        .expect("stats")
        .iter()
        .map(|s| s["mean"].as_f64().expect("mean"))
        .collect();
    let mut row = named_row(&samples()[0].0);
    row[&names[2]] = Value::Null;
    let imputed = app.post_predict(&json!({"features": row})).await;
    assert_eq!(imputed.status, 200, "{}", imputed.body);
    let mut explicit = samples()[0].0.clone();
    explicit[2] = means[2];
    let expected = app.post_predict(&json!({"features": explicit})).await;
    assert_eq!(imputed.body["predictions"], expected.body["predictions"]);
    let series = format!(
        r#"inference_feature_missing_total{{model="breast-cancer",feature="{}"}}"#,
        names[2]
    );
    assert_eq!(app.metric(&series).await, Some(1.0));
}

#[tokio::test]
async fn feedback_accuracy_equals_the_share_of_correct_labels_sent() {
    let app = spawn_app().await;
    let rows = samples();
    let mut expected_correct = 0;
    let mut sent = 0;
    // Single rows, labelled with the truth for even rows and the opposite class for odd ones.
    for (i, (values, truth)) in rows.iter().take(40).enumerate() {
        let r = app.post_predict(&json!({"features": values})).await;
        let id = r.body["request_id"].as_str().expect("id").to_owned();
        let predicted = r.body["predictions"][0]["label"]
            .as_str()
            .expect("label")
            .to_owned();
        let label = if i % 2 == 0 {
            truth.clone()
        } else if truth == "benign" {
            "malignant".into()
        } else {
            "benign".into()
        };
        let fb = post_feedback(&app, json!({"request_id": id, "label": label})).await;
        assert_eq!(fb.0, 200, "{}", fb.1);
        assert_eq!(
            fb.1["outcome"],
            if predicted == label {
                "correct"
            } else {
                "incorrect"
            }
        );
        expected_correct += usize::from(predicted == label);
        sent += 1;
    }
    // A batch: label row 2.
    let r = app
        .post_predict(&json!({"instances": [rows[50].0, rows[51].0, rows[52].0]}))
        .await;
    let id = r.body["request_id"].as_str().expect("id").to_owned();
    let fb = post_feedback(
        &app,
        json!({"request_id": id, "row": 2, "label": rows[52].1}),
    )
    .await;
    assert_eq!(fb.0, 200);
    expected_correct += usize::from(r.body["predictions"][2]["label"] == rows[52].1.as_str());
    sent += 1;

    // Labelling twice, unknown ids, rows and classes.
    assert_eq!(
        post_feedback(&app, json!({"request_id": id, "row": 2, "label": "benign"}))
            .await
            .0,
        409
    );
    let unknown = post_feedback(&app, json!({"request_id": "nope", "label": "benign"})).await;
    assert_eq!(
        (unknown.0, unknown.1["error"]["code"].as_str()),
        (404, Some("unknown_prediction"))
    );
    assert_eq!(
        post_feedback(&app, json!({"request_id": id, "row": 3, "label": "benign"}))
            .await
            .0,
        422
    );
    assert_eq!(
        post_feedback(&app, json!({"request_id": id, "row": 0, "label": "maybe"}))
            .await
            .0,
        422
    );

    let text = app.metrics().await;
    let correct = sample(
        &text,
        r#"inference_feedback_total{model="breast-cancer",outcome="correct"}"#,
    )
    .expect("correct");
    let incorrect = sample(
        &text,
        r#"inference_feedback_total{model="breast-cancer",outcome="incorrect"}"#,
    )
    .expect("incorrect");
    assert_eq!(correct + incorrect, sent as f64);
    assert_eq!(correct, expected_correct as f64);
    assert_eq!(
        sample(
            &text,
            r#"inference_feedback_unmatched_total{model="breast-cancer"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"inference_errors_total{route="/feedback",kind="conflict"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn the_feedback_store_evicts_the_oldest_predictions_and_counts_them() {
    let app = spawn_app_with(|s| {
        s.feedback.store_rows = 4;
        s.server.workers = 1;
    })
    .await;
    let mut ids = Vec::new();
    for values in samples().iter().take(6).map(|(v, _)| v) {
        let r = app.post_predict(&json!({"features": values})).await;
        ids.push(r.body["request_id"].as_str().expect("id").to_owned());
    }
    assert_eq!(
        post_feedback(&app, json!({"request_id": ids[0], "label": "benign"}))
            .await
            .0,
        404
    );
    assert_eq!(
        post_feedback(&app, json!({"request_id": ids[5], "label": "benign"}))
            .await
            .0,
        200
    );
    assert_eq!(
        app.metric(r#"inference_feedback_evicted_total{model="breast-cancer"}"#)
            .await,
        Some(2.0)
    );
}

async fn post_feedback(app: &crate::helpers::TestApp, body: Value) -> (u16, Value) {
    let res = app
        .client
        .post(format!("{}/feedback", app.address))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}
