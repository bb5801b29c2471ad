//! Bunyan JSON logging, set up once per process.

use tracing::Subscriber;
use tracing::subscriber::set_global_default;
use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, Registry, layer::SubscriberExt};

/// A subscriber writing bunyan JSON lines to `sink`. `RUST_LOG` wins over `default_filter`.
pub fn get_subscriber<Sink>(
    name: &str,
    default_filter: &str,
    sink: Sink,
) -> impl Subscriber + Send + Sync + use<Sink>
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    Registry::default()
        .with(filter)
        .with(JsonStorageLayer)
        .with(BunyanFormattingLayer::new(name.to_owned(), sink))
}

/// Stdout through a background thread that writes whole batches of lines, so request handlers
/// never wait on the terminal, pipe or file behind stdout. Lossless: when 128k lines are queued,
/// loggers wait rather than drop lines. Keep the guard alive until exit; dropping it flushes.
pub fn stdout_writer() -> (
    tracing_appender::non_blocking::NonBlocking,
    tracing_appender::non_blocking::WorkerGuard,
) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::new(std::io::stdout()))
}

/// Installs `subscriber` as the global default and routes `log` records into it. Call once.
pub fn init_subscriber(subscriber: impl Subscriber + Send + Sync) {
    // Both fail only when called twice; tests call this through a LazyLock.
    let _ = tracing_log::LogTracer::init();
    if set_global_default(subscriber).is_err() {
        eprintln!("tracing subscriber already set");
    }
}
