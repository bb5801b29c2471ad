//! Bunyan JSON logging through `tracing-bunyan-formatter`, set up once per process.
//!
//! [`JsonStorageLayer`] keeps the fields of every span (a child span inherits its parent's), and
//! [`BunyanFormattingLayer`] writes each event as one bunyan line (`v`, `name`, `msg`, `level`,
//! `hostname`, `pid`, `time`, `target`, `line`, `file`, the event's fields, then those of the span
//! it is in). The HTTP middleware ([`crate::http`]) runs every request inside a span carrying
//! `request_id`, `method` and `route`, so every line logged while serving it has them.

use serde::Deserialize;
use std::io::Write;
use tracing::subscriber::set_global_default;
use tracing::{Event, Level, Subscriber};
use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
use tracing_subscriber::filter::{FilterExt, Targets, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Registry, layer::SubscriberExt};

/// Where actix-http reports, at ERROR, each connection whose request its HTTP/1 parser refused
/// (a bad `Content-Length`, `Content-Length` with `Transfer-Encoding`, an oversize head, too many
/// headers) and answered itself with an empty 400 or 431, before any application code runs.
const PROTOCOL_ERROR_TARGET: &str = "actix_http::h1::dispatcher";

/// The `log:` section of a service's settings.
#[derive(Clone, Debug, Deserialize)]
pub struct LogSettings {
    /// Default tracing filter (`info`, `warn`, `inference_api=debug,info`); `RUST_LOG` wins.
    pub level: String,
    /// Which requests get an access-log line (`APP_LOG__ACCESS`).
    #[serde(default)]
    pub access: crate::http::AccessLog,
}

/// A subscriber writing bunyan JSON lines to `sink`. `RUST_LOG` wins over `default_filter`.
pub fn get_subscriber<Sink>(
    name: &str,
    default_filter: &str,
    sink: Sink,
) -> impl Subscriber + Send + Sync + use<Sink>
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter))
        // Refused requests are counted (below), not logged: a client must not be able to fill
        // the error log. Nothing else is logged under this target.
        .add_directive(
            format!("{PROTOCOL_ERROR_TARGET}=off")
                .parse()
                .expect("a valid directive"),
        );
    // The request span is kept whatever the level, so that an error logged while serving a
    // request carries its `request_id` also when `info` is filtered out.
    let request_spans = filter_fn(crate::http::is_request_span)
        .with_max_level_hint(crate::http::REQUEST_SPAN_LEVEL);
    let bunyan = JsonStorageLayer.and_then(EventLines(BunyanFormattingLayer::new(
        name.to_owned(),
        sink,
    )));
    Registry::default()
        .with(bunyan.with_filter(filter.or(request_spans)))
        .with(
            ProtocolErrorCounter
                .with_filter(Targets::new().with_target(PROTOCOL_ERROR_TARGET, Level::ERROR)),
        )
}

/// Only the event lines of the inner layer. `BunyanFormattingLayer` also writes a
/// `[SPAN - START]` and a `[SPAN - END]` line for every span, which would make three lines of
/// every request; its span fields are still on every event inside the span.
struct EventLines<L>(L);

impl<S, L> Layer<S> for EventLines<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.0.on_event(event, ctx);
    }
}

/// Counts actix-http's refusals of malformed requests into
/// [`crate::http::PROTOCOL_ERRORS`] (exposed by every [`crate::http::HttpMetrics`] as
/// `<prefix>_http_protocol_errors_total`): they never reach the HTTP middleware.
struct ProtocolErrorCounter;

impl<S: Subscriber> Layer<S> for ProtocolErrorCounter {
    fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {
        crate::http::PROTOCOL_ERRORS.inc();
    }
}

/// Stdout through a background thread that writes whole batches of lines, so request handlers
/// never wait on the terminal, pipe or file behind stdout. Lossless: when 128k lines are queued,
/// loggers wait rather than drop lines. Keep the guard alive until exit: dropping it writes out
/// what is queued (waiting up to a second).
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

/// Log lines captured in memory, for tests: `get_subscriber(name, level, captured.clone())`.
#[derive(Clone, Default)]
pub struct CapturedLines {
    lines: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    echo: bool,
}

impl CapturedLines {
    /// Also writes every line to stdout (`TEST_LOG=1 cargo test | bunyan`).
    pub fn echoing_to_stdout(mut self) -> Self {
        self.echo = true;
        self
    }

