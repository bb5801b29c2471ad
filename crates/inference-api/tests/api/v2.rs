//! The Open Inference Protocol (V2) routes against the real bundled model: metadata and health,
//! inference with JSON tensors and binary tensors giving exactly the `/predict` answers, and bad
//! requests refused with the protocol's error shape and counted.

use crate::helpers::{TestApp, manifest, samples, spawn_app, spawn_unloaded_app_with};
use serde_json::{Value, json};

const INFER: &str = "/v2/models/breast-cancer/infer";

/// A raw response: status, headers and body bytes.
struct Raw {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The JSON part and the binary part of a binary-extension response.
    fn split(&self) -> (Value, &[u8]) {
        let n: usize = self.headers["inference-header-content-length"]
            .to_str()
            .expect("text")
            .parse()
            .expect("a length");
        (
            serde_json::from_slice(&self.body[..n]).expect("a JSON header"),
            &self.body[n..],
        )
    }
}

async fn post(app: &TestApp, path: &str, body: Vec<u8>, headers: &[(&str, String)]) -> Raw {
    let mut req = app.client.post(format!("{}{path}", app.address)).body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.expect("request");
    Raw {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.bytes().await.expect("body").to_vec(),
    }
}

async fn post_json(app: &TestApp, path: &str, body: &Value) -> Raw {
    let headers = [("content-type", "application/json".to_string())];
    post(app, path, body.to_string().into_bytes(), &headers).await
}

/// A binary-extension request: `header` as JSON, then `binary`.
async fn post_binary(app: &TestApp, header: &Value, binary: &[u8]) -> Raw {
    let mut body = header.to_string().into_bytes();
    let headers = [("inference-header-content-length", body.len().to_string())];
    body.extend_from_slice(binary);
    post(app, INFER, body, &headers).await
}

fn rows() -> Vec<Vec<f64>> {
    samples().into_iter().map(|(v, _)| v).collect()
}

/// `/predict`'s answer for every row: class index and probabilities in class order.
async fn predict_answers(app: &TestApp, rows: &[Vec<f64>]) -> (Vec<i64>, Vec<f32>) {
    let r = app.post_predict(&json!({"instances": rows})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let classes: Vec<String> =
        serde_json::from_value(manifest()["classes"].clone()).expect("classes");
    let mut labels = Vec::new();
    let mut probabilities = Vec::new();
    for p in r.body["predictions"].as_array().expect("predictions") {
        labels.push(p["class_index"].as_i64().expect("index"));
        for c in &classes {
            probabilities.push(p["probabilities"][c].as_f64().expect("p") as f32);
        }
    }
    (labels, probabilities)
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

#[tokio::test]
async fn server_and_model_metadata_and_health_follow_the_protocol() {
    let (app, loader) = spawn_unloaded_app_with(|_| {}).await;
    assert_eq!(app.get("/v2/health/live").await.body, json!({"live": true}));
    let not_ready = app.get("/v2/health/ready").await;
    assert_eq!(
        (not_ready.status, not_ready.body),
        (503, json!({"ready": false}))
    );
    assert_eq!(app.get("/v2/models/breast-cancer/ready").await.status, 503);
    loader.load().await.expect("loads");

    let server = app.get("/v2").await;
    assert_eq!(server.status, 200);
    assert_eq!(server.body["name"], "inference-api");
    assert_eq!(server.body["extensions"], json!(["binary_tensor_data"]));
    assert_eq!(
        app.get("/v2/health/ready").await.body,
        json!({"ready": true})
    );
    for path in [
        "/v2/models/breast-cancer/ready",
        "/v2/models/breast-cancer/versions/1.0.0/ready",
    ] {
        let r = app.get(path).await;
        assert_eq!(
            (r.status, r.body),
            (200, json!({"name": "breast-cancer", "ready": true}))
        );
    }

    let expected = json!({
        "name": "breast-cancer",
        "versions": ["1.0.0"],
        "platform": "onnx_onnxv1",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 30]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
        ],
    });
    for path in [
        "/v2/models/breast-cancer",
        "/v2/models/breast-cancer/versions/1.0.0",
    ] {
        let r = app.get(path).await;
        assert_eq!((r.status, r.body), (200, expected.clone()));
    }

    for (path, message) in [
        (
            "/v2/models/iris",
            "unknown model \"iris\": this server serves \"breast-cancer\"",
        ),
        ("/v2/models/iris/ready", "unknown model \"iris\""),
        (
            "/v2/models/breast-cancer/versions/2.0.0",
            "model \"breast-cancer\" has no version \"2.0.0\" being served: it serves \"1.0.0\"",
        ),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        let error = r.body["error"].as_str().expect("an error string");
        assert!(error.starts_with(message), "{path}: {error}");
    }
    // Unknown paths under /v2/ (Triton's own `config`, say) in the protocol's error shape too.
    let unknown = app.get("/v2/models/breast-cancer/config").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.body["error"],
        "no route for GET /v2/models/breast-cancer/config"
    );
    let wrong_method = app.get(INFER).await;
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.body["error"].is_string());
}

