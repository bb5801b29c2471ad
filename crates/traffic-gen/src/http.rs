//! How a request goes over the wire: `--target`, the one `reqwest` client of a run, and the
//! outcome of an exchange (an HTTP status, or why none came).
//!
//! The client speaks HTTP/1.1 with keep-alive, pools up to `--max-in-flight` idle connections,
//! never looks up a proxy, and bounds every exchange, connect to last body byte, by `--timeout`.
//!
//! An early answer, the API's 413 for an oversized body (refused from `Content-Length`, with
//! `Connection: close`, before the body is read), is recorded as that status: hyper reads while
//! it writes and hands the response over as soon as its head has arrived, and the API (actix)
//! keeps reading and discarding the rest of the body for up to its client-disconnect timeout
//! (1 s) before closing, so the body goes out whole and the exchange ends normally. A refusal
//! whose own body is then cut short still counts as its status ([`HttpClient::send_with_id`]).
//! A server that resets the connection at once can make hyper report the write error instead
//! of a response it never read: that is recorded as the transport error it is.

use crate::report::Failure;
use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use std::time::Duration;

/// `--target`: an `http://host[:port][/base]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    host: String,
    port: u16,
    /// Ends with `/`.
    base_path: String,
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = match s.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(format!("`{s}`: only http:// is supported, not {scheme}://"));
            }
            None => return Err(format!("`{s}` needs a scheme, e.g. http://{s}")),
        };
        if rest.contains(['?', '#', '@']) || rest.chars().any(|c| c.is_whitespace()) {
            return Err(format!(
                "`{s}`: a target is http://host[:port][/path], nothing more"
            ));
        }
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("`{s}`: bad port `{port}`"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("`{s}` has no host"));
        }
        let mut base_path = path.to_owned();
        if !base_path.ends_with('/') {
            base_path.push('/');
        }
        let target = Self {
            host: host.to_owned(),
            port,
            base_path,
        };
        // What the client will request must be a URL.
        target.endpoint_url("")?;
        Ok(target)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.base_path)
    }
}

impl Target {
    /// The full URL of `path` (relative, e.g. `predict`), for messages.
    pub fn url(&self, path: &str) -> String {
        format!("{self}{path}")
    }

    fn endpoint_url(&self, path: &str) -> Result<Url, String> {
        let full = self.url(path);
        Url::parse(&full).map_err(|e| format!("`{full}` is not a valid URL: {e}"))
    }
}

/// Why a request got no HTTP status, with the whole cause chain.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub failure: Failure,
    pub message: String,
}

/// A method and URL below the target, resolved once.
#[derive(Clone, Debug)]
pub struct Route {
    method: Method,
    url: Url,
}