    /// Every line written so far, parsed; a line that is not JSON panics.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self
            .lines
            .lock()
            .map(|b| b.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The lines whose `request_id` is `id`.
    pub fn of_request(&self, id: &str) -> Vec<serde_json::Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["request_id"] == id)
            .collect()
    }
}

impl Write for CapturedLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.echo {
            std::io::stdout().write_all(buf)?;
        }
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLines {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn lines_of_at(level: &str, f: impl FnOnce()) -> Vec<serde_json::Value> {
        let captured = CapturedLines::default();
        let subscriber = get_subscriber("unit", level, captured.clone());
        tracing::subscriber::with_default(subscriber, f);
        captured.lines()
    }

    fn lines_of(f: impl FnOnce()) -> Vec<serde_json::Value> {
        lines_of_at("debug", f)
    }

    #[test]
    fn refused_requests_are_counted_not_logged() {
        let before = crate::http::PROTOCOL_ERRORS.get();
        let lines = lines_of(|| {
            // What actix-http emits for a request its parser refuses.
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: request parse error: invalid Header provided");
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: request parse error: message head is too large");
            tracing::error!("a real error");
        });
        assert_eq!(crate::http::PROTOCOL_ERRORS.get() - before, 2);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["msg"], "a real error");
        assert_eq!(lines[0]["level"], 50);
    }

    #[test]
    fn writes_one_bunyan_line_per_event_with_typed_fields() {
        let lines = lines_of(|| {
            let id: Arc<str> = Arc::from("abc\"1");
            tracing::info!(
                request_id = %id,
                status = 200u16,
                latency_seconds = 0.25,
                ok = true,
                delta = -3i64,
                rows = Some(2usize),
                model = None::<&str>,
                "request completed"
            );
            tracing::debug!("second");
            tracing::trace!("filtered out");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let l = &lines[0];
        assert_eq!(l["v"], 0);
        assert_eq!(l["name"], "unit");
        assert_eq!(l["msg"], "request completed");
        assert_eq!(l["level"], 30);
        assert_eq!(l["pid"], std::process::id());
        assert!(l["hostname"].as_str().is_some_and(|h| !h.is_empty()));
        assert!(l["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
        assert_eq!(l["target"], module_path!());
        assert_eq!(l["file"], file!());
        assert!(l["line"].as_u64().is_some());
        assert_eq!(l["request_id"], "abc\"1");
        assert_eq!(l["status"], 200);
        assert_eq!(l["latency_seconds"], 0.25);
        assert_eq!(l["ok"], true);
        assert_eq!(l["delta"], -3);
        assert_eq!(l["rows"], 2);
        assert!(l.get("model").is_none(), "None fields are left out: {l}");
        assert_eq!(lines[1]["level"], 20);
        assert_eq!(lines[1]["msg"], "second");
    }

    #[test]
    fn log_crate_records_keep_their_real_target_in_log_target() {
        let lines = lines_of(|| {
            let record = tracing_log::log::Record::builder()
                .args(format_args!("from log"))
                .level(tracing_log::log::Level::Warn)
                .target("some_crate::module")
                .file(Some("src/module.rs"))
                .line(Some(42))
                .build();
            tracing_log::format_trace(&record).expect("forwarded");
        });
        let l = lines.last().cloned().unwrap_or_default();
        assert_eq!(l["msg"], "from log");
        assert_eq!(l["level"], 40);
        // tracing-bunyan-formatter writes tracing-log's own callsite as target, file and line.
        assert_eq!(l["target"], "log");
        assert_eq!(l["log.target"], "some_crate::module");
        assert_eq!(l["log.file"], "src/module.rs");
        assert_eq!(l["log.line"], 42);
    }

    #[test]
    fn events_in_a_span_carry_its_fields_and_spans_write_no_lines_of_their_own() {
        let lines = lines_of(|| {
            let span = tracing::info_span!("job", job_id = 7u64, pid = 1u64);
            let _entered = span.enter();
            let inner = tracing::info_span!("step", step = "load");
            let _inner = inner.enter();
            tracing::warn!(level = "not a level", "inside");
        });
        assert_eq!(lines.len(), 1, "no START/END lines: {lines:?}");
        let l = &lines[0];
        assert_eq!(l["msg"], "[STEP - EVENT] inside");
        assert_eq!(l["job_id"], 7, "the parent span's fields too: {l}");
        assert_eq!(l["step"], "load");
        assert_eq!(l["level"], 40);
        assert_eq!(l["pid"], std::process::id(), "core fields win: {l}");
    }
}
