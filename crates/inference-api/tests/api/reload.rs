//! Hot reload: new versions dropped into the model's folder are served while serving, with no
//! failed request; broken ones are refused and the version serving keeps serving.

use crate::helpers::{LOGS, TestApp, bundle_dir, named_row, samples, spawn_unloaded_app_with};
use inference_api::startup::ModelLoader;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A model folder holding a copy of the bundled model (version 1.0.0), and the app serving it,
/// looking for new versions every 50 ms.
async fn spawn_watching_app() -> (TestApp, tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().expect("tempdir");
    let folder = root.path().join("breast-cancer");
    std::fs::create_dir(&folder).expect("mkdir");
    for file in ["model.json", "model.onnx", "samples.csv"] {
        std::fs::copy(bundle_dir().join(file), folder.join(file)).expect("copy");
    }
    let repository = root.path().to_path_buf();
    let (app, loader) = spawn_unloaded_app_with(move |s| {
        s.model.repository = repository;
        s.model.poll_interval_seconds = 0.05;
    })
    .await;
    start(loader).await;
    (app, root, folder)
}

async fn start(loader: ModelLoader) {
    loader.load().await.expect("the first version loads");
    tokio::spawn(async move { loader.watch().await });
}

/// Writes version `version` of the bundled model into `folder` the safe way: into a hidden
/// folder first, renamed into place once complete. `onnx` replaces the model file if given.
fn drop_version(folder: &Path, version: &str, onnx: Option<&[u8]>) -> PathBuf {
    let hidden = folder.join(format!(".{version}.tmp"));
    std::fs::create_dir(&hidden).expect("mkdir");
    let mut manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(bundle_dir().join("model.json")).expect("manifest"),
    )
    .expect("json");
    manifest["version"] = json!(version);
    std::fs::write(hidden.join("model.json"), manifest.to_string()).expect("write");
    match onnx {
        Some(bytes) => std::fs::write(hidden.join("model.onnx"), bytes).expect("write"),
        None => {
            std::fs::copy(bundle_dir().join("model.onnx"), hidden.join("model.onnx"))
                .expect("copy");
        }
    }
    let target = folder.join(version);
    std::fs::rename(&hidden, &target).expect("rename into place");
    target
}

