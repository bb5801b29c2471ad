//! The binary as a user runs it: listing, JSON report, exit statuses, signals, healthcheck.

use crate::helpers::{StubOptions, assert_totals_add_up, bundle_dir, spawn_stub};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use traffic_gen::report::{Report, StopReason};

fn traffic_gen(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_traffic-gen"));
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `traffic-gen run --bundle <repo bundle> <args>`, waited for off the async runtime.
async fn run_binary(args: &[&str]) -> Output {
    let bundle = bundle_dir();
    let mut argv = vec!["run", "--bundle", bundle.to_str().expect("utf-8")];
    argv.extend_from_slice(args);
    let mut cmd = traffic_gen(&argv);
    tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("joins")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[test]
fn scenarios_lists_every_builtin_on_one_line() {
    let out = traffic_gen(&["scenarios"]).output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "steady", "batch", "ramp", "spike", "errors", "drift", "mixed", "mislabel"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_report_parses_adds_up_and_the_error_ratio_sets_the_exit_status() {
    let stub = spawn_stub(StubOptions::default()).await;

    let failing = run_binary(&[
        "-t",
        &stub.address,
        "-s",
        "errors",
        "-r",
        "300",
        "-n",
        "300",
        "--seed",
        "4",
        "-o",
        "json",
        "--max-error-ratio",
        "0.05",
    ])
    .await;
    let passing = run_binary(&[
        "-t",
        &stub.address,
        "-s",
        "steady",
        "-r",
        "300",
        "-n",
        "300",
        "-o",
        "json",
        "--max-error-ratio",
        "0",
    ])
    .await;

    assert_eq!(failing.status.code(), Some(3), "{failing:?}");
    let stderr = String::from_utf8_lossy(&failing.stderr);
    assert!(stderr.contains("above --max-error-ratio 0.05"), "{stderr}");
    let report: Report = serde_json::from_slice(&failing.stdout).expect("JSON report");
    assert_eq!((report.sent, report.completed, report.seed), (300, 300, 4));
    assert_eq!(report.stopped_by, StopReason::Requests);
    assert!(
        report.error_ratio > 0.2 && report.error_ratio < 0.4,
        "{}",
        report.error_ratio
    );
    assert_totals_add_up(&report);

    assert_eq!(passing.status.code(), Some(0), "{passing:?}");
    let report: serde_json::Value = serde_json::from_slice(&passing.stdout).expect("JSON");
    assert_eq!(report["errors"], 0);
    assert_eq!(report["status_codes"]["200"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_ready_waits_for_the_model_and_gives_up_with_a_message() {
    let stub = spawn_stub(StubOptions {
        ready_after: Duration::from_millis(1500),
        ..StubOptions::default()
    })
    .await;
    let started = Instant::now();

    let impatient = run_binary(&["-t", &stub.address, "-n", "5", "--wait-ready", "300ms"]).await;
    let patient = run_binary(&[
        "-t",
        &stub.address,
        "-n",
        "5",
        "-o",
        "json",
        "--wait-ready",
        "10s",
    ])
    .await;

    assert_eq!(impatient.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&impatient.stderr);
    assert!(
        stderr.contains("was not ready within 300ms (last: it answered 503)"),
        "{stderr}"
    );
    assert_eq!(patient.status.code(), Some(0), "{patient:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let report: Report = serde_json::from_slice(&patient.stdout).expect("JSON report");
    assert_eq!(report.completed, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_fails_fast_with_a_clear_message() {
    let target = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();

    let out = run_binary(&["-t", &target, "-d", "10s"]).await;

    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the inference API at {target}/")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_run_early_with_a_report_and_healthcheck_follows_the_metrics_server() {
    let stub = spawn_stub(StubOptions::default()).await;
    let port = free_port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let bundle = bundle_dir();
    let child = traffic_gen(&[
        "run",
        "--bundle",
        bundle.to_str().expect("utf-8"),
        "-t",
        &stub.address,
        "-s",
        "steady",
        "-r",
        "50",
        "-d",
        "60s",
        "-o",
        "json",
        "--metrics-addr",
        &metrics_addr,
    ])
    .spawn()
    .expect("starts");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let healthy = traffic_gen(&["healthcheck", "--addr", &metrics_addr])
        .output()
        .expect("runs");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let mut out = child.wait_with_output().expect("waits");
        out.stderr.clear();
        out
    })
    .await
    .expect("joins");
    let unhealthy = traffic_gen(&["healthcheck", "--addr", &metrics_addr])
        .output()
        .expect("runs");

    assert!(healthy.status.success(), "{healthy:?}");
    assert!(killed.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(0));
    let report: Report = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report.stopped_by, StopReason::Signal);
    // About 1.5 s at 50/s, far from the 3000 a full minute would send.
    assert!((40..=150).contains(&report.sent), "{}", report.sent);
    assert_totals_add_up(&report);
    assert_eq!(unhealthy.status.code(), Some(1));
}

#[test]
fn a_bundle_whose_samples_have_no_feature_columns_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("samples.csv"), "label\nbenign\nmalignant\n")
        .expect("samples written");
    let bundle = dir.path().to_str().expect("utf-8");

    let out = traffic_gen(&["run", "--bundle", bundle, "-s", "errors", "-n", "10"])
        .output()
        .expect("runs");

    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: the model bundle {bundle}: its samples have no feature columns"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());
}
