//! One integration-test binary for the inference API, against the real bundled model.

mod delay;
mod errors;
mod hardening;
mod health;
mod helpers;
mod lifecycle;
mod logging;
mod metrics;
mod openapi;
mod predict;
mod quality;
mod reload;
mod v2;
