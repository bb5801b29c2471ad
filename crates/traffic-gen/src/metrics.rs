//! Client-side metrics (`traffic_*`), and the optional HTTP server that exposes them with
//! `process_*` and `traffic_build_info` on `/metrics`, plus `/health`.

use crate::plan::RequestKind;
use actix_web::{App, HttpResponse, HttpServer, web};
use metrics_core::buckets::{Buckets, HTTP_LATENCY_SECONDS, HistogramFamily};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::fmt::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// How a request ended, as a closed set. Errors are everything but [`Outcome::Success`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A 2xx response.
    Success,
    /// A 4xx response.
    ClientError,
    /// A 5xx response.
    ServerError,
    /// Any other status (1xx, 3xx: the API never sends one).
    UnexpectedStatus,
    /// No response within `--timeout`.
    Timeout,
    /// The connection could not be made.
    ConnectError,
    /// Any other failure to send or to read the response head.
    TransportError,
}

impl Outcome {
    /// Every outcome, in declaration order (`ALL[o as usize] == o`).
    pub const ALL: [Outcome; 7] = [
        Outcome::Success,
        Outcome::ClientError,
        Outcome::ServerError,
        Outcome::UnexpectedStatus,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::TransportError,
    ];

    pub fn from_status(status: u16) -> Self {
        match status {
            200..=299 => Outcome::Success,
            400..=499 => Outcome::ClientError,
            500..=599 => Outcome::ServerError,
            _ => Outcome::UnexpectedStatus,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ClientError => "client_error",
            Outcome::ServerError => "server_error",
            Outcome::UnexpectedStatus => "unexpected_status",
            Outcome::Timeout => "timeout",
            Outcome::ConnectError => "connect_error",
            Outcome::TransportError => "transport_error",
        }
    }

    pub fn is_error(self) -> bool {
        self != Outcome::Success
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: RequestKind,
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: RequestKind,
}

/// The generator's own metrics, registered once under the `traffic` prefix.
///
/// Every `{kind, outcome}` series exists from the start (at 0), and the hot path indexes
/// pre-resolved handles instead of hashing label sets on every request.
#[derive(Clone)]
pub struct TrafficMetrics {
    /// Indexed by `kind * Outcome::ALL.len() + outcome`.
    requests: Arc<[Counter]>,
    /// Indexed by kind.
    duration: Arc<[Histogram]>,
    service_duration: Arc<[Histogram]>,
    late_sends: Counter,
    in_flight: Gauge,
    target_rate: Gauge<f64, AtomicU64>,
}

impl TrafficMetrics {
    /// Registers into `registry` (give it the `traffic` sub-registry).
    pub fn new(registry: &mut Registry) -> Self {
        let buckets = Buckets::new(HTTP_LATENCY_SECONDS);
        let requests: Family<RequestLabels, Counter> = Family::default();
        let duration: HistogramFamily<KindLabels> = buckets.family();
        let service_duration: HistogramFamily<KindLabels> = buckets.family();
        let m = Self {
            requests: RequestKind::ALL
                .iter()
                .flat_map(|&kind| {
                    Outcome::ALL
                        .iter()
                        .map(move |&outcome| RequestLabels { kind, outcome })
                })
                .map(|labels| requests.get_or_create(&labels).clone())
                .collect(),
            duration: RequestKind::ALL
                .iter()
                .map(|&kind| duration.get_or_create(&KindLabels { kind }).clone())
                .collect(),
            service_duration: RequestKind::ALL
                .iter()
                .map(|&kind| service_duration.get_or_create(&KindLabels { kind }).clone())
                .collect(),
            late_sends: Counter::default(),
            in_flight: Gauge::default(),
            target_rate: Gauge::default(),
        };
        registry.register(
            "requests",
            "Requests finished, by request kind and outcome (success = 2xx)",
            requests,
        );
        registry.register_with_unit(
            "request_duration",
            "Latency from the intended send time to the response (coordinated-omission corrected)",
            Unit::Seconds,
            duration,
        );
        registry.register_with_unit(
            "request_service_duration",
            "Latency from the actual send to the response (service time)",
            Unit::Seconds,
            service_duration,
        );
        registry.register(
            "late_sends",
            "Requests that started late because --max-in-flight requests were already in flight",
            m.late_sends.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests sent and not yet answered",
            m.in_flight.clone(),
        );
        registry.register(
            "target_rate",
            "Requests per second the scenario asks for right now",
            m.target_rate.clone(),
        );
        m
    }

    pub fn observe(
        &self,
        kind: RequestKind,
        outcome: Outcome,
        latency: Duration,
        service: Duration,
    ) {
        let k = kind as usize;
        self.requests[k * Outcome::ALL.len() + outcome as usize].inc();
        self.duration[k].observe(latency.as_secs_f64());
        self.service_duration[k].observe(service.as_secs_f64());
    }

    pub fn late_send(&self) {
        self.late_sends.inc();
    }

    pub fn sent(&self) {
        self.in_flight.inc();
    }

    pub fn finished(&self) {
        self.in_flight.dec();
    }

    pub fn set_target_rate(&self, rate: f64) {
        self.target_rate.set(rate);
    }
}

/// A registry with every series the generator exposes, and the metrics writing into it.
pub fn registry() -> (Registry, TrafficMetrics) {
    let mut registry = Registry::default();
    metrics_core::process::register(&mut registry);
    let traffic = registry.sub_registry_with_prefix("traffic");
    metrics_core::build_info::register(traffic, "traffic-gen", env!("CARGO_PKG_VERSION"));
    let metrics = TrafficMetrics::new(traffic);
    (registry, metrics)
}

/// The `/metrics` + `/health` server, bound but not yet running.
pub struct MetricsServer {
    addr: SocketAddr,
    server: actix_web::dev::Server,
}

impl MetricsServer {
    pub fn bind(addr: SocketAddr, registry: Arc<Registry>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let registry = web::Data::from(registry);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(registry.clone())
                .route(
                    "/metrics",
                    web::get().to(metrics_core::exposition::metrics_endpoint),
                )
                .route("/health", web::get().to(HttpResponse::Ok))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        Ok(Self { addr, server })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts serving in the background; stop it with the returned handle.
    pub fn spawn(self) -> actix_web::dev::ServerHandle {
        let handle = self.server.handle();
        tokio::spawn(self.server);
        handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_have_the_documented_names_and_lower_case_labels() {
        let (registry, m) = registry();
        m.observe(
            RequestKind::MalformedJson,
            Outcome::from_status(400),
            Duration::from_millis(3),
            Duration::from_millis(2),
        );
        m.late_send();
        let text = metrics_core::exposition::render(&registry);
        for line in [
            "traffic_requests_total{kind=\"malformed_json\",outcome=\"client_error\"} 1",
            "traffic_request_duration_seconds_count{kind=\"malformed_json\"} 1",
            "traffic_request_service_duration_seconds_count{kind=\"malformed_json\"} 1",
            "traffic_late_sends_total 1",
            "traffic_requests_total{kind=\"single\",outcome=\"success\"} 0",
            "traffic_build_info{service=\"traffic-gen\",version=\"",
            "process_cpu_seconds_total ",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn outcomes_classify_status_codes() {
        assert_eq!(Outcome::from_status(204), Outcome::Success);
        assert_eq!(Outcome::from_status(413), Outcome::ClientError);
        assert_eq!(Outcome::from_status(503), Outcome::ServerError);
        assert_eq!(Outcome::from_status(302), Outcome::UnexpectedStatus);
        assert!(Outcome::Timeout.is_error());
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
        }
        for (i, k) in RequestKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }
}
