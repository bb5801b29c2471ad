//! Serves an ONNX tabular classifier over HTTP, instrumented for Prometheus.
//!
//! Only what another crate uses is `pub`: the binary (`configuration`, `startup`), the
//! integration tests in `tests/api` (also fake engines: `model::{Engine, LoadedModel, Output}`,
//! `model::manifest::Manifest`), traffic-gen's tests (`startup::Application`) and `crates/fuzz`
//! (`model::features::fast_path_agrees` and what it takes). The rest is `pub(crate)` or private,
//! so the compiler reports whatever nothing uses. `unreachable_pub` flags a `pub` item that no
//! other crate can reach.

#![warn(unreachable_pub)]

pub mod configuration;
mod error;
mod metrics;
pub mod model;
mod quality;
mod routes;
pub mod startup;
mod state;
