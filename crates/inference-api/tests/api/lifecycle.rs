use crate::helpers::{Binary, samples, test_settings};
use inference_api::startup::Application;
use serde_json::json;
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_missing_onnx_runtime_fails_startup_with_one_line_naming_the_script() {
    let mut settings = test_settings();
    settings.model.onnxruntime_path = "/nonexistent/libonnxruntime.so".into();
    let err = Application::build(settings).await.err().expect("must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("scripts/fetch-onnxruntime.sh"), "{msg}");
    assert!(msg.contains("/nonexistent/libonnxruntime.so"), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

#[test]
fn the_binary_logs_one_line_per_request_and_finishes_in_flight_work_on_sigterm() {
    let mut bin = Binary::spawn(&[]);
    let port = bin.next_log("listening")["port"].as_u64().expect("port") as u16;
    let loaded = bin.next_log("model loaded");
    assert_eq!(loaded["model"], "breast-cancer");
    assert_eq!(loaded["model_version"], "1.0.0");
    assert_eq!(loaded["onnxruntime_version"], "1.31.1");

    // A request whose body is still arriving when SIGTERM comes.
    let body = json!({"features": samples()[0].0}).to_string();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(conn, "POST /predict HTTP/1.1\r\nHost: t\r\nX-Request-Id: sigterm-1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).expect("write");
    conn.write_all(&body.as_bytes()[..10]).expect("write");
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-TERM", &bin.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(200));
    conn.write_all(&body.as_bytes()[10..])
        .expect("finish the body");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let log = bin.next_log("[HTTP REQUEST - EVENT] request completed");
    assert_eq!(log["request_id"], "sigterm-1");
    assert_eq!(log["route"], "/predict");
    assert_eq!(log["status"], 200);
    assert_eq!(log["model"], "breast-cancer");
    assert_eq!(log["rows"], 1);
    assert!(log["latency_seconds"].as_f64().is_some_and(|s| s > 0.0));
    assert!(
        !log.to_string().contains(&samples()[0].0[1].to_string()),
        "feature values logged: {log}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = bin.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
}
