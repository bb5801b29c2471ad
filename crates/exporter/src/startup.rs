//! The HTTP application: `GET /metrics`, `GET /health`, and the background CPU sampler.

use crate::collectors::{self, CpuSampler};
use crate::configuration::Settings;
use crate::scrape::ScrapeCollector;
use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use metrics_core::buckets;
use metrics_core::exposition::blocking_metrics_endpoint;
use metrics_core::http::{HttpMetrics, ObserveHttp};
use metrics_core::prometheus_client::registry::Registry;
use std::net::TcpListener;

/// A built (bound) but not yet running exporter.
pub struct Application {
    port: u16,
    server: Server,
    sampler: CpuSampler,
}

impl Application {
    /// Binds `server.host:server.port` (port 0 picks a free port, see [`Self::port`]).
    pub fn build(settings: Settings) -> anyhow::Result<Self> {
        let address = (settings.server.host.as_str(), settings.server.port);
        let listener = TcpListener::bind(address).map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}:{}: {e}",
                settings.server.host,
                settings.server.port
            )
        })?;
        let port = listener.local_addr()?.port();
        let sampler = CpuSampler::new(settings.collectors.sampling_interval());

        let mut registry = Registry::default();
        metrics_core::process::register(&mut registry);
        let own = registry.sub_registry_with_prefix("exporter");
        metrics_core::build_info::register(own, "exporter", env!("CARGO_PKG_VERSION"));
        let http_metrics = HttpMetrics::new(own, buckets::HTTP_LATENCY_SECONDS);
        registry.register_collector(Box::new(ScrapeCollector::new(
            collectors::all(&settings.collectors, sampler.clone()),
            settings.collectors.timeout(),
        )));
        let registry = web::Data::new(registry);
        let access_log = settings.log.access;

        let server = HttpServer::new(move || {
            App::new()
                .wrap(ObserveHttp::new(http_metrics.clone()).access_log(access_log))
                .app_data(registry.clone())
                .route("/metrics", web::get().to(blocking_metrics_endpoint))
                .route("/health", web::get().to(health))
        })
        .workers(settings.server.workers.max(1))
        .shutdown_timeout(settings.shutdown_timeout().as_secs())
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            server,
            sampler,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT (graceful shutdown), sampling CPU usage meanwhile.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sampler = tokio::spawn(sample_cpu(self.sampler));
        let result = self.server.await;
        sampler.abort();
        result
    }
}

/// Refreshes CPU usage every sampling interval, the first time shortly after start.
async fn sample_cpu(sampler: CpuSampler) {
    let first = tokio::time::Instant::now() + sampler.first_sample_delay();
    let mut ticks = tokio::time::interval_at(first, sampler.interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        sampler.sample();
    }
}

/// Liveness: the process serves HTTP. Collector health is in `exporter_collector_success`.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}