/// The run's HTTP client for one target. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    target: Target,
    timeout: Duration,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl HttpClient {
    /// One client for the whole run: HTTP/1.1 only, up to `max_in_flight` idle keep-alive
    /// connections, no proxy, `timeout` for each whole exchange (connect: at most 5 s of it).
    pub fn new(target: Target, max_in_flight: usize, timeout: Duration) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .http1_only()
            .no_proxy()
            .pool_max_idle_per_host(max_in_flight)
            .tcp_nodelay(true)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()?;
        Ok(Self {
            client,
            target,
            timeout,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// `method` on `path` below the target's base path (e.g. `POST`, `predict`).
    pub fn route(&self, method: Method, path: &str) -> Result<Route, String> {
        Ok(Route {
            method,
            url: self.target.endpoint_url(path)?,
        })
    }

    /// Sends one request and returns its status once the whole response has arrived, within
    /// `timeout` (default: the client's).
    pub async fn send(
        &self,
        route: &Route,
        content_type: Option<&'static str>,
        body: Bytes,
        timeout: Option<Duration>,
    ) -> Result<u16, SendError> {
        self.send_with_id(route, content_type, body, timeout, None)
            .await
    }

    /// [`Self::send`] with an `X-Request-Id` header.
    ///
    /// A success counts only when its whole body has arrived. A refusal (any other status)
    /// counts as soon as its head has been read: a server that refused a request may close the
    /// connection while the request body is still going out, and that does not undo the answer
    /// it gave. A timeout is a timeout either way.
    pub async fn send_with_id(
        &self,
        route: &Route,
        content_type: Option<&'static str>,
        body: Bytes,
        timeout: Option<Duration>,
        request_id: Option<&str>,
    ) -> Result<u16, SendError> {
        let limit = timeout.unwrap_or(self.timeout);
        let mut request = self.client.request(route.method.clone(), route.url.clone());
        if let Some(ct) = content_type {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        if let Some(id) = request_id {
            request = request.header(REQUEST_ID, id);
        }
        if !body.is_empty() || content_type.is_some() {
            request = request.body(body);
        }
        if timeout.is_some() {
            request = request.timeout(limit);
        }
        let mut response = request.send().await.map_err(|e| failed(&e, limit))?;
        let status = response.status();
        // Read the whole body, so the connection goes back to the pool and the latency covers
        // the full response.
        loop {
            match response.chunk().await {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(status.as_u16()),
                Err(e) if status.is_success() || e.is_timeout() => return Err(failed(&e, limit)),
                Err(e) => {
                    tracing::debug!(%status, error = %chain(&e), "a refusal's body was cut short");
                    return Ok(status.as_u16());
                }
            }
        }
    }
}

/// The failure class of a request that got no response.
fn failed(e: &reqwest::Error, limit: Duration) -> SendError {
    // A connect that timed out is a connect error (its message says it timed out).
    let (failure, message) = if e.is_connect() {
        (Failure::Connect, chain(e))
    } else if e.is_timeout() {
        (
            Failure::Timeout,
            format!(
                "no response within {} ({})",
                humantime::format_duration(limit),
                chain(e)
            ),
        )
    } else {
        (Failure::Transport, chain(e))
    };
    SendError { failure, message }
}

/// An error and all its causes, `outer: inner: innermost`.
fn chain(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_http_urls_with_a_base_path() {
        let t: Target = "http://inference-api:8000".parse().expect("valid");
        assert_eq!(t.to_string(), "http://inference-api:8000/");
        assert_eq!(t.url("predict"), "http://inference-api:8000/predict");
        let t: Target = "http://127.0.0.1/api".parse().expect("valid");
        assert_eq!(t.url("health"), "http://127.0.0.1:80/api/health");
        assert!("https://x".parse::<Target>().is_err());
        assert!("localhost:8000".parse::<Target>().is_err());
        assert!("http://x/?a=1".parse::<Target>().is_err());
        assert!("http://:80".parse::<Target>().is_err());
        assert!("http://x:http".parse::<Target>().is_err());
        assert!("http://bad_host%:80".parse::<Target>().is_err());
        let t: Target = "HTTP://[::1]:9000/v1/".parse().expect("valid");
        assert_eq!(t.url("predict"), "http://[::1]:9000/v1/predict");
    }

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// A scripted server: `script(stream)` runs for each accepted connection.
    async fn server<F, Fut>(script: F) -> (HttpClient, Arc<AtomicUsize>)
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(script(stream));
            }
        });
        let target: Target = format!("http://127.0.0.1:{port}").parse().expect("target");
        let client = HttpClient::new(target, 4, Duration::from_secs(5)).expect("client");
        (client, accepted)
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    /// Reads one request head (and `body` bytes after it) from `stream`.
    async fn read_request(stream: &mut TcpStream, body: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        loop {
            if let Some(i) = find(&buf, b"\r\n\r\n")
                && buf.len() >= i + 4 + body
            {
                return buf;
            }
            let mut chunk = [0u8; 65536];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return buf,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn post(client: &HttpClient) -> Route {
        client.route(Method::POST, "predict").expect("route")
    }

    #[tokio::test]
    async fn reads_chunked_and_sized_bodies_over_one_kept_alive_connection() {
        let (client, accepted) = server(|mut s| async move {
            let request = read_request(&mut s, 2).await;
            let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
            assert!(text.starts_with("post /predict http/1.1\r\n"), "{text}");
            assert!(
                text.contains("content-type: application/json\r\n"),
                "{text}"
            );
            assert!(text.contains("content-length: 2\r\n"), "{text}");
            assert!(text.ends_with("\r\n\r\n{}"), "{text}");
            let chunked =
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
            s.write_all(chunked).await.expect("write");
            read_request(&mut s, 2).await;
            s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc")
                .await
                .expect("write");
            read_request(&mut s, 0).await;
        })
        .await;
        let route = post(&client);
        let body = Bytes::from_static(b"{}");
        let first = client
            .send(&route, Some("application/json"), body.clone(), None)
            .await;
        let second = client
            .send(&route, Some("application/json"), body, None)
            .await;
        assert_eq!((first.expect("200"), second.expect("201")), (200, 201));
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced() {
        let (client, accepted) = server(|mut s| async move {
            read_request(&mut s, 0).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .expect("write");
            // Then close, as a server's keep-alive timeout would.
        })
        .await;
        let route = client.route(Method::GET, "health").expect("route");
        for _ in 0..3 {
            let status = client.send(&route, None, Bytes::new(), None).await;
            assert_eq!(status.expect("answered"), 200);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_answer_before_the_body_is_sent_is_recorded_as_its_status() {
        // Refuse from the head, as the API does, then (as actix does) read and discard what
        // still arrives for a while before closing.
        let (client, _) = server(|mut s| async move {
            read_request(&mut s, 0).await;
            let refusal =
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
            s.write_all(refusal).await.expect("write");
            let mut sink = vec![0u8; 65536];
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Ok(n) = s.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        })
        .await;
        // Far more than the socket buffers hold: the answer comes while the body is going out.
        let big = Bytes::from(vec![b'x'; 16 * 1024 * 1024]);
        for _ in 0..3 {
            let status = client
                .send(&post(&client), Some("application/json"), big.clone(), None)
                .await;
            assert_eq!(status.expect("answered"), 413);
        }
    }

    #[tokio::test]
    async fn a_refusal_cut_short_keeps_its_status_and_a_success_cut_short_is_a_transport_error() {
        let (client, _) = server(|mut s| async move {
            let request = read_request(&mut s, 0).await;
            let status = if request.starts_with(b"POST") {
                413
            } else {
                200
            };
            let head = format!("HTTP/1.1 {status} X\r\nContent-Length: 100\r\n\r\nten bytes.");
            s.write_all(head.as_bytes()).await.expect("write");
        })
        .await;
        let refused = client
            .send(&post(&client), Some("application/json"), Bytes::new(), None)
            .await;
        assert_eq!(refused.expect("a refusal is an answer"), 413);
        let health = client.route(Method::GET, "health").expect("route");
        let cut = client
            .send(&health, None, Bytes::new(), None)
            .await
            .expect_err("a success is only one whole");
        assert_eq!(cut.failure, Failure::Transport, "{cut}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout_and_a_closed_port_a_connect_error() {
        let (client, _) = server(|mut s| async move {
            read_request(&mut s, 0).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let route = client.route(Method::GET, "health").expect("route");
        let err = client
            .send(&route, None, Bytes::new(), Some(Duration::from_millis(200)))
            .await
            .expect_err("times out");
        assert_eq!(err.failure, Failure::Timeout);
        assert!(
            err.to_string().starts_with("no response within 200ms"),
            "{err}"
        );

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let target: Target = format!("http://127.0.0.1:{port}").parse().expect("target");
        let closed = HttpClient::new(target, 1, Duration::from_secs(2)).expect("client");
        let route = closed.route(Method::GET, "health").expect("route");
        let err = closed
            .send(&route, None, Bytes::new(), None)
            .await
            .expect_err("refused");
        assert_eq!(err.failure, Failure::Connect);
        assert!(err.to_string().contains("Connection refused"), "{err}");
    }
}
