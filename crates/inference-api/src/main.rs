use clap::{Parser, Subcommand};
use inference_api::configuration::get_configuration;
use inference_api::startup::Application;
use std::process::ExitCode;
use std::time::Duration;

// mimalloc: the request path allocates small short-lived buffers, which glibc malloc/free serves
// at several times mimalloc's cost (docs/performance.md, "Instructions per request").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serves the configured ONNX model over HTTP (configuration: configuration/*.yaml + APP_ env vars).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Exit 0 if the API on the configured port answers GET /health (for container health checks).
    Healthcheck {
        /// Path to probe, e.g. /ready.
        #[arg(long, default_value = "/health")]
        path: String,
    },
    /// Print the API's OpenAPI 3.1 document (what GET /openapi.json serves) and exit.
    Openapi,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        return match inference_api::openapi::document() {
            Ok(doc) => {
                println!("{doc}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot render the OpenAPI document: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match get_configuration() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Healthcheck { path }) = cli.command {
        let server = &settings.server;
        let timeout = Duration::from_secs(3);
        return metrics_core::health::healthcheck(
            "inference-api",
            &server.host,
            server.port,
            &path,
            timeout,
        );
    }

    // Keep the guard until exit: dropping it flushes the last lines.
    let (log_writer, _log_guard) = metrics_core::telemetry::stdout_writer();
    let subscriber =
        metrics_core::telemetry::get_subscriber("inference-api", &settings.log.level, log_writer);
    metrics_core::telemetry::init_subscriber(subscriber);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error.message = %format!("{e:#}"), "exiting");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
