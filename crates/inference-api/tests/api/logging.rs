//! The logs of requests: one access line each (as `log.access` says), and every line logged while
//! serving a request, errors included, carrying its `request_id`.

use crate::helpers::{
    Binary, LOGS, TestApp, bundle_dir, samples, spawn_app_with, spawn_unloaded_app_with,
};
use inference_api::configuration::Settings;
use inference_api::model::manifest::Manifest;
use inference_api::model::{Engine, EngineError, LoadedModel, Output};
use metrics_core::http::AccessLog;
use serde_json::{Value, json};

const ACCESS_MSG: &str = "[HTTP REQUEST - EVENT] request completed";

/// POSTs `body` to /predict with `X-Request-Id: id`; returns the status.
async fn predict_as(app: &TestApp, id: &str, body: Value) -> u16 {
    let res = app
        .client
        .post(format!("{}/predict", app.address))
        .header("x-request-id", id)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(
        res.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(id.as_bytes())
    );
    res.status().as_u16()
}

async fn get_as(app: &TestApp, id: &str, path: &str) -> u16 {
    let res = app
        .client
        .get(format!("{}{path}", app.address))
        .header("x-request-id", id)
        .send()
        .await
        .expect("request");
    res.status().as_u16()
}

fn one_row() -> Value {
    json!({"features": samples()[0].0})
}

/// The access lines of request `id`.
fn access_lines(id: &str) -> Vec<Value> {
    LOGS.of_request(id)
        .into_iter()
        .filter(|l| l["msg"] == ACCESS_MSG)
        .collect()
}

struct FailingEngine;

impl Engine for FailingEngine {
    fn run(&mut self, _: &[f32], _: usize) -> Result<Output, EngineError> {
        Err(EngineError::Run("ort: the session exploded".into()))
    }
}

/// The app with a model whose every run fails.
async fn spawn_failing_app(change: impl FnOnce(&mut Settings)) -> TestApp {
    let (app, loader) = spawn_unloaded_app_with(change).await;
    let text = std::fs::read_to_string(bundle_dir().join("model.json")).expect("manifest");
    let raw: Value = serde_json::from_str(&text).expect("json");
    loader.publish(LoadedModel::new(
        Manifest::parse(&text).expect("manifest"),
        &raw,
        vec![Box::new(FailingEngine)],
    ));
    app
}

#[tokio::test]
async fn every_request_gets_one_access_line_with_its_request_id_method_route_and_status() {
    let app = spawn_app_with(|_| {}).await;
    assert_eq!(predict_as(&app, "all-ok", one_row()).await, 200);
    assert_eq!(
        predict_as(&app, "all-invalid", json!({"features": [1.0]})).await,
        422
    );
    assert_eq!(get_as(&app, "all-unmatched", "/no/such/page").await, 404);
    assert_eq!(get_as(&app, "all-health", "/health").await, 200);

    for (id, method, route, status) in [
        ("all-ok", "POST", "/predict", 200),
        ("all-invalid", "POST", "/predict", 422),
        ("all-unmatched", "GET", "unmatched", 404),
        ("all-health", "GET", "/health", 200),
    ] {
        let lines = LOGS.of_request(id);
        assert_eq!(lines.len(), 1, "{id}: {lines:#?}");
        let l = &lines[0];
        assert_eq!(l["msg"], ACCESS_MSG, "{l}");
        assert_eq!(
            (&l["method"], &l["route"], &l["status"]),
            (&json!(method), &json!(route), &json!(status)),
            "{l}"
        );
        assert_eq!(l["level"], 30);
        assert!(l["latency_seconds"].as_f64().is_some(), "{l}");
    }
    let ok = &LOGS.of_request("all-ok")[0];
    assert_eq!(
        (&ok["model"], &ok["rows"]),
        (&json!("breast-cancer"), &json!(1))
    );
}

