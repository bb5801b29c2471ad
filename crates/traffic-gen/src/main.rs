//! Thin entry point: logging, runtime, signals; everything else is in the library.

use clap::Parser;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use traffic_gen::cli::Cli;

// mimalloc: every request allocates its task, body and result; it is cheaper than glibc here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    metrics_core::telemetry::init_subscriber(metrics_core::telemetry::get_subscriber(
        "traffic-gen",
        "info",
        std::io::stderr,
    ));
    // Worker count follows TOKIO_WORKER_THREADS when set, else one per core.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let cancel = CancellationToken::new();
        tokio::spawn(stop_on_signal(cancel.clone()));
        // On a worker thread, not the blocking main thread: the producer and the request tasks
        // then wake each other without crossing threads, which raises the maximum rate.
        match tokio::spawn(traffic_gen::run(cli, cancel)).await {
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("the run task failed: {e}")),
        }
    });
    match result {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The first Ctrl-C or SIGTERM stops sending (the report is still printed); a second one quits.
async fn stop_on_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        eprintln!("warning: cannot listen for SIGTERM");
        return;
    };
    let mut first = true;
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { return },
            _ = term.recv() => {}
        }
        if first {
            tracing::info!(
                "stopping: waiting briefly for in-flight requests, then printing the report"
            );
            cancel.cancel();
            first = false;
        } else {
            std::process::exit(130);
        }
    }
}
