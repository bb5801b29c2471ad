//! The HTTP/1.1 client of the hot path: keep-alive connections, one per in-flight request.
//!
//! Measured on this project's 2-core machine against a bare actix handler, with 64 connections:
//! reqwest reached ~70k req/s and hyper's connection API ~100k at one core, where wrk reached
//! ~140k; per request, both spent 3 to 4 us of user CPU (wrk: under 1 us) on machinery a load
//! tool does not need. A request here is one prepared write (request line, headers and, for
//! small bodies, the body in one buffer) and a read parsed by `httparse`, the parser hyper uses.
//! Big bodies are written while the response is read, so an early answer (413 before the body
//! is all sent) is recorded as that status rather than as a broken pipe.

use crate::report::Failure;
use bytes::Bytes;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
        Ok(Self {
            host: host.to_owned(),
            port,
            base_path,
        })
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

    fn origin_form(&self, path: &str) -> Result<String, String> {
        let full = format!("{}{path}", self.base_path);
        if full.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(full)
        } else {
            Err(format!("bad path {full:?}"))
        }
    }
}

/// Why a request got no HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection failed: {0}")]
    Io(std::io::Error),
    #[error("invalid response: {0}")]
    Protocol(String),
}

impl ClientError {
    pub fn failure(&self) -> Failure {
        match self {
            ClientError::Timeout(_) => Failure::Timeout,
            ClientError::Connect { .. } => Failure::Connect,
            ClientError::Io(_) | ClientError::Protocol(_) => Failure::Transport,
        }
    }
}

/// A failed exchange, and whether any of the response had arrived.
struct Fail {
    error: ClientError,
    answered: bool,
}

impl Fail {
    fn io(e: std::io::Error, answered: bool) -> Self {
        Self {
            error: ClientError::Io(e),
            answered,
        }
    }

    /// A kept-alive connection the server had already closed: the request never reached it.
    fn stale(&self) -> bool {
        use std::io::ErrorKind::*;
        !self.answered
            && matches!(&self.error, ClientError::Io(e)
                if matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof))
    }
}

struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
    /// The request being written (kept to reuse its allocation).
    wbuf: Vec<u8>,
}

struct Inner {
    target: Target,
    addr: String,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
    timeout: Duration,
    connect_timeout: Duration,
}

/// A pooled HTTP/1.1 client for one target. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

/// A prepared request line and `Host` header.
#[derive(Clone, Debug)]
pub struct Route {
    head: Bytes,
}

/// Bodies up to this size go out in the same write as the headers.
const INLINE_BODY: usize = 16 * 1024;
/// Most response headers parsed.
const MAX_HEADERS: usize = 32;