#[tokio::test]
async fn json_tensors_give_exactly_the_predict_answers_for_every_held_out_row() {
    let app = spawn_app().await;
    let rows = rows();
    let (labels, probabilities) = predict_answers(&app, &rows).await;
    let n = rows.len();

    // Flat FP32, nested FP64: the same answers, both outputs, id echoed.
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    for (datatype, data) in [("FP32", json!(flat)), ("FP64", json!(rows))] {
        let body = json!({"id": "req-7", "inputs": [
            {"name": "input", "shape": [n, 30], "datatype": datatype, "data": data}]});
        let r = post_json(&app, INFER, &body).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        assert_eq!(
            (&v["model_name"], &v["model_version"], &v["id"]),
            (&json!("breast-cancer"), &json!("1.0.0"), &json!("req-7"))
        );
        let [label, probs] = v["outputs"]
            .as_array()
            .expect("outputs")
            .clone()
            .try_into()
            .expect("two");
        assert_eq!(
            (&label["name"], &label["datatype"], &label["shape"]),
            (&json!("label"), &json!("INT64"), &json!([n]))
        );
        let got: Vec<i64> = serde_json::from_value(label["data"].clone()).expect("labels");
        assert_eq!(got, labels, "{datatype}");
        assert_eq!(
            (&probs["name"], &probs["datatype"], &probs["shape"]),
            (&json!("probabilities"), &json!("FP32"), &json!([n, 2]))
        );
        assert_eq!(f32s(&probs["data"]), probabilities, "{datatype}");
    }

    // One row at a time, through the versioned route, only the probabilities asked for.
    for (i, row) in rows.iter().enumerate().step_by(9) {
        let body = json!({
            "inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP32", "data": [row]}],
            "outputs": [{"name": "probabilities"}],
        });
        let r = post_json(&app, "/v2/models/breast-cancer/versions/1.0.0/infer", &body).await;
        assert_eq!(r.status, 200);
        let v = r.json();
        assert!(v.get("id").is_none(), "no id was given: {v}");
        let outputs = v["outputs"].as_array().expect("outputs");
        assert_eq!(outputs.len(), 1);
        assert_eq!(
            f32s(&outputs[0]["data"]),
            probabilities[2 * i..2 * i + 2],
            "row {i}"
        );
    }
}

#[tokio::test]
async fn binary_tensors_in_both_directions_give_exactly_the_predict_answers() {
    let app = spawn_app().await;
    let rows = rows();
    let (labels, probabilities) = predict_answers(&app, &rows).await;
    let n = rows.len();
    let values = rows.iter().flatten();
    let fp32: Vec<u8> = values
        .clone()
        .flat_map(|&x| (x as f32).to_le_bytes())
        .collect();
    let fp64: Vec<u8> = values.flat_map(|x| x.to_le_bytes()).collect();

    for (datatype, binary) in [("FP32", &fp32), ("FP64", &fp64)] {
        let header = json!({
            "inputs": [{"name": "input", "shape": [n, 30], "datatype": datatype,
                        "parameters": {"binary_data_size": binary.len()}}],
            "parameters": {"binary_data_output": true},
        });
        let r = post_binary(&app, &header, binary).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.headers["content-type"], "application/octet-stream");
        let (head, data) = r.split();
        let outputs = head["outputs"].as_array().expect("outputs");
        let sizes: Vec<u64> = outputs
            .iter()
            .map(|o| {
                assert!(o.get("data").is_none(), "{o}");
                o["parameters"]["binary_data_size"].as_u64().expect("size")
            })
            .collect();
        assert_eq!(sizes, vec![8 * n as u64, 8 * n as u64]);
        let (l, p) = data.split_at(8 * n);
        let got_labels: Vec<i64> = l
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8")))
            .collect();
        let got_probs: Vec<f32> = p
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4")))
            .collect();
        assert_eq!(
            (got_labels, got_probs),
            (labels.clone(), probabilities.clone()),
            "{datatype}"
        );
    }

    // Binary in, one output binary and the other JSON.
    let header = json!({
        "inputs": [{"name": "input", "shape": [n, 30], "datatype": "FP32",
                    "parameters": {"binary_data_size": fp32.len()}}],
        "outputs": [{"name": "label"}, {"name": "probabilities", "parameters": {"binary_data": true}}],
    });
    let r = post_binary(&app, &header, &fp32).await;
    assert_eq!(r.status, 200);
    let (head, data) = r.split();
    let got: Vec<i64> = serde_json::from_value(head["outputs"][0]["data"].clone()).expect("labels");
    assert_eq!(got, labels);
    let got: Vec<f32> = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4")))
        .collect();
    assert_eq!(got, probabilities);
}