/// Waits until a prediction names `version`.
async fn wait_for_version(app: &TestApp, version: &str) {
    let row = json!({"features": named_row(&samples()[0].0)});
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.post_predict(&row).await;
        if r.body["version"] == version {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "version {version} not served within 20 s: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn failed_loads(app: &TestApp) -> f64 {
    app.metric("inference_model_loads_total{model=\"breast-cancer\",outcome=\"failed\"}")
        .await
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_new_versions_and_a_broken_one_under_load_fail_no_request() {
    let (app, _root, folder) = spawn_watching_app().await;
    let stop = Arc::new(AtomicBool::new(false));
    let row = json!({"features": named_row(&samples()[0].0)}).to_string();
    // Four clients predicting without pause; each records every answer (status, version).
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, body, stop) = (
                app.client.clone(),
                format!("{}/predict", app.address),
                row.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut answers: Vec<Result<(u16, String), String>> = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let answer = match sent {
                        Ok(res) => {
                            let status = res.status().as_u16();
                            match res.json::<Value>().await {
                                Ok(v) => Ok((status, v["version"].as_str().unwrap_or("").into())),
                                Err(e) => Err(format!("status {status}, unreadable body: {e}")),
                            }
                        }
                        Err(e) => Err(format!("no answer: {e}")),
                    };
                    answers.push(answer);
                }
                answers
            })
        })
        .collect();

    let versions: Vec<String> = (1..=10).map(|i| format!("1.0.{i}")).collect();
    for version in &versions {
        drop_version(&folder, version, None);
        wait_for_version(&app, version).await;
    }
    // A broken newer version: its model file is not the one the manifest's checksum names.
    drop_version(&folder, "1.0.11", Some(b"not an onnx model"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while failed_loads(&app).await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the broken version was not refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);

    let mut total = 0;
    for client in clients {
        let answers = client.await.expect("client task");
        total += answers.len();
        let mut last = (0, "1.0.0".to_string());
        for (i, answer) in answers.into_iter().enumerate() {
            let (status, version) = answer.unwrap_or_else(|e| panic!("request {i}: {e}"));
            assert_eq!(status, 200, "request {i} answered {status}");
            let rank = std::iter::once("1.0.0")
                .chain(versions.iter().map(String::as_str))
                .position(|v| v == version)
                .unwrap_or_else(|| panic!("request {i} names version {version:?}"));
            // One client's requests are sequential: the versions they name never go back.
            assert!(rank >= last.0, "{version} answered after {}", last.1);
            last = (rank, version);
        }
        assert_eq!(
            last.1, "1.0.10",
            "the last answers come from the newest good version"
        );
    }
    assert!(total >= 100, "only {total} requests were made");

    assert_eq!(
        failed_loads(&app).await,
        1.0,
        "refused once, not every poll"
    );
    assert_eq!(
        app.metric("inference_model_loads_total{model=\"breast-cancer\",outcome=\"loaded\"}")
            .await,
        Some(11.0)
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("inference_model_info{model=\"breast-cancer\",version=\"1.0.10\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("version=\"1.0.0\""),
        "the old version's info is gone"
    );
    let refused: Vec<Value> = LOGS
        .lines()
        .into_iter()
        .filter(|l| {
            l["msg"] == "model version refused; the version already serving keeps serving"
                && l["model_version"] == "1.0.11"
        })
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0]["error.message"]
            .as_str()
            .is_some_and(|m| m.contains("1.0.11/model.onnx has sha256")),
        "{refused:?}"
    );
    assert_eq!(app.get("/ready").await.status, 200);

    let listed = app.get("/models").await;
    assert_eq!(listed.status, 200);
    let model = &listed.body["models"][0];
    assert_eq!(
        (&model["name"], &model["default"]),
        (&json!("breast-cancer"), &json!(true))
    );
    let states: Vec<(String, String)> = model["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap_or("?").into(),
                v["state"].as_str().unwrap_or("?").into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = std::iter::once(("1.0.11".into(), "failed".into()))
        .chain(
            versions
                .iter()
                .rev()
                .enumerate()
                .map(|(i, v)| (v.clone(), if i == 0 { "ready" } else { "available" }.into())),
        )
        .chain(std::iter::once(("1.0.0".into(), "available".into())))
        .collect();
    assert_eq!(states, expected);
    let failed = &model["versions"][0];
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("has sha256")),
        "{failed}"
    );
    let ready = &model["versions"][1];
    assert_eq!(ready["sha256"], manifest_sha256());
    assert_eq!(ready["trained_at"], "2026-11-21T00:00:00Z");
    assert_eq!(ready["reason"], Value::Null);
}

fn manifest_sha256() -> Value {
    crate::helpers::manifest()["artifacts"]["model.onnx"]["sha256"].clone()
}

#[tokio::test]
async fn a_removed_version_falls_back_to_the_newest_left() {
    let (app, _root, folder) = spawn_watching_app().await;
    let newer = drop_version(&folder, "2.0.0", None);
    wait_for_version(&app, "2.0.0").await;
    std::fs::remove_dir_all(newer).expect("remove the version");
    wait_for_version(&app, "1.0.0").await;
    assert_eq!(app.get("/model").await.body["version"], "1.0.0");
}

