//! One integration-test binary: the generator against an in-process stub server (port 0) and
//! against the real inference API with the bundled model.

mod cli;
mod errors;
mod feedback;
mod helpers;
mod metrics;
mod rate;
mod stall;
