//! `traffic-gen`: drives the inference API with real sample rows at a chosen rate, in scenarios
//! that make dashboards move and alerts fire on purpose, and reports what it saw.
//!
//! The pipeline has one module per stage:
//! - what to send: the bundle's sample rows and the drift transform (`model-bundle`), [`plan`]
//!   and [`scenario`] (the run as data), [`payload`] (bodies);
//! - when to send it: [`schedule`] (absolute, seeded ticket sequence);
//! - how to send it: [`executor`] (open loop, `max_in_flight` ceiling, late sends) over
//!   [`http`] (one `reqwest` client);
//! - how to aggregate: [`report`] (counts and HDR histograms), [`metrics`] (Prometheus series);
//! - how to show it: [`progress`] (terminal line) and [`output`] (text or JSON report).
//!
//! [`run`] is what `main` calls; tests call it (or [`Runner`]) in-process.

pub mod cli;
pub mod executor;
pub mod http;
pub mod metrics;
pub mod output;
pub mod payload;
pub mod plan;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod schedule;

use anyhow::{Context, bail};
use bytes::Bytes;
use cli::{Cli, Command, HealthArgs, RunArgs};
use executor::{Executor, Limits};
use http::HttpClient;
use metrics::MetricsServer;
use model_bundle::Bundle;
use plan::Plan;
use progress::Progress;
use prometheus_client::registry::Registry;
use report::{Aggregate, Report, RunInfo, StopReason};
use schedule::Schedule;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Run length when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(60);
/// How long in-flight requests may finish after a signal stopped sending.
pub const SIGNAL_DRAIN: Duration = Duration::from_secs(2);

/// How a command ended (fatal errors are the `Err` of [`run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// The run finished but its error ratio exceeded `--max-error-ratio`.
    ErrorRatioExceeded,
}

impl Exit {
    /// Process exit status: 0, or 3 for [`Exit::ErrorRatioExceeded`] (1 is a fatal error, 2 a
    /// usage error).
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::ErrorRatioExceeded => 3,
        }
    }
}

/// Runs one command. `cancel` ends a run early (main fires it on Ctrl-C / SIGTERM); the report
/// is still printed.
pub async fn run(cli: Cli, cancel: CancellationToken) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Scenarios => {
            for b in scenario::Builtin::ALL {
                println!("{:<7} {}", b.name(), b.summary());
            }
            Ok(Exit::Success)
        }
        Command::Healthcheck(h) => healthcheck(&h).map(|()| Exit::Success),
        Command::Run(args) => {
            let format = args.output;
            let max_error_ratio = args.max_error_ratio;
            let runner = Runner::build(*args)?;
            let report = runner.run(cancel).await?;
            print!("{}", output::render(&report, format));
            match max_error_ratio {
                Some(max) if report.error_ratio > max => {
                    eprintln!(
                        "error ratio {:.4} is above --max-error-ratio {max}",
                        report.error_ratio
                    );
                    Ok(Exit::ErrorRatioExceeded)
                }
                _ => Ok(Exit::Success),
            }
        }
    }
}

fn healthcheck(h: &HealthArgs) -> anyhow::Result<()> {
    let host = h.addr.ip().to_string();
    metrics_core::health::probe(
        metrics_core::health::probe_host(&host),
        h.addr.port(),
        "/health",
        Duration::from_secs(2),
    )
    .map_err(anyhow::Error::msg)
}

/// A run, prepared: scenario loaded, payloads rendered, metrics listener bound.
pub struct Runner {
    args: RunArgs,
    plan: Plan,
    seed: u64,
    limits: Limits,
    executor: Executor,
    registry: Arc<Registry>,
    metrics_server: Option<MetricsServer>,
}

impl Runner {
    /// Loads everything a run needs and binds `--metrics-addr` (port 0 picks a free port). Call
    /// inside a tokio runtime.
    pub fn build(args: RunArgs) -> anyhow::Result<Self> {
        args.validate().map_err(anyhow::Error::msg)?;
        let plan = args.scenario.load(&args.params())?;
        let models = args.targets();
        let seed = args.seed.unwrap_or_else(rand::random);
        let limits = Limits {
            duration: match (args.duration, args.requests) {
                (None, None) => Some(DEFAULT_DURATION),
                (d, _) => d,
            },
            requests: args.requests,
        };
        let (registry, traffic_metrics) = metrics::registry();
        let registry = Arc::new(registry);
        let metrics_server = args
            .metrics_addr
            .map(|addr| {
                MetricsServer::bind(addr, registry.clone())
                    .with_context(|| format!("binding the metrics server to {addr}"))
            })
            .transpose()?;
        let client = HttpClient::new(args.target.clone(), args.max_in_flight, args.timeout)
            .context("building the HTTP client")?;
        let mut targets = Vec::with_capacity(models.len());
        for (model, path, bundle_dir) in models {
            let bundle = Bundle::load(&bundle_dir)
                .with_context(|| format!("loading the model bundle {}", bundle_dir.display()))?;
            let payloads = payload::Payloads::new(&bundle, &plan.drift, args.oversized_bytes)
                .with_context(|| format!("the model bundle {}", bundle_dir.display()))?
                .for_model(model);
            let route = client
                .route(reqwest::Method::POST, &path)
                .map_err(anyhow::Error::msg)?;
            targets.push(executor::Target {
                route,
                payloads: Arc::new(payloads),
            });
        }
        let feedback_route = client
            .route(reqwest::Method::POST, "feedback")
            .map_err(anyhow::Error::msg)?;
        let executor = Executor {
            client,
            targets,
            feedback_route,
            max_in_flight: args.max_in_flight,
            metrics: traffic_metrics,
        };
        Ok(Self {
            args,
            plan,
            seed,
            limits,
            executor,
            registry,
            metrics_server,
        })
    }

