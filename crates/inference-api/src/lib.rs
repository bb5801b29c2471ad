//! Serves an ONNX tabular classifier over HTTP, instrumented for Prometheus.
//!
//! Only what another crate uses is `pub`: the binary (`configuration`, `startup`,
//! `openapi::document`), the integration tests in `tests/api` (also fake engines:
//! `model::{Engine, LoadedModel, Output}`, `model::manifest::Manifest`), the `ort_alone` example
//! (`model::load_bundle`, `LoadedModel::run_rows`), traffic-gen's tests (`startup::Application`)
//! and `crates/fuzz` ([`fast_path_agrees`], [`v2_infer_accepts`] and what they take, in
//! `model::features`). The rest is `pub(crate)` or private, so the compiler reports whatever
//! nothing uses. `unreachable_pub` flags a `pub` item that no other crate can reach.
//!
//! `routes` stays private: [`fast_path_agrees`] lives with the `/predict` body parser in
//! `routes::predict::body`, [`v2_infer_accepts`] with the V2 request parser in
//! `routes::v2::request`; both are re-exported here, at the crate root, for the fuzzer alone.

#![warn(unreachable_pub)]

pub mod configuration;
mod error;
mod metrics;
pub mod model;
pub mod openapi;
mod quality;
mod reload;
mod routes;
pub mod startup;
mod state;

pub use routes::predict::body::fast_path_agrees;
pub use routes::v2::request::v2_infer_accepts;
