//! What logging costs per request, outside HTTP: the request span alone (what `log.access: off`
//! still pays), and the span with the access line the middleware writes in it, formatted by
//! `tracing-bunyan-formatter` into a sink (formatting alone) or through `stdout_writer` (as
//! served).
//! `cargo run --release -p metrics-core --example log_cost -- [span|sink|stdout] > /dev/null`

use metrics_core::http::REQUEST_SPAN;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "stdout".into());
    let (writer, _guard) = metrics_core::telemetry::stdout_writer();
    let name = "log_cost";
    if mode == "stdout" {
        let subscriber = metrics_core::telemetry::get_subscriber(name, "info", writer);
        metrics_core::telemetry::init_subscriber(subscriber);
    } else {
        let subscriber = metrics_core::telemetry::get_subscriber(name, "info", std::io::sink);
        metrics_core::telemetry::init_subscriber(subscriber);
    }
    let with_line = mode != "span";
    let requests = 200_000u32;
    let started = Instant::now();
    for i in 0..requests {
        let id: Arc<str> = Arc::from("fec59df83ef84d01b7855d5e56f57b76");
        // The middleware's span: the target must be metrics_core::http for the filter to keep it
        // at every level, which does not matter here at `info`.
        let span = tracing::info_span!(
            REQUEST_SPAN,
            request_id = id.as_ref(),
            method = "POST",
            route = "/predict"
        );
        let _entered = span.enter();
        if with_line {
            tracing::info!(
                status = 200u16,
                latency_seconds = f64::from(i) * 1e-9,
                model = Some("breast-cancer"),
                rows = Some(1usize),
                "request completed"
            );
        }
    }
    let per_request = started.elapsed().as_secs_f64() * 1e6 / f64::from(requests);
    let what = if with_line {
        "request span + access line"
    } else {
        "request span, no line"
    };
    eprintln!("{mode}: {per_request:.2} µs per request ({what}, {requests} requests)");
}
