//! What a hostile client tried, and what it must get: each case is a finding of the attack on
//! the API (docs/security.md), kept as a regression test.

use crate::helpers::{sample, samples, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn valid_row() -> Vec<f64> {
    samples()[0].0.clone()
}

/// Sends `head` (request line and headers, without the blank line) and `body` on a new
/// connection, half-closes it and reads the whole answer: (status, JSON body).
async fn raw_exchange(port: u16, head: &str, body: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .expect("head");
    s.write_all(body).await.expect("body");
    s.shutdown().await.expect("half-close");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    parse_response(&answer)
}

fn parse_response(answer: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn compressed_bodies_are_refused_unread_and_unknown_encodings_too() {
    let app = spawn_app().await;
    let plain = json!({"features": valid_row()}).to_string();
    for encoding in ["gzip", "deflate", "br", "zstd", "foo", "identity, gzip"] {
        // The bytes do not matter: the answer is decided on the header, before the body is read.
        let (status, body) = raw_exchange(
            app.port,
            &format!(
                "POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                 Content-Encoding: {encoding}\r\nContent-Length: {}",
                plain.len()
            ),
            plain.as_bytes(),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (415, "unsupported_media_type"),
            "{encoding}: {body}"
        );
    }
    // `identity` is no encoding at all.
    let (status, body) = raw_exchange(
        app.port,
        &format!(
            "POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Content-Encoding: identity\r\nContent-Length: {}",
            plain.len()
        ),
        plain.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        app.metric(r#"inference_errors_total{route="/predict",kind="unsupported_media_type"}"#)
            .await,
        Some(6.0)
    );
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let app = spawn_app_with(|s| s.limits.max_body_bytes = 4096).await;
    let mut s = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    s.write_all(
        b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
          Content-Length: 1073741824\r\n\r\n{\"features\": [",
    )
    .await
    .expect("write");
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut answer))
        .await
        .expect("413 without waiting for the body")
        .expect("read");
    let (status, body) = parse_response(&answer[..n]);
    assert_eq!((status, code(&body)), (413, "payload_too_large"), "{body}");
}

#[tokio::test]
async fn a_stalled_or_trickling_body_gets_408_and_holds_no_admission_slot() {
    let app = spawn_app_with(|s| {
        s.limits.max_in_flight = 2;
        s.limits.body_read_timeout_seconds = 30.0;
        s.limits.body_min_bytes_per_second = 1000;
    })
    .await;
    let head = "POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n";
    // 20 stalled senders (10x the admission slots) and one that trickles a byte every 200 ms.
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(("127.0.0.1", app.port))
            .await
            .expect("connect");
        s.write_all(format!("{head}{{\"features\": [").as_bytes())
            .await
            .expect("write");
        stalled.push(s);
    }
    let trickle = tokio::spawn({
        let port = app.port;
        async move {
            let mut s = TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            s.write_all(head.as_bytes()).await.expect("write");
            let started = Instant::now();
            let mut answer = Vec::new();
            loop {
                if s.write_all(b" ").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut buf = [0; 1024];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await
                {
                    answer.extend_from_slice(&buf[..n]);
                    break;
                }
                if started.elapsed() > Duration::from_secs(20) {
                    break;
                }
            }
            (started.elapsed(), answer)
        }
    });

    // Meanwhile other clients are served as usual.
    for _ in 0..10 {
        let r = app.post_predict(&json!({"features": valid_row()})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    // Every stalled sender gets 408 shortly after the first two seconds (and the connection closes).
    for mut s in stalled {
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer))
            .await
            .expect("the stalled request is answered and closed")
            .expect("read");
        let (status, body) = parse_response(&answer);
        assert_eq!((status, code(&body)), (408, "body_timeout"), "{body}");
    }
    let (took, answer) = trickle.await.expect("trickle");
    let (status, body) = parse_response(&answer);
    assert_eq!((status, code(&body)), (408, "body_timeout"), "{body}");
    assert!(
        took < Duration::from_secs(5),
        "a byte per 200 ms lasted {took:?}"
    );
    let text = app.metrics().await;
    assert_eq!(
        sample(
            &text,
            r#"inference_errors_total{route="/predict",kind="body_timeout"}"#
        ),
        Some(21.0)
    );
}

#[tokio::test]
async fn a_body_cut_short_gets_a_plain_message_without_internal_detail() {
    let app = spawn_app().await;
    let (status, body) = raw_exchange(
        app.port,
        "POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 500",
        b"{\"features\": [1, 2",
    )
    .await;
    assert_eq!((status, code(&body)), (400, "malformed_json"), "{body}");
    assert_eq!(
        body["error"]["message"],
        "the body is not valid JSON: the body ended before it was complete",
        "{body}"
    );
}

#[tokio::test]
async fn a_percent_encoded_path_is_counted_under_the_route_that_served_it() {
    let app = spawn_app().await;
    let plain = json!({"features": valid_row()}).to_string();
    let (status, body) = raw_exchange(
        app.port,
        &format!(
            "POST /%70redict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}",
            plain.len()
        ),
        plain.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let text = app.metrics().await;
    assert_eq!(
        sample(
            &text,
            r#"inference_http_requests_total{route="/predict",method="POST",status="200"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains(r#"route="unmatched""#), "{text}");
}

/// Requests actix-web's HTTP/1 parser refuses never reach the app: they get its own empty 400 or
/// 431 (not the documented error body: actix-http has no hook for it), and are counted in
/// `inference_http_protocol_errors_total` instead of being logged at ERROR.
#[tokio::test]
async fn requests_the_http_parser_refuses_are_counted() {
    let app = spawn_app().await;
    let many_headers: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases = [
        (
            "POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: abc".to_owned(),
            400,
        ),
        (
            "POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked"
                .to_owned(),
            400,
        ),
        (
            format!(
                "GET /health HTTP/1.1\r\nHost: t\r\n{}",
                many_headers.trim_end()
            ),
            431,
        ),
    ];
    for (head, want) in &cases {
        let (status, _) = raw_exchange(app.port, head, b"").await;
        assert_eq!(status, *want, "{head}");
    }
    let text = app.metrics().await;
    assert_eq!(
        sample(&text, "inference_http_protocol_errors_total"),
        Some(cases.len() as f64),
        "{text}"
    );
}
