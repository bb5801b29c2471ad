use crate::helpers::spawn_app;
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn health_answers_200() {
    let app = spawn_app().await;

    let response = app.get("/health").await;

    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn unknown_paths_are_404_and_counted_without_new_routes() {
    let app = spawn_app().await;

    let response = app.get("/nope").await;
    let scrape = app.scrape().await;

    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        scrape.get(
            "exporter_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        1.0
    );
}

/// `exporter healthcheck` (for docker HEALTHCHECK) exits 0 against a live exporter, 1 otherwise.
#[tokio::test]
async fn healthcheck_subcommand_reports_liveness_by_exit_code() {
    let app = spawn_app().await;
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let run = |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_exporter"))
            .args(["healthcheck", "--timeout-seconds", "2"])
            .env("APP_SERVER__HOST", "127.0.0.1")
            .env("APP_SERVER__PORT", port.to_string())
            .output()
            .expect("exporter binary runs")
    };

    let live = tokio::task::spawn_blocking(move || run(app.port));
    let live = tokio::time::timeout(Duration::from_secs(10), live)
        .await
        .expect("in time")
        .expect("joined");
    let dead = run(closed_port);

    assert!(live.status.success(), "{live:?}");
    assert_eq!(dead.status.code(), Some(1), "{dead:?}");
    assert!(String::from_utf8_lossy(&dead.stderr).contains("unhealthy"));
}