impl HttpClient {
    pub fn new(target: Target, max_idle: usize, timeout: Duration) -> Result<Self, String> {
        let addr = format!("{}:{}", target.host, target.port);
        Ok(Self {
            inner: Arc::new(Inner {
                target,
                addr,
                idle: Mutex::new(Vec::with_capacity(max_idle)),
                max_idle,
                timeout,
                connect_timeout: timeout.min(Duration::from_secs(5)),
            }),
        })
    }

    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    /// `method` on `path` below the target's base path (e.g. `POST`, `predict`).
    pub fn route(&self, method: &str, path: &str) -> Result<Route, String> {
        let path = self.inner.target.origin_form(path)?;
        Ok(Route {
            head: Bytes::from(format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\n",
                self.inner.addr
            )),
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
    ) -> Result<u16, ClientError> {
        self.send_with_id(route, content_type, body, timeout, None)
            .await
    }

    /// [`Self::send`] with an `X-Request-Id` header.
    pub async fn send_with_id(
        &self,
        route: &Route,
        content_type: Option<&'static str>,
        body: Bytes,
        timeout: Option<Duration>,
        request_id: Option<&str>,
    ) -> Result<u16, ClientError> {
        let limit = timeout.unwrap_or(self.inner.timeout);
        let exchange = self.exchange(route, content_type, body, request_id);
        match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout(limit)),
        }
    }

    async fn exchange(
        &self,
        route: &Route,
        content_type: Option<&'static str>,
        body: Bytes,
        request_id: Option<&str>,
    ) -> Result<u16, ClientError> {
        let inline = body.len() <= INLINE_BODY;
        let (mut conn, reused) = match self.pop_idle() {
            Some(conn) => (conn, true),
            None => (self.connect().await?, false),
        };
        // The connection's own write buffer, so a request costs no allocation.
        let mut head = std::mem::take(&mut conn.wbuf);
        head.clear();
        head.extend_from_slice(&route.head);
        if let Some(ct) = content_type {
            head.extend_from_slice(b"Content-Type: ");
            head.extend_from_slice(ct.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        if let Some(id) = request_id {
            head.extend_from_slice(b"X-Request-Id: ");
            head.extend_from_slice(id.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() || content_type.is_some() {
            // Writing into a Vec cannot fail.
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
        }
        head.extend_from_slice(b"\r\n");
        let rest: &[u8] = if inline {
            head.extend_from_slice(&body);
            &[]
        } else {
            &body
        };
        let result = match roundtrip(&mut conn, &head, rest).await {
            Err(fail) if reused && fail.stale() => {
                conn = self.connect().await?;
                roundtrip(&mut conn, &head, rest).await
            }
            other => other,
        };
        conn.wbuf = head;
        match result {
            Ok((status, keep_alive)) => {
                if keep_alive {
                    // The response is consumed and the server sends nothing unasked, yet tokio
                    // still marks the socket readable (only a read that would block clears it),
                    // so the next request's first read would be a wasted syscall answering
                    // EAGAIN. A closure reporting WouldBlock makes tokio drop that stale
                    // readiness without a syscall; a newer event (the server closing) is kept.
                    let _ = conn.stream.try_io(Interest::READABLE, || {
                        Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                    });
                    self.push_idle(conn);
                }
                Ok(status)
            }
            Err(fail) => Err(fail.error),
        }
    }

    fn pop_idle(&self) -> Option<Conn> {
        self.lock_idle().pop()
    }

    fn push_idle(&self, conn: Conn) {
        let mut idle = self.lock_idle();
        if idle.len() < self.inner.max_idle {
            idle.push(conn);
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        // The pool holds no invariant a panic could break.
        self.inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn connect(&self) -> Result<Conn, ClientError> {
        let addr = &self.inner.addr;
        let connect_error = |source| ClientError::Connect {
            addr: addr.clone(),
            source,
        };
        let stream = tokio::time::timeout(self.inner.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                connect_error(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                ))
            })?
            .map_err(connect_error)?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
            wbuf: Vec::with_capacity(2048),
        })
    }
}

/// Writes the request and reads one response: `(status, connection reusable)`.
async fn roundtrip(conn: &mut Conn, head: &[u8], rest: &[u8]) -> Result<(u16, bool), Fail> {
    conn.buf.clear();
    if rest.is_empty() {
        conn.stream
            .write_all(head)
            .await
            .map_err(|e| Fail::io(e, false))?;
        return read_response(&mut conn.stream, &mut conn.buf).await;
    }
    // A big body: read while writing, so an answer that comes before the body is all written
    // (the server refusing it) is recorded, and the connection is then dropped.
    let (mut reader, mut writer) = conn.stream.split();
    let write = async {
        writer.write_all(head).await?;
        writer.write_all(rest).await
    };
    let read = read_response(&mut reader, &mut conn.buf);
    tokio::pin!(write, read);
    let mut written: Option<std::io::Result<()>> = None;
    loop {
        tokio::select! {
            w = &mut write, if written.is_none() => written = Some(w),
            r = &mut read => {
                return match (r, written) {
                    (Ok((status, keep)), Some(Ok(()))) => Ok((status, keep)),
                    (Ok((status, _)), _) => Ok((status, false)),
                    (Err(fail), Some(Err(e))) if !fail.answered => Err(Fail::io(e, false)),
                    (Err(fail), _) => Err(fail),
                };
            }
        }
    }
}

/// Reads more bytes into `buf`; end of stream is an error.
async fn fill<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> Result<(), Fail> {
    buf.reserve(4096);
    let answered = !buf.is_empty();
    match reader.read_buf(buf).await {
        Ok(0) => Err(Fail::io(
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection before the response was complete",
            ),
            answered,
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(Fail::io(e, answered)),
    }
}

fn protocol(message: String) -> Fail {
    Fail {
        error: ClientError::Protocol(message),
        answered: true,
    }
}

/// How the response body is delimited.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// A parsed response head.
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    keep_alive: bool,
}

/// Parses a response head from the start of `buf`; `None` until it is complete. (Kept out of
/// the async code so the header array is not part of every request's future.)
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Fail> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(protocol(format!("unparsable response head: {e}"))),
    };
    let status = response.code.unwrap_or(0);
    let mut keep_alive = response.version == Some(1);
    let mut framing = Framing::UntilClose;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| protocol("bad Content-Length".into()))?;
            framing = Framing::Length(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value.eq_ignore_ascii_case(b"chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    if matches!(status, 204 | 304) {
        framing = Framing::Length(0);
    }
    Ok(Some(Head {
        status,
        len,
        framing,
        keep_alive,
    }))
}

