//! A small standalone exporter: machine (or container) health and model-artifact ages for
//! Prometheus, independent of the inference API.
//!
//! - [`configuration`]: typed settings from `configuration/*.yaml` and `APP_` variables.
//! - [`collectors`]: one collector per concern, listed in one place.
//! - [`scrape`]: runs the collectors on each scrape and reports on each of them.
//! - [`startup`]: the HTTP application (`/metrics`, `/health`) and the CPU sampler task.
//!
//! Only what the binary, the integration tests (`tests/api`) and the fuzzer (`crates/fuzz`: the
//! manifest parser) use is `pub`; the rest is `pub(crate)` or private, so the compiler reports
//! whatever nothing uses. `unreachable_pub` flags a `pub` item that no other crate can reach.

#![warn(unreachable_pub)]

pub mod collectors;
pub mod configuration;
mod scrape;
pub mod startup;
