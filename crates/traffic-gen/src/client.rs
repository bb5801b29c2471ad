//! The HTTP/1.1 client of the hot path, on hyper's connection API.
//!
//! reqwest (measured first) spent about a third of the generator's CPU on per-request work a
//! load tool does not need (URL handling, pool bookkeeping, client clones) and reached ~70% of
//! wrk's rate on the same endpoint. Here a request is: take an idle connection (or open one),
//! write a prepared request, read the status, drain the body, put the connection back. The pool
//! holds at most `max_idle` connections, which the executor sizes to `--max-in-flight`.

use crate::report::Failure;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
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
        let uri: Uri = s.parse().map_err(|e| format!("`{s}` is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(format!("`{s}`: only http:// is supported, not {other}://")),
            None => return Err(format!("`{s}` needs a scheme, e.g. http://{s}")),
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("`{s}` has no host"))?
            .to_owned();
        if uri.query().is_some() {
            return Err(format!("`{s}`: a target cannot have a query"));
        }
        let mut base_path = uri.path().to_owned();
        if !base_path.ends_with('/') {
            base_path.push('/');
        }
        Ok(Self {
            host,
            port: uri.port_u16().unwrap_or(80),
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

    fn origin_form(&self, path: &str) -> Result<Uri, String> {
        format!("{}{path}", self.base_path)
            .parse()
            .map_err(|e| format!("bad path {path}: {e}"))
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
    #[error("HTTP handshake with {addr} failed: {source}")]
    Handshake { addr: String, source: hyper::Error },
    #[error("{}", chain(.0))]
    Http(hyper::Error),
}

fn chain(e: &hyper::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

impl ClientError {
    pub fn failure(&self) -> Failure {
        match self {
            ClientError::Timeout(_) => Failure::Timeout,
            ClientError::Connect { .. } | ClientError::Handshake { .. } => Failure::Connect,
            ClientError::Http(_) => Failure::Transport,
        }
    }
}

type Sender = SendRequest<Full<Bytes>>;

struct Inner {
    target: Target,
    addr: String,
    host_header: HeaderValue,
    idle: Mutex<Vec<Sender>>,
    max_idle: usize,
    timeout: Duration,
    connect_timeout: Duration,
}

/// A pooled HTTP/1.1 client for one target. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

/// A prepared request line: method and origin-form path.
#[derive(Clone, Debug)]
pub struct Route {
    method: Method,
    uri: Uri,
}

impl HttpClient {
    pub fn new(target: Target, max_idle: usize, timeout: Duration) -> Result<Self, String> {
        let addr = format!("{}:{}", target.host, target.port);
        let host_header = HeaderValue::from_str(&addr).map_err(|e| format!("bad host: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                target,
                addr,
                host_header,
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

    /// `method` on `path` below the target's base path (e.g. `predict`).
    pub fn route(&self, method: Method, path: &str) -> Result<Route, String> {
        Ok(Route {
            method,
            uri: self.inner.target.origin_form(path)?,
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
        let limit = timeout.unwrap_or(self.inner.timeout);
        match tokio::time::timeout(limit, self.exchange(route, content_type, body)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout(limit)),
        }
    }

    async fn exchange(
        &self,
        route: &Route,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<u16, ClientError> {
        let mut sender = self.checkout().await?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = route.method.clone();
        *request.uri_mut() = route.uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.inner.host_header.clone());
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        let response = sender
            .send_request(request)
            .await
            .map_err(ClientError::Http)?;
        let status = response.status().as_u16();
        // Drain the body so the connection can carry the next request. The status is the
        // answer; a body cut short only means the connection is not reused.
        let mut body = response.into_body();
        let mut reusable = true;
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                reusable = false;
                break;
            }
        }
        if reusable {
            self.checkin(sender);
        }
        Ok(status)
    }

    async fn checkout(&self) -> Result<Sender, ClientError> {
        loop {
            let idle = self.lock_idle().pop();
            let Some(mut sender) = idle else { break };
            // A connection the server closed while idle is dropped, not used.
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        self.connect().await
    }

    fn checkin(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock_idle();
        if idle.len() < self.inner.max_idle {
            idle.push(sender);
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Sender>> {
        // The pool holds no invariant a panic could break.
        self.inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn connect(&self) -> Result<Sender, ClientError> {
        let addr = &self.inner.addr;
        let stream = tokio::time::timeout(
            self.inner.connect_timeout,
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .map_err(|_| ClientError::Connect {
            addr: addr.clone(),
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
        })?
        .map_err(|source| ClientError::Connect {
            addr: addr.clone(),
            source,
        })?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|source| ClientError::Handshake {
                    addr: addr.clone(),
                    source,
                })?;
        tokio::spawn(async move {
            // Ends when the server closes or the sender is dropped; errors surface on send.
            let _ = connection.await;
        });
        Ok(sender)
    }
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
    }
}
