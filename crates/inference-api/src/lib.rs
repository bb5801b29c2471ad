//! Serves an ONNX tabular classifier over HTTP, instrumented for Prometheus.

pub mod configuration;
pub mod error;
pub mod metrics;
pub mod model;
pub mod quality;
pub mod routes;
pub mod startup;
pub mod state;