#[tokio::test]
async fn a_model_error_is_logged_with_the_request_id_of_its_request() {
    let app = spawn_failing_app(|_| {}).await;
    assert_eq!(predict_as(&app, "engine-fails-1", one_row()).await, 500);

    let lines = LOGS.of_request("engine-fails-1");
    assert_eq!(
        lines.len(),
        2,
        "the error, then the access line: {lines:#?}"
    );
    let (error, access) = (&lines[0], &lines[1]);
    assert_eq!(error["msg"], "[HTTP REQUEST - EVENT] request failed");
    assert_eq!(error["level"], 50);
    assert_eq!(error["error.message"], "the model failed to run");
    assert!(
        error["error.cause_chain"]
            .as_str()
            .is_some_and(|c| c.contains("the session exploded")),
        "{error}"
    );
    assert_eq!(
        (&error["method"], &error["route"]),
        (&json!("POST"), &json!("/predict"))
    );
    assert!(error.get("status").is_none(), "not an access line: {error}");
    assert_eq!(access["msg"], ACCESS_MSG);
    assert_eq!(access["status"], 500);
}

#[tokio::test]
async fn access_errors_logs_only_requests_answered_with_400_or_more() {
    let app = spawn_app_with(|s| s.log.access = AccessLog::Errors).await;
    assert_eq!(predict_as(&app, "errors-ok", one_row()).await, 200);
    assert_eq!(
        predict_as(&app, "errors-invalid", json!({"features": [1.0]})).await,
        422
    );
    assert_eq!(get_as(&app, "errors-unmatched", "/nope").await, 404);
    assert_eq!(get_as(&app, "errors-health", "/health").await, 200);

    assert!(LOGS.of_request("errors-ok").is_empty());
    assert!(LOGS.of_request("errors-health").is_empty());
    assert_eq!(access_lines("errors-invalid")[0]["status"], 422);
    assert_eq!(access_lines("errors-unmatched")[0]["status"], 404);
    assert_eq!(LOGS.of_request("errors-invalid").len(), 1);
}

#[tokio::test]
async fn access_off_logs_no_access_line_but_errors_keep_their_request_id() {
    let app = spawn_failing_app(|s| s.log.access = AccessLog::Off).await;
    assert_eq!(predict_as(&app, "off-fails", one_row()).await, 500);
    assert_eq!(
        predict_as(&app, "off-invalid", json!({"features": [1.0]})).await,
        422
    );
    assert_eq!(get_as(&app, "off-health", "/health").await, 200);

    assert!(LOGS.of_request("off-invalid").is_empty());
    assert!(LOGS.of_request("off-health").is_empty());
    let lines = LOGS.of_request("off-fails");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["msg"], "[HTTP REQUEST - EVENT] request failed");
    assert_eq!(lines[0]["route"], "/predict");
}

#[test]
fn the_binary_takes_the_access_log_setting_from_app_log_access() {
    let mut bin = Binary::spawn(&[("APP_LOG__ACCESS", "errors")]);
    let port = bin.next_log("listening")["port"].as_u64().expect("port");
    bin.next_log("model loaded");
    assert!(http(port, "GET /health", "env-ok", "").starts_with("HTTP/1.1 200"));
    assert!(
        http(port, "POST /predict", "env-bad", r#"{"features": [1.0]}"#)
            .starts_with("HTTP/1.1 422")
    );

    // Lines are written in order: an access line of the first request would come first.
    let first = bin
        .logs
        .by_ref()
        .map(|l| serde_json::from_str::<Value>(&l.expect("line")).expect("every line is JSON"))
        .find(|l| l.get("request_id").is_some())
        .expect("a request's line");
    let _ = bin.child.kill();
    let _ = bin.child.wait();
    assert_eq!(first["request_id"], "env-bad", "{first}");
    assert_eq!(first["msg"], ACCESS_MSG);
    assert_eq!(first["status"], 422);
}

/// Sends one request (`"METHOD /path"`) over a new connection; returns the whole response.
fn http(port: u64, request: &str, id: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let port = u16::try_from(port).expect("a port");
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(
        conn,
        "{request} HTTP/1.1\r\nHost: t\r\nX-Request-Id: {id}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("response");
    response
}
