use crate::helpers::{spawn_app, spawn_unloaded_app_with};

#[tokio::test]
async fn ready_is_503_until_the_model_is_loaded_and_health_is_always_200() {
    let (app, loader) = spawn_unloaded_app_with(|_| {}).await;
    assert_eq!(app.get("/health").await.status, 200);
    let r = app.get("/ready").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["error"]["code"], "not_ready");

    loader.load().await.expect("load");
    let r = app.get("/ready").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["model"], "breast-cancer");
    assert_eq!(app.get("/health").await.status, 200);
}

#[tokio::test]
async fn the_root_describes_the_service_and_model_serves_the_manifest_without_statistics() {
    let app = spawn_app().await;
    let root = app.get("/").await;
    assert_eq!(root.status, 200);
    assert_eq!(root.body["service"], "inference-api");
    assert_eq!(root.body["model"]["name"], "breast-cancer");
    assert!(
        root.body["endpoints"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["path"] == "/predict"))
    );

    let model = app.get("/model").await;
    assert_eq!(model.status, 200);
    assert_eq!(model.body["features"].as_array().map(Vec::len), Some(30));
    assert_eq!(
        model.body["classes"],
        serde_json::json!(["malignant", "benign"])
    );
    assert!(model.body["validation"]["scores"]["accuracy"].is_number());
    assert!(model.body["training"].get("feature_stats").is_none());
}
