use crate::helpers::{
    TestApp, bundle_dir, feature_names, named_row, samples, spawn_app, spawn_app_with,
    spawn_unloaded_app_with,
};
use inference_api::model::manifest::Manifest;
use inference_api::model::{Engine, EngineError, LoadedModel, Output};
use serde_json::{Value, json};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

fn valid_row() -> Vec<f64> {
    samples()[0].0.clone()
}

/// Asserts status and error code, and that the body is exactly `{"error": {"code", "message"}}`.
fn assert_error(r: &crate::helpers::Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        r.body
    );
    assert_eq!(r.body.as_object().map(|o| o.len()), Some(1), "{}", r.body);
}

#[tokio::test]
async fn every_bad_input_gets_its_status_and_code_and_is_counted() {
    let app = spawn_app().await;
    let row = valid_row();
    let names = feature_names();

    assert_error(
        &app.post_raw(r#"{"features": [1, 2"#, Some("application/json"))
            .await,
        400,
        "malformed_json",
    );
    assert_error(
        &app.post_raw("not json", Some("application/json")).await,
        400,
        "malformed_json",
    );
    assert_error(
        &app.post_raw(json!({"features": row}).to_string(), Some("text/plain"))
            .await,
        415,
        "unsupported_media_type",
    );
    assert_error(
        &app.post_raw(json!({"features": row}).to_string(), None)
            .await,
        415,
        "unsupported_media_type",
    );

    let cases: Vec<(Value, &str)> = vec![
        (json!({"features": &row[..29]}), "wrong_feature_count"),
        (
            json!({"features": row.iter().chain([&1.0]).collect::<Vec<_>>()}),
            "wrong_feature_count",
        ),
        (
            {
                let mut r = named_row(&row);
                r["not a feature"] = json!(1.0);
                json!({"features": r})
            },
            "unknown_feature",
        ),
        (
            {
                let mut r = named_row(&row);
                r.as_object_mut().expect("object").remove(&names[4]);
                json!({"features": r})
            },
            "missing_feature",
        ),
        (
            {
                let mut r = named_row(&row);
                r[&names[0]] = json!("17.99");
                json!({"features": r})
            },
            "non_numeric_value",
        ),
        (
            {
                let mut v: Vec<Value> = row.iter().map(|x| json!(x)).collect();
                v[2] = json!(1e39);
                json!({"features": v})
            },
            "non_finite_value",
        ),
        (json!({"instances": []}), "empty_batch"),
        (
            json!({"instances": vec![row.clone(); 1001]}),
            "batch_too_large",
        ),
        (json!({"features": 5}), "invalid_request"),
        (json!({"rows": [row.clone()]}), "invalid_request"),
    ];
    for (body, code) in &cases {
        assert_error(&app.post_predict(body).await, 422, code);
    }
    assert_error(&app.get("/no/such/path").await, 404, "not_found");
    let r = app
        .client
        .delete(format!("{}/predict", app.address))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 405);

    // Nothing broke: a valid row still predicts.
    assert_eq!(
        app.post_predict(&json!({"features": row})).await.status,
        200
    );

    let text = app.metrics().await;
    let count = |kind: &str, route: &str| {
        crate::helpers::sample(
            &text,
            &format!(r#"inference_errors_total{{route="{route}",kind="{kind}"}}"#),
        )
    };
    assert_eq!(count("malformed_json", "/predict"), Some(2.0));
    assert_eq!(count("unsupported_media_type", "/predict"), Some(2.0));
    assert_eq!(count("validation", "/predict"), Some(cases.len() as f64));
    assert_eq!(count("not_found", "unmatched"), Some(1.0));
    assert_eq!(count("method_not_allowed", "/predict"), Some(1.0));
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let app = spawn_app_with(|s| s.limits.max_body_bytes = 4096).await;
    let batch = json!({"instances": vec![valid_row(); 20]}).to_string();
    assert!(batch.len() > 4096);
    assert_error(
        &app.post_raw(batch, Some("application/json")).await,
        413,
        "payload_too_large",
    );
    let one = json!({"features": valid_row()});
    assert_eq!(app.post_predict(&one).await.status, 200);
    assert_eq!(
        app.metric(r#"inference_errors_total{route="/predict",kind="payload_too_large"}"#)
            .await,
        Some(1.0)
    );
}

/// Blocks every run until released, then answers class 0 for each row (2 classes).
struct BlockingEngine(Arc<(Mutex<bool>, Condvar)>);

impl Engine for BlockingEngine {
    fn run(&mut self, _: &[f32], rows: usize) -> Result<Output, EngineError> {
        let (lock, cvar) = &*self.0;
        let mut released = lock.lock().unwrap_or_else(|p| p.into_inner());
        while !*released {
            released = cvar.wait(released).unwrap_or_else(|p| p.into_inner());
        }
        Ok(Output {
            labels: vec![0; rows],
            probabilities: [1.0, 0.0].repeat(rows),
        })
    }
}

#[tokio::test]
async fn over_the_in_flight_limit_answers_429_at_once() {
    let (app, loader) = spawn_unloaded_app_with(|s| s.limits.max_in_flight = 1).await;
    let release = Arc::new((Mutex::new(false), Condvar::new()));
    let text = std::fs::read_to_string(bundle_dir().join("model.json")).expect("manifest");
    let raw: Value = serde_json::from_str(&text).expect("json");
    let engines: Vec<Box<dyn Engine>> = (0..2)
        .map(|_| Box::new(BlockingEngine(release.clone())) as Box<dyn Engine>)
        .collect();
    loader.publish(LoadedModel::new(
        Manifest::parse(&text).expect("manifest"),
        &raw,
        engines,
    ));
    // A prediction running in the model holds the only slot.
    let running = tokio::spawn({
        let client = reqwest::Client::new();
        let url = format!("{}/predict", app.address);
        async move {
            let r = client
                .post(url)
                .json(&json!({"features": valid_row()}))
                .send();
            r.await.expect("request").status().as_u16()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = std::time::Instant::now();
    let r = app.post_predict(&json!({"features": valid_row()})).await;
    assert_error(&r, 429, "overloaded");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "429 must not wait: {:?}",
        started.elapsed()
    );

    *release.0.lock().expect("lock") = true;
    release.1.notify_all();
    assert_eq!(running.await.expect("first request"), 200);
    assert_eq!(
        app.post_predict(&json!({"features": valid_row()}))
            .await
            .status,
        200
    );
    assert_eq!(
        app.metric(r#"inference_errors_total{route="/predict",kind="overloaded"}"#)
            .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn predictions_before_the_model_is_loaded_get_503() {
    let (app, loader) = spawn_unloaded_app_with(|_| {}).await;
    assert_error(
        &app.post_predict(&json!({"features": valid_row()})).await,
        503,
        "not_ready",
    );
    loader.load().await.expect("load");
    assert_eq!(
        app.post_predict(&json!({"features": valid_row()}))
            .await
            .status,
        200
    );
}

/// An app serving the bundle's manifest with `engine` in place of ONNX Runtime.
async fn spawn_app_serving(engine: impl Engine + 'static) -> TestApp {
    let (app, loader) = spawn_unloaded_app_with(|_| {}).await;
    let text = std::fs::read_to_string(bundle_dir().join("model.json")).expect("manifest");
    let raw: Value = serde_json::from_str(&text).expect("json");
    loader.publish(LoadedModel::new(
        Manifest::parse(&text).expect("manifest"),
        &raw,
        vec![Box::new(engine)],
    ));
    app
}

struct FailingEngine;

impl Engine for FailingEngine {
    fn run(&mut self, _: &[f32], _: usize) -> Result<Output, EngineError> {
        Err(EngineError::Run(
            "ort: secret internal detail at /opt/model".into(),
        ))
    }
}

#[tokio::test]
async fn a_failing_model_gives_500_without_leaking_internals() {
    let app = spawn_app_serving(FailingEngine).await;

    let r = app.post_predict(&json!({"features": valid_row()})).await;
    assert_error(&r, 500, "model_error");
    assert!(!r.body.to_string().contains("secret"), "{}", r.body);
    assert_eq!(
        app.metric(r#"inference_errors_total{route="/predict",kind="model"}"#)
            .await,
        Some(1.0)
    );
}

/// Answers every row with a class index the 2-class model does not have.
struct OutOfRangeEngine;

impl Engine for OutOfRangeEngine {
    fn run(&mut self, _: &[f32], rows: usize) -> Result<Output, EngineError> {
        Ok(Output {
            labels: vec![7; rows],
            probabilities: [0.5, 0.5].repeat(rows),
        })
    }
}

#[tokio::test]
async fn a_model_answering_a_class_it_does_not_have_gives_500() {
    let app = spawn_app_serving(OutOfRangeEngine).await;

    let r = app.post_predict(&json!({"features": valid_row()})).await;
    assert_error(&r, 500, "model_error");
    assert_eq!(
        app.metric(r#"inference_errors_total{route="/predict",kind="model"}"#)
            .await,
        Some(1.0)
    );
}
