use crate::helpers::{manifest, named_row, samples, spawn_app};
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
