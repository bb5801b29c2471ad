//! Bunyan JSON logging, set up once per process.
//!
//! One line per event in the [bunyan](https://github.com/trentm/node-bunyan) format that
//! `tracing-bunyan-formatter` writes (`v`, `name`, `msg`, `level`, `hostname`, `pid`, `time`,
//! `target`, `line`, `file`, then the event's fields and those of the spans it is in), written
//! straight into a reused per-thread buffer. The access log writes one such line per request, so
//! the cost per line is part of every request. `tracing-bunyan-formatter`, used before, spent
//! about 4 µs on each (a map of `serde_json::Value`s and a dozen allocations per line); this layer
//! spends about 1 µs (`cargo run --release -p metrics-core --example log_cost -- sink`).

use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::thread::LocalKey;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::set_global_default;
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Registry, layer::SubscriberExt};

/// Where actix-http reports, at ERROR, each connection whose request its HTTP/1 parser refused
/// (a bad `Content-Length`, `Content-Length` with `Transfer-Encoding`, an oversize head, too many
/// headers) and answered itself with an empty 400 or 431, before any application code runs.
const PROTOCOL_ERROR_TARGET: &str = "actix_http::h1::dispatcher";

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
    Registry::default()
        .with(BunyanLayer::new(name, sink).with_filter(filter))
        .with(
            ProtocolErrorCounter
                .with_filter(Targets::new().with_target(PROTOCOL_ERROR_TARGET, Level::ERROR)),
        )
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

/// Writes each event as one bunyan JSON line to `writer`.
pub struct BunyanLayer<W> {
    /// `{"v":0,"name":"<name>",` — the same for every line.
    prefix: String,
    /// `,"hostname":"<host>","pid":<pid>,"time":"` — the same for every line.
    host_pid: String,
    writer: W,
}

impl<W> BunyanLayer<W> {
    pub fn new(name: &str, writer: W) -> Self {
        let hostname = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        Self {
            prefix: format!(r#"{{"v":0,"name":{},"#, json_string(name)),
            host_pid: format!(
                r#","hostname":{},"pid":{},"time":""#,
                json_string(&hostname),
                std::process::id()
            ),
            writer,
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Bunyan's numeric levels.
fn bunyan_level(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 50,
        Level::WARN => 40,
        Level::INFO => 30,
        Level::DEBUG => 20,
        Level::TRACE => 10,
    }
}

/// Fields bunyan itself uses; an event or span field with one of these names is dropped.
const RESERVED: [&str; 10] = [
    "v", "name", "msg", "level", "hostname", "pid", "time", "target", "line", "file",
];

/// Appends `,"key":value` for every field to a line; `message` becomes `msg` separately.
struct JsonFields<'a> {
    out: &'a mut Vec<u8>,
    message: Option<&'a mut Vec<u8>>,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        if RESERVED.contains(&name) || name.starts_with("log.") {
            return false;
        }
        self.out.push(b',');
        let _ = serde_json::to_writer(&mut *self.out, name);
        self.out.push(b':');
        true
    }

    fn value(&mut self, field: &Field, value: impl serde::Serialize) {
        if self.key(field) {
            let _ = serde_json::to_writer(&mut *self.out, &value);
        }
    }
}

impl Visit for JsonFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes null for them, as bunyan's formatter did.
        self.value(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message"
            && let Some(m) = self.message.as_deref_mut()
        {
            m.extend_from_slice(value.as_bytes());
            return;
        }
        self.value(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message"
            && let Some(m) = self.message.as_deref_mut()
        {
            let _ = write!(m, "{value:?}");
            return;
        }
        if self.key(field) {
            // Rendered with Debug (Display for `%` fields), then written as a JSON string.
            let render = |scratch: &mut Vec<u8>| {
                scratch.clear();
                let _ = write!(scratch, "{value:?}");
                let text = String::from_utf8_lossy(scratch);
                let _ = serde_json::to_writer(&mut *self.out, text.as_ref());
            };
            with_reused(&DEBUG_SCRATCH, render);
        }
    }
}

