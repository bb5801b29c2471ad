use crate::helpers::{manifest, spawn_app};
use inference_api::openapi::document;
use serde_json::Value;

/// `{name}` → the bundled model's name, `{version}` → its version; any other path parameter
/// needs an `example` in the document.
fn fill(template: &str, operation: &Value) -> String {
    let m = manifest();
    let mut path = template.to_owned();
    while let Some(start) = path.find('{') {
        let end = start + path[start..].find('}').expect("closing brace");
        let name = &path[start + 1..end];
        let example = operation["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .map(|p| p["example"].clone());
        let value = match (name, example) {
            (_, Some(Value::String(v))) => v,
            ("name", _) => m["name"].as_str().expect("name").to_owned(),
            ("version", _) => m["version"].as_str().expect("version").to_owned(),
            _ => panic!("{template}: give the path parameter {{{name}}} an example"),
        };
        path.replace_range(start..=end, &value);
    }
    path
}

#[tokio::test]
async fn the_document_is_served_and_every_operation_in_it_is_routed() {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.content_type.as_deref(), Some("application/json"));
    // What `inference-api openapi` prints, which scripts/check-openapi.sh validates.
    let printed: Value = serde_json::from_str(&document().expect("renders")).expect("JSON");
    assert_eq!(res.body, printed);
    let doc = res.body;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );

    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/predict") && paths.contains_key("/openapi.json"));
    for (template, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let path = fill(template, operation);
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes())
                .expect("an HTTP method");
            let mut req = app
                .client
                .request(method.clone(), format!("{}{path}", app.address));
            if operation.get("requestBody").is_some() {
                req = req.header("content-type", "application/json").body("{}");
            }
            let status = req.send().await.expect("request").status().as_u16();
            assert!(
                status != 404 && status != 405,
                "{method} {path} (documented as {template}) answered {status}"
            );
        }
    }
}
