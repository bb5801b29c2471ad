//! A small standalone exporter: machine (or container) health and model-artifact ages for
//! Prometheus, independent of the inference API.
//!
//! - [`configuration`]: typed settings from `configuration/*.yaml` and `APP_` variables.
//! - [`collectors`]: one collector per concern, listed in one place.
//! - [`scrape`]: runs the collectors on each scrape and reports on each of them.
//! - [`startup`]: the HTTP application (`/metrics`, `/health`) and the CPU sampler task.

pub mod collectors;
pub mod configuration;
pub mod scrape;
pub mod startup;
