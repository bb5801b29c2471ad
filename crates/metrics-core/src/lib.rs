//! Observability shared by every modelwatch service, and nothing else: no business logic lives here.
//!
//! - [`buckets`]: named histogram bucket sets, declared once.
//! - [`labels`]: typed label values shared across services.
//! - [`http`]: HTTP request metrics by route template, request ids, the request span and the
//!   one-line access log (`log.access`: all, errors, off).
//! - [`exposition`]: rendering a registry as OpenMetrics text and serving `GET /metrics`.
//! - [`process`]: `process_*` metrics read from `/proc/self`.
//! - [`build_info`]: the `<prefix>_build_info` metric.
//! - [`settings`]: layered configuration (embedded YAML, environment overlay, `APP_` variables).
//! - [`telemetry`]: bunyan JSON logging through `tracing-bunyan-formatter`, a non-blocking writer.
//! - [`health`]: `<binary> healthcheck` for slim containers (a tiny HTTP probe).

pub mod buckets;
pub mod build_info;
pub mod exposition;
pub mod health;
pub mod http;
pub mod labels;
pub mod process;
pub mod settings;
pub mod telemetry;

pub use prometheus_client;