#[tokio::test]
async fn v2_predictions_are_counted_and_take_feedback_by_request_id() {
    let app = spawn_app().await;
    let rows = rows();
    let series =
        |c: &str| format!(r#"inference_predictions_total{{model="breast-cancer",class="{c}"}}"#);
    let before = app.metric(&series("benign")).await.unwrap_or(0.0)
        + app.metric(&series("malignant")).await.unwrap_or(0.0);
    let body = json!({"inputs": [{"name": "input", "shape": [3, 30], "datatype": "FP32", "data": rows[..3]}]});
    let r = post_json(&app, INFER, &body).await;
    assert_eq!(r.status, 200);
    let after = app.metric(&series("benign")).await.unwrap_or(0.0)
        + app.metric(&series("malignant")).await.unwrap_or(0.0);
    assert_eq!(after - before, 3.0);
    // By route template, never by the model name a client sent.
    let ok = r#"inference_http_requests_total{route="/v2/models/{name}/infer",method="POST",status="200"}"#;
    assert_eq!(app.metric(ok).await, Some(1.0));

    let id = r.headers["x-request-id"].to_str().expect("id").to_owned();
    let label = ["malignant", "benign"]
        [r.json()["outputs"][0]["data"][2].as_u64().expect("class") as usize];
    let fb = app
        .client
        .post(format!("{}/feedback", app.address))
        .json(&json!({"request_id": id, "row": 2, "label": label}))
        .send()
        .await
        .expect("feedback");
    assert_eq!(fb.status().as_u16(), 200);
}

#[tokio::test]
async fn every_bad_request_gets_a_400_naming_what_is_wrong_and_is_counted() {
    let app = spawn_app().await;
    let row: Vec<f64> = rows()[0].clone();
    let input = |shape: Value, datatype: &str, data: Value| json!({"inputs": [{"name": "input", "shape": shape, "datatype": datatype, "data": data}]});
    let cases: Vec<(Value, &str)> = vec![
        (
            input(json!([1, 30]), "INT64", json!(row)),
            "datatype \"INT64\"",
        ),
        (
            input(json!([2, 30]), "FP32", json!(row)),
            "needs 60 values; data has 30",
        ),
        (
            input(json!([-1, 30]), "FP32", json!(row)),
            "cannot be negative",
        ),
        (
            input(json!([1_000_000_000_000i64, 30]), "FP32", json!(row)),
            "at most 1000 are accepted",
        ),
        (
            input(json!([1, 30]), "FP32", json!([row.clone(), "x"])),
            "is a string",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP32", "data": row}],
                   "outputs": [{"name": "logits"}]}),
            "unknown output \"logits\"",
        ),
        (json!({"inputs": "nope"}), "invalid type"),
    ];
    let counted = r#"inference_errors_total{route="/v2/models/{name}/infer",kind="validation"}"#;
    for (i, (body, expected)) in cases.iter().enumerate() {
        let r = post_json(&app, INFER, body).await;
        assert_eq!(r.status, 400, "{body}");
        let error = r.json()["error"]
            .as_str()
            .expect("an error string")
            .to_owned();
        assert!(error.contains(expected), "{body}: {error}");
        assert_eq!(app.metric(counted).await, Some(i as f64 + 1.0));
    }

    let malformed = post(&app, INFER, b"{\"inputs\": [".to_vec(), &[]).await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.json()["error"]
            .as_str()
            .expect("error")
            .contains("not valid JSON")
    );

    // The binary extension's sizes.
    let header = json!({"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP32",
                                    "parameters": {"binary_data_size": 120}}]});
    let r = post_binary(&app, &header, &[0u8; 100]).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]
            .as_str()
            .expect("error")
            .contains("larger than the 100 bytes")
    );
    let r = post(
        &app,
        INFER,
        b"{}".to_vec(),
        &[("inference-header-content-length", "500".into())],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"],
        "Inference-Header-Content-Length 500 is past the end of the 2-byte body"
    );

    let unknown = post_json(
        &app,
        "/v2/models/iris/infer",
        &input(json!([1, 30]), "FP32", json!(row)),
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        app.metric(r#"inference_errors_total{route="/v2/models/{name}/infer",kind="not_found"}"#)
            .await,
        Some(1.0)
    );
    let text = post(
        &app,
        INFER,
        b"{}".to_vec(),
        &[("content-type", "text/plain".into())],
    )
    .await;
    assert_eq!(text.status, 415);
    assert_eq!(
        text.json()["error"],
        "send the body as application/json, or application/octet-stream with \
         Inference-Header-Content-Length (got \"text/plain\")"
    );

    // Still serving.
    let ok = post_json(&app, INFER, &input(json!([1, 30]), "FP32", json!(row))).await;
    assert_eq!(ok.status, 200);
}