    /// The address the metrics server listens on, if `--metrics-addr` was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(MetricsServer::addr)
    }

    /// The registry behind `/metrics`.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Checks the target, sends until a limit or `cancel`, waits for in-flight requests (at
    /// most `--timeout` + 1 s, or [`SIGNAL_DRAIN`] after a signal) and returns the report.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<Report> {
        let metrics_handle = self.metrics_server.map(MetricsServer::spawn);
        let result = async {
            probe_target(&self.executor.client, self.args.wait_ready).await?;
            tracing::info!(
                scenario = %self.plan.name,
                target = %self.args.target,
                seed = self.seed,
                duration = ?self.limits.duration,
                requests = ?self.limits.requests,
                max_in_flight = self.args.max_in_flight,
                "sending"
            );
            let report = send_and_collect(
                &self.executor,
                &self.plan,
                self.seed,
                self.limits,
                self.args.timeout,
                progress::wanted(self.args.no_progress),
                cancel,
            )
            .await;
            let info = RunInfo {
                scenario: self.plan.name.clone(),
                target: self.args.target.to_string(),
                seed: self.seed,
                max_in_flight: self.args.max_in_flight,
            };
            let (send, agg) = report;
            let report = Report::new(info, &send, &agg);
            tracing::info!(
                sent = report.sent,
                achieved_rate = report.achieved_rate,
                error_ratio = report.error_ratio,
                late_sends = report.late_sends,
                stopped_by = ?report.stopped_by,
                "run finished"
            );
            Ok(report)
        }
        .await;
        if let Some(handle) = metrics_handle {
            handle.stop(false).await;
        }
        result
    }
}

/// Sends and aggregates concurrently in one task; returns once every request has finished or
/// the drain deadline has passed.
async fn send_and_collect(
    executor: &Executor,
    plan: &Plan,
    seed: u64,
    limits: Limits,
    timeout: Duration,
    show_progress: bool,
    cancel: CancellationToken,
) -> (report::SendSummary, Aggregate) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sent = Arc::new(AtomicU64::new(0));
    let progress = Progress::new(show_progress, sent.clone());
    let sending = executor.send_all(
        Schedule::new(plan.clone(), seed),
        limits,
        tx,
        sent,
        cancel.clone(),
    );
    tokio::pin!(sending);
    let mut ticker = tokio::time::interval(progress::REFRESH);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut agg = Aggregate::new();
    let mut summary: Option<report::SendSummary> = None;
    // Created once: the drain deadline is set when sending ends; a signal during the drain
    // (after a run that ended on its own) ends it at once.
    let drain = tokio::time::sleep(Duration::from_secs(365 * 86_400));
    let interrupted = cancel.cancelled();
    tokio::pin!(drain, interrupted);
    loop {
        tokio::select! {
            s = &mut sending, if summary.is_none() => {
                let limit = match s.stopped_by {
                    StopReason::Signal => SIGNAL_DRAIN.min(timeout + Duration::from_secs(1)),
                    _ => timeout + Duration::from_secs(1),
                };
                drain.as_mut().reset(Instant::now() + limit);
                summary = Some(s);
            }
            c = rx.recv() => match c {
                Some(c) => {
                    agg.record(c);
                    // Take whatever else has arrived without another round of select.
                    while let Ok(c) = rx.try_recv() {
                        agg.record(c);
                    }
                }
                // Every sender is gone: sending is over and every request has finished.
                None => break,
            },
            _ = ticker.tick(), if show_progress => progress.update(&agg),
            () = &mut drain, if summary.is_some() => break,
            () = &mut interrupted, if summary.as_ref().is_some_and(|s| s.stopped_by != StopReason::Signal) => break,
        }
    }
    while let Ok(c) = rx.try_recv() {
        agg.record(c);
    }
    progress.finish();
    let summary = match summary {
        Some(s) => s,
        // The channel only closes after sending has finished.
        None => sending.await,
    };
    (summary, agg)
}

/// Fails fast, with a message saying what to check, when the target cannot serve traffic.
async fn probe_target(client: &HttpClient, wait_ready: Option<Duration>) -> anyhow::Result<()> {
    let probe_timeout = Some(Duration::from_secs(3));
    let base = client.target();
    let get = |path: &str| {
        client
            .route(reqwest::Method::GET, path)
            .map_err(anyhow::Error::msg)
    };
    match wait_ready {
        None => {
            let health = get("health")?;
            let status = client
                .send(&health, None, Bytes::new(), probe_timeout)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot reach the inference API at {base} ({e}); is it running, and is --target right?"
                    )
                })?;
            if !(200..300).contains(&status) {
                bail!(
                    "{} answered {status}; the target is not a healthy inference API",
                    base.url("health")
                );
            }
            Ok(())
        }
        Some(wait) => {
            let ready = get("ready")?;
            let deadline = Instant::now() + wait;
            loop {
                let last = match client.send(&ready, None, Bytes::new(), probe_timeout).await {
                    Ok(status) if (200..300).contains(&status) => return Ok(()),
                    Ok(status) => format!("it answered {status}"),
                    Err(e) => e.to_string(),
                };
                if Instant::now() >= deadline {
                    bail!(
                        "the inference API at {base} was not ready within {} (last: {last})",
                        humantime::format_duration(wait)
                    );
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}