#[tokio::test]
async fn bad_versions_are_refused_one_line_each_and_the_good_one_keeps_serving() {
    let (app, _root, folder) = spawn_watching_app().await;
    // A 1 GB model file (sparse: no disk used), refused unread.
    let huge = drop_version(&folder, "3.0.0", None);
    std::fs::File::options()
        .write(true)
        .open(huge.join("model.onnx"))
        .and_then(|f| f.set_len(1 << 30))
        .expect("grow model.onnx");
    let deadline = Instant::now() + Duration::from_secs(20);
    while failed_loads(&app).await < 1.0 {
        assert!(Instant::now() < deadline, "the 1 GB model was not refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A symlink loop and a manifest naming another version: reported, never served.
    std::os::unix::fs::symlink(folder.join("loop"), folder.join("loop")).expect("symlink");
    let misnamed = drop_version(&folder, "4.0.0", None);
    std::fs::rename(&misnamed, folder.join("5.0.0")).expect("rename");
    // A version without its model file.
    let missing = drop_version(&folder, "3.5.0", None);
    std::fs::remove_file(missing.join("model.onnx")).expect("remove");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let r = app
        .post_predict(&json!({"features": named_row(&samples()[0].0)}))
        .await;
    assert_eq!((r.status, r.body["version"].clone()), (200, json!("1.0.0")));
    let errors: Vec<String> = LOGS
        .lines()
        .into_iter()
        .filter(|l| l["level"] == 50)
        .filter_map(|l| l["error.message"].as_str().map(str::to_owned))
        .filter(|m| m.contains(folder.to_str().expect("utf-8 path")))
        .collect();
    let count = |needle: &str| errors.iter().filter(|m| m.contains(needle)).count();
    assert_eq!(count("over model.max_model_bytes"), 1, "{errors:#?}");
    assert_eq!(count("symbolic links"), 1, "{errors:#?}");
    assert_eq!(count("its folder is named \"5.0.0\""), 1, "{errors:#?}");
    assert_eq!(count("3.5.0/model.onnx"), 1, "{errors:#?}");
    assert_eq!(
        failed_loads(&app).await,
        2.0,
        "the 1 GB model and the missing file"
    );

    let listed = app.get("/models").await;
    let versions = listed.body["models"][0]["versions"]
        .as_array()
        .expect("versions")
        .clone();
    let state = |version: &str| {
        versions.iter().find(|v| v["version"] == version).map(|v| {
            (
                v["state"].as_str().unwrap_or("?").to_owned(),
                v["reason"].clone(),
            )
        })
    };
    assert_eq!(state("1.0.0").map(|s| s.0), Some("ready".into()));
    let (huge_state, why) = state("3.0.0").expect("listed");
    assert_eq!(huge_state, "failed");
    assert!(
        why.as_str()
            .is_some_and(|w| w.contains("over model.max_model_bytes")),
        "{why}"
    );
    let (missing_state, why) = state("3.5.0").expect("listed");
    assert_eq!(missing_state, "failed");
    assert!(
        why.as_str().is_some_and(|w| w.contains("3.5.0/model.onnx")),
        "{why}"
    );
    let (misnamed, why) = state("5.0.0").expect("listed");
    assert_eq!(misnamed, "failed");
    assert!(
        why.as_str()
            .is_some_and(|w| w.contains("says version \"4.0.0\"")),
        "{why}"
    );
    assert_eq!(state("loop").map(|s| s.0), Some("failed".into()));
}

#[tokio::test]
async fn a_missing_model_folder_fails_the_first_load_with_one_clear_error() {
    let (_app, loader) =
        spawn_unloaded_app_with(|s| s.model.repository = "/nonexistent/models".into()).await;
    let e = loader.load().await.expect_err("no repository");
    assert!(
        e.to_string()
            .contains("cannot list the model repository /nonexistent/models"),
        "{e}"
    );
    let empty = tempfile::tempdir().expect("tempdir");
    let repository = empty.path().to_path_buf();
    let (_app, loader) = spawn_unloaded_app_with(move |s| s.model.repository = repository).await;
    let e = loader.load().await.expect_err("empty repository");
    assert!(
        e.to_string()
            .contains("the default model \"breast-cancer\" has no folder there"),
        "{e}"
    );
    std::fs::create_dir(empty.path().join("breast-cancer")).expect("mkdir");
    let e = loader
        .load()
        .await
        .expect_err("a model folder without a version");
    assert!(e.to_string().contains("no model version"), "{e}");
}

/// Copies the bundled model into `repository/<name>`, renamed `name` in its manifest.
fn add_model(repository: &Path, name: &str) {
    let hidden = repository.join(format!(".{name}.tmp"));
    std::fs::create_dir(&hidden).expect("mkdir");
    let mut manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(bundle_dir().join("model.json")).expect("manifest"),
    )
    .expect("json");
    manifest["name"] = json!(name);
    std::fs::write(hidden.join("model.json"), manifest.to_string()).expect("write");
    for file in ["model.onnx", "samples.csv"] {
        std::fs::copy(bundle_dir().join(file), hidden.join(file)).expect("copy");
    }
    std::fs::rename(&hidden, repository.join(name)).expect("rename into place");
}

async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let res = app
        .client
        .post(format!("{}{path}", app.address))
        .json(body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_model_of_the_repository_is_served_and_new_ones_appear_while_serving() {
    let (app, root, _folder) = spawn_watching_app().await;
    let row = json!({"features": named_row(&samples()[0].0)});
    let (status, body) = post(&app, "/models/second/predict", &row).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "unknown_model");

    // A model folder dropped into the repository is served within a few polls.
    add_model(root.path(), "second");
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let (status, body) = post(&app, "/models/second/predict", &row).await;
        if status == 200 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "second not served: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (&answer["model"], &answer["version"]),
        (&json!("second"), &json!("1.0.0"))
    );
    // The default model is unchanged; /predict and its named route agree.
    let default = app.post_predict(&row).await;
    assert_eq!(default.body["model"], "breast-cancer");
    let (status, named) = post(&app, "/models/breast-cancer/predict", &row).await;
    assert_eq!(
        (status, &named["predictions"]),
        (200, &default.body["predictions"])
    );
    let (status, _) = post(&app, "/models/second/versions/1.0.0/predict", &row).await;
    assert_eq!(status, 200);
    let (status, body) = post(&app, "/models/second/versions/2.0.0/predict", &row).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("serves \"1.0.0\"")),
        "{body}"
    );
    // V2 serves it by name too.
    let v2 = json!({"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP64",
        "data": samples()[0].0}]});
    let (status, body) = post(&app, "/v2/models/second/infer", &v2).await;
    assert_eq!(
        (status, &body["model_name"]),
        (200, &json!("second")),
        "{body}"
    );

    // Feedback goes to the model that predicted.
    let label = samples()[0].1.clone();
    let id = answer["request_id"].as_str().expect("request id");
    let fb = json!({"request_id": id, "label": label, "model": "second"});
    let (status, body) = post(&app, "/feedback", &fb).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = post(
        &app,
        "/feedback",
        &json!({"request_id": id, "label": label}),
    )
    .await;
    assert_eq!(status, 404, "the default model made no such prediction");

    // Each model has its own series.
    let metrics = app.metrics().await;
    for series in [
        "inference_model_info{model=\"second\",version=\"1.0.0\"} 1",
        "inference_model_info{model=\"breast-cancer\",version=\"1.0.0\"} 1",
        "inference_model_loads_total{model=\"second\",outcome=\"loaded\"} 1",
        "inference_drift_window_rows{model=\"second\"}",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    let feedback = "inference_feedback_total{model=\"second\",outcome=";
    assert!(metrics.contains(feedback), "{metrics}");
    let listed = app.get("/models").await.body;
    let names: Vec<(&str, bool)> = listed["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| (m["name"].as_str().unwrap_or("?"), m["default"] == true))
        .collect();
    assert_eq!(names, vec![("breast-cancer", true), ("second", false)]);

    // A model folder removed: no longer served, its series that say so are gone.
    std::fs::remove_dir_all(root.path().join("second")).expect("remove");
    let deadline = Instant::now() + Duration::from_secs(20);
    while post(&app, "/models/second/predict", &row).await.0 != 404 {
        assert!(Instant::now() < deadline, "second still served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = app.metrics().await;
    for gone in [
        "inference_model_info{model=\"second\"",
        "inference_drift_window_rows{model=\"second\"",
        "inference_model_validation_score{model=\"second\"",
        "inference_model_trained_timestamp_seconds{model=\"second\"",
    ] {
        assert!(!metrics.contains(gone), "{gone} still exposed:\n{metrics}");
    }
    assert_eq!(
        app.get("/models").await.body["models"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(app.post_predict(&row).await.status, 200);
}

#[tokio::test]
async fn the_default_models_folder_gone_keeps_its_version_serving_and_the_others_watched() {
    let (app, root, folder) = spawn_watching_app().await;
    std::fs::rename(&folder, root.path().join(".breast-cancer.old")).expect("move away");
    add_model(root.path(), "second");
    let row = json!({"features": named_row(&samples()[0].0)});
    let deadline = Instant::now() + Duration::from_secs(20);
    while post(&app, "/models/second/predict", &row).await.0 != 200 {
        assert!(Instant::now() < deadline, "a new model is still picked up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = app.post_predict(&row).await;
    assert_eq!((r.status, &r.body["model"]), (200, &json!("breast-cancer")));
    let root_path = root.path().display().to_string();
    let logged = LOGS
        .lines()
        .into_iter()
        .filter(|l| {
            l["error.message"].as_str().is_some_and(|m| {
                m.starts_with(&root_path) && m.contains("\"breast-cancer\" has no folder there")
            })
        })
        .count();
    assert_eq!(logged, 1, "logged once, not at every look");
}