/// Reads one response (skipping 1xx) and its whole body: `(status, connection reusable)`.
async fn read_response<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> Result<(u16, bool), Fail> {
    loop {
        let Head {
            status,
            len: head_len,
            framing,
            keep_alive,
        } = loop {
            match parse_head(buf)? {
                Some(head) => break head,
                None => fill(reader, buf).await?,
            }
        };
        if (100..200).contains(&status) {
            buf.drain(..head_len);
            continue;
        }
        match framing {
            Framing::Length(n) => {
                while buf.len() < head_len + n {
                    fill(reader, buf).await?;
                }
                let extra = buf.len() > head_len + n;
                buf.drain(..head_len + n);
                return Ok((status, keep_alive && !extra));
            }
            Framing::Chunked => {
                let mut at = head_len;
                loop {
                    match httparse::parse_chunk_size(&buf[at..]) {
                        Ok(httparse::Status::Complete((used, 0))) => {
                            // Last chunk, then optional trailers and an empty line.
                            let end = loop {
                                if let Some(i) = find(&buf[at + used..], b"\r\n\r\n") {
                                    break at + used + i + 4;
                                }
                                if buf[at + used..].starts_with(b"\r\n") {
                                    break at + used + 2;
                                }
                                fill(reader, buf).await?;
                            };
                            buf.drain(..end);
                            return Ok((status, keep_alive && buf.is_empty()));
                        }
                        Ok(httparse::Status::Complete((used, size))) => {
                            let next = at + used + size as usize + 2;
                            while buf.len() < next {
                                fill(reader, buf).await?;
                            }
                            at = next;
                        }
                        Ok(httparse::Status::Partial) => fill(reader, buf).await?,
                        Err(_) => return Err(protocol("bad chunk size".into())),
                    }
                }
            }
            Framing::UntilClose => loop {
                buf.clear();
                buf.reserve(4096);
                match reader.read_buf(buf).await {
                    Ok(0) => return Ok((status, false)),
                    Ok(_) => {}
                    Err(e) => return Err(Fail::io(e, true)),
                }
            },
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
        let t: Target = "HTTP://[::1]:9000/v1/".parse().expect("valid");
        assert_eq!(t.url("predict"), "http://[::1]:9000/v1/predict");
    }

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A scripted server: `script(connection index, stream)` runs for each accepted connection.
    async fn server<F, Fut>(script: F) -> (HttpClient, Arc<std::sync::atomic::AtomicUsize>)
    where
        F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(script(n, stream));
            }
        });
        let target: Target = format!("http://127.0.0.1:{port}").parse().expect("target");
        let client = HttpClient::new(target, 4, Duration::from_secs(5)).expect("client");
        (client, accepted)
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
        client.route("POST", "predict").expect("route")
    }

    #[tokio::test]
    async fn reads_chunked_and_sized_bodies_and_reuses_the_connection() {
        let (client, accepted) = server(|_, mut s| async move {
            let request = read_request(&mut s, 2).await;
            assert!(request.starts_with(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:"));
            assert!(find(&request, b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}").is_some());
            let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
            s.write_all(chunked).await.expect("write");
            read_request(&mut s, 2).await;
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc")
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
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced_transparently() {
        let (client, accepted) = server(|_, mut s| async move {
            read_request(&mut s, 0).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .expect("write");
            // Then close, as a server's keep-alive timeout would.
        })
        .await;
        let route = client.route("GET", "health").expect("route");
        for _ in 0..3 {
            let status = client.send(&route, None, Bytes::new(), None).await;
            assert_eq!(status.expect("answered"), 200);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Reused at once, the close may land before or after the client has dropped the socket's
        // read readiness; either way the next request notices and goes to a new connection.
        for _ in 0..20 {
            let status = tokio::time::timeout(
                Duration::from_secs(2),
                client.send(&route, None, Bytes::new(), None),
            )
            .await;
            assert_eq!(status.expect("no hang").expect("answered"), 200);
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 23);
    }

    #[tokio::test]
    async fn an_answer_before_the_body_is_sent_is_recorded_as_its_status() {
        let (client, _) = server(|_, mut s| async move {
            // Refuse after the head, as a server with a body limit does, then close gracefully
            // while discarding what still arrives.
            read_request(&mut s, 0).await;
            let refusal =
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            s.write_all(refusal).await.expect("write");
            let _ = s.shutdown().await;
            let mut sink = [0u8; 65536];
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                while let Ok(n) = s.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        })
        .await;
        let big = Bytes::from(vec![b'x'; 8 * 1024 * 1024]);
        let status = client
            .send(&post(&client), Some("application/json"), big, None)
            .await;
        assert_eq!(status.expect("answered"), 413);
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout_and_a_closed_port_a_connect_error() {
        let (client, _) = server(|_, mut s| async move {
            read_request(&mut s, 0).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let route = client.route("GET", "health").expect("route");
        let err = client
            .send(&route, None, Bytes::new(), Some(Duration::from_millis(200)))
            .await
            .expect_err("times out");
        assert_eq!(err.failure(), Failure::Timeout);

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let target: Target = format!("http://127.0.0.1:{port}").parse().expect("target");
        let closed = HttpClient::new(target, 1, Duration::from_secs(2)).expect("client");
        let route = closed.route("GET", "health").expect("route");
        let err = closed
            .send(&route, None, Bytes::new(), None)
            .await
            .expect_err("refused");
        assert_eq!(err.failure(), Failure::Connect);
        assert!(
            err.to_string().contains("cannot connect to 127.0.0.1:"),
            "{err}"
        );
    }
}