/// The JSON fields of a span (`,"k":v,...`), kept in its extensions.
struct SpanFields(Vec<u8>);

/// Per-thread buffers reused for every line.
#[derive(Default)]
struct Buffers {
    line: Vec<u8>,
    fields: Vec<u8>,
    message: Vec<u8>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::default();
    static DEBUG_SCRATCH: RefCell<Vec<u8>> = RefCell::default();
}

impl<W> BunyanLayer<W> {
    fn format<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, b: &mut Buffers)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Buffers {
            line,
            fields,
            message,
        } = b;
        line.clear();
        fields.clear();
        message.clear();
        // Records from the `log` crate (actix, say) carry their real target, file and line in
        // `log.*` fields; normalizing puts them where tracing's own events have them.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        event.record(&mut JsonFields {
            out: fields,
            message: Some(message),
        });
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>() {
                    fields.extend_from_slice(f);
                }
            }
        }
        line.extend_from_slice(self.prefix.as_bytes());
        line.extend_from_slice(br#""msg":"#);
        if message.is_empty() {
            let _ = serde_json::to_writer(&mut *line, meta.target());
        } else {
            let text = String::from_utf8_lossy(message);
            let _ = serde_json::to_writer(&mut *line, text.as_ref());
        }
        let _ = write!(line, r#","level":{}"#, bunyan_level(meta.level()));
        line.extend_from_slice(self.host_pid.as_bytes());
        let _ = time::OffsetDateTime::now_utc()
            .format_into(line, &time::format_description::well_known::Rfc3339);
        line.extend_from_slice(br#"","target":"#);
        let _ = serde_json::to_writer(&mut *line, meta.target());
        line.extend_from_slice(br#","line":"#);
        let _ = serde_json::to_writer(&mut *line, &meta.line());
        line.extend_from_slice(br#","file":"#);
        let _ = serde_json::to_writer(&mut *line, &meta.file());
        line.extend_from_slice(fields);
        line.extend_from_slice(b"}\n");
    }
}

impl<S, W> Layer<S> for BunyanLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Vec::new();
        attrs.record(&mut JsonFields {
            out: &mut fields,
            message: None,
        });
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(&mut JsonFields {
                out: fields,
                message: None,
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let write = |b: &mut Buffers| {
            self.format(event, &ctx, b);
            let _ = self
                .writer
                .make_writer_for(event.metadata())
                .write_all(&b.line);
        };
        with_reused(&BUFFERS, write);
    }
}

/// Runs `f` on this thread's buffer, or on a fresh one when it is already in use: an event logged
/// while a line is being formatted (from a Debug impl, say) must not panic on the borrowed one.
fn with_reused<T: Default>(key: &'static LocalKey<RefCell<T>>, mut f: impl FnMut(&mut T)) {
    let reused = key.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            f(&mut buffer);
            true
        }
        Err(_) => false,
    });
    if reused != Ok(true) {
        f(&mut T::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(f: impl FnOnce()) -> Vec<serde_json::Value> {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = get_subscriber("unit", "debug", move || writer.clone());
        tracing::subscriber::with_default(subscriber, f);
        let bytes = sink.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
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
        let time = l["time"].as_str().unwrap_or_default();
        assert!(
            time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{time}"
        );
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
    fn log_crate_records_keep_their_own_target_and_line() {
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
        assert_eq!(l["target"], "some_crate::module");
        assert_eq!(l["file"], "src/module.rs");
        assert_eq!(l["line"], 42);
        assert!(l.get("log.target").is_none(), "{l}");
    }

    #[test]
    fn span_fields_are_added_and_reserved_names_are_not_overwritten() {
        let lines = lines_of(|| {
            let span = tracing::info_span!("job", job_id = 7u64, pid = 1u64);
            let _entered = span.enter();
            tracing::warn!(level = "not a level", name = "x", "inside");
        });
        let l = lines.last().cloned().unwrap_or_default();
        assert_eq!(l["msg"], "inside");
        assert_eq!(l["job_id"], 7);
        assert_eq!(l["level"], 40);
        assert_eq!(l["name"], "unit");
        assert_eq!(l["pid"], std::process::id());
    }
}
