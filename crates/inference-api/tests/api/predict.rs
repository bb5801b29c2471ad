use crate::helpers::{manifest, named_row, repo_root, sample, samples, spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test]
async fn every_held_out_row_over_http_gives_the_manifest_accuracy() {
    let app = spawn_app().await;
    let rows = samples();
    let mut correct = 0;
    for (values, truth) in &rows {
        let r = app
            .post_predict(&json!({"features": named_row(values)}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let p = &r.body["predictions"][0];
        if p["label"] == truth.as_str() {
            correct += 1;
        }
    }
    let accuracy = correct as f64 / rows.len() as f64;
    let expected = manifest()["validation"]["scores"]["accuracy"]
        .as_f64()
        .expect("accuracy");
    assert_eq!(rows.len(), 114);
    assert_eq!(
        (accuracy * 1e6).round() / 1e6,
        expected,
        "{correct} of {} correct",
        rows.len()
    );
}

#[tokio::test]
async fn the_second_bundled_model_serves_three_classes_at_its_manifest_accuracy() {
    let app = spawn_app().await;
    let wine = model_bundle::Bundle::load(&repo_root().join("models/wine")).expect("wine bundle");
    assert_eq!((wine.features.len(), wine.samples.len()), (13, 36));
    let instances: Vec<Value> = wine.samples.iter().map(|s| json!(s.features)).collect();
    let r = app
        .client
        .post(format!("{}/models/wine/predict", app.address))
        .json(&json!({"instances": instances}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        (&body["model"], &body["version"]),
        (&json!("wine"), &json!("1.0.0"))
    );
    let predictions = body["predictions"].as_array().expect("predictions");
    let correct = predictions
        .iter()
        .zip(&wine.samples)
        .filter(|(p, s)| p["label"] == s.label.as_str())
        .count();
    for p in predictions {
        let probabilities = p["probabilities"].as_object().expect("probabilities");
        let names: Vec<&str> = probabilities.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["class_0", "class_1", "class_2"]);
        let sum: f64 = probabilities.values().filter_map(Value::as_f64).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{p}");
    }
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("models/wine/model.json")).expect("manifest"),
    )
    .expect("json");
    let expected = manifest["validation"]["scores"]["accuracy"]
        .as_f64()
        .expect("accuracy");
    let accuracy = correct as f64 / wine.samples.len() as f64;
    assert_eq!((accuracy * 1e6).round() / 1e6, expected, "{correct} of 36");
    // The default model is untouched by the second one.
    assert_eq!(
        app.post_predict(&json!({"features": named_row(&samples()[0].0)}))
            .await
            .body["model"],
        "breast-cancer"
    );
}

#[tokio::test]
async fn a_batch_agrees_with_single_rows_and_both_row_forms() {
    let app = spawn_app().await;
    let rows = samples();
    let batch: Vec<Value> = rows.iter().map(|(v, _)| json!(v)).collect();
    let r = app.post_predict(&json!({"instances": batch})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let batch_preds = r.body["predictions"]
        .as_array()
        .expect("predictions")
        .clone();
    assert_eq!(batch_preds.len(), rows.len());
    for (i, (values, _)) in rows.iter().enumerate().step_by(7) {
        let by_array = app.post_predict(&json!({"features": values})).await;
        let by_name = app
            .post_predict(&json!({"features": named_row(values)}))
            .await;
        assert_eq!(by_array.body["predictions"][0], batch_preds[i], "row {i}");
        assert_eq!(by_name.body["predictions"][0], batch_preds[i], "row {i}");
    }
}

#[tokio::test]
async fn a_prediction_names_model_class_probabilities_and_request_id() {
    let app = spawn_app().await;
    let (values, _) = &samples()[0];
    let r = app.post_predict(&json!({"features": values})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["model"], "breast-cancer");
    assert_eq!(r.body["version"], "1.0.0");
    assert_eq!(r.body["request_id"].as_str(), r.request_id.as_deref());
    let p = &r.body["predictions"][0];
    let (m, b) = (
        p["probabilities"]["malignant"].as_f64().expect("p"),
        p["probabilities"]["benign"].as_f64().expect("p"),
    );
    assert!((m + b - 1.0).abs() < 1e-5, "{p}");
    assert_eq!(p["confidence"].as_f64(), Some(m.max(b)));
    let index = p["class_index"].as_u64().expect("index") as usize;
    assert_eq!(p["label"], ["malignant", "benign"][index]);
}

#[tokio::test]
async fn an_incoming_request_id_is_honoured() {
    let app = spawn_app().await;
    let (values, _) = &samples()[3];
    let res = app
        .client
        .post(format!("{}/predict", app.address))
        .header("x-request-id", "trace-abc-123")
        .json(&json!({"features": values}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.headers()["x-request-id"], "trace-abc-123");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["request_id"], "trace-abc-123");
}

/// Concurrent single-row requests may share one ONNX call (coalescing); each must still get
/// exactly its own row's prediction and id, and every row is counted once.
#[tokio::test]
async fn concurrent_requests_each_get_their_own_prediction() {
    let app = spawn_app_with(|s| {
        s.server.workers = 1;
        s.model.coalesce_max_rows = 32;
    })
    .await;
    let rows = samples();
    let batch: Vec<Value> = rows.iter().map(|(v, _)| json!(v)).collect();
    let alone = app.post_predict(&json!({"instances": batch})).await;
    assert_eq!(alone.status, 200, "{}", alone.body);
    let bodies: Vec<Value> = rows
        .iter()
        .map(|(values, _)| json!({"features": values}))
        .collect();
    let replies = futures_util::future::join_all(bodies.iter().map(|b| app.post_predict(b))).await;
    let mut ids = std::collections::HashSet::new();
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["predictions"][0], alone.body["predictions"][i],
            "row {i}"
        );
        assert_eq!(r.body["request_id"].as_str(), r.request_id.as_deref());
        ids.insert(r.request_id.clone().expect("id"));
    }
    assert_eq!(ids.len(), rows.len());
    let text = app.metrics().await;
    let m = |s: &str| sample(&text, s).expect(s);
    let (calls, total_rows) = (
        m(r#"inference_batch_size_count{model="breast-cancer"}"#),
        m(r#"inference_batch_size_sum{model="breast-cancer"}"#),
    );
    assert_eq!(total_rows, 2.0 * rows.len() as f64);
    // The batch is one call; 114 single rows fired at once on one worker share calls (7 or 8
    // calls in all here), never more than `coalesce_max_rows` (32) rows each.
    let min_calls = 1.0 + (rows.len() as f64 / 32.0).ceil();
    assert!(
        calls >= min_calls && calls < 1.0 + rows.len() as f64,
        "{calls} calls"
    );
    let predicted: f64 = ["malignant", "benign"]
        .iter()
        .map(|c| {
            m(&format!(
                r#"inference_predictions_total{{model="breast-cancer",class="{c}"}}"#
            ))
        })
        .sum();
    assert_eq!(predicted, 2.0 * rows.len() as f64);
}
