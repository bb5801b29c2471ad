//! What one access-log line costs: the same event the HTTP middleware writes per request, formatted
//! by the bunyan layer into a sink (formatting alone) and through `stdout_writer` (as served).
//! `cargo run --release -p metrics-core --example log_cost -- [sink|stdout] > /dev/null`

use std::sync::Arc;
use std::time::Instant;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "stdout".into());
    let (writer, _guard) = metrics_core::telemetry::stdout_writer();
    let name = "log_cost";
    if mode == "sink" {
        let subscriber = metrics_core::telemetry::get_subscriber(name, "info", std::io::sink);
        metrics_core::telemetry::init_subscriber(subscriber);
    } else {
        let subscriber = metrics_core::telemetry::get_subscriber(name, "info", writer);
        metrics_core::telemetry::init_subscriber(subscriber);
    }
    let lines = 200_000u32;
    let started = Instant::now();
    for i in 0..lines {
        let id: Arc<str> = Arc::from("fec59df83ef84d01b7855d5e56f57b76");
        tracing::info!(
            request_id = %id,
            method = "POST",
            route = %"/predict",
            status = 200u16,
            latency_seconds = f64::from(i) * 1e-9,
            model = Some("breast-cancer"),
            rows = Some(1usize),
            "request completed"
        );
    }
    let per_line = started.elapsed().as_secs_f64() * 1e6 / f64::from(lines);
    eprintln!("{mode}: {per_line:.2} µs per access-log line ({lines} lines)");
}
