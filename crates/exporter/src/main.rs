use clap::{Parser, Subcommand};
use exporter::configuration::get_configuration;
use exporter::startup::Application;
use metrics_core::telemetry::{get_subscriber, init_subscriber, stdout_writer};
use std::process::ExitCode;
use std::time::Duration;

/// Prometheus exporter for machine health and model-artifact ages (GET /metrics on port 9101).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve /metrics and /health (the default).
    Serve,
    /// GET /health of the exporter configured here; exit 0 when it answers 2xx, else 1.
    Healthcheck {
        #[arg(long, default_value_t = 2.0)]
        timeout_seconds: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match get_configuration() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("exporter: invalid configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck { timeout_seconds } => {
            let timeout =
                Duration::try_from_secs_f64(timeout_seconds).unwrap_or(Duration::from_secs(2));
            let server = &settings.server;
            metrics_core::health::healthcheck(
                "exporter",
                &server.host,
                server.port,
                "/health",
                timeout,
            )
        }
        Command::Serve => {
            // Keep the guard until exit: dropping it writes out the last lines.
            let (log_writer, _log_guard) = stdout_writer();
            init_subscriber(get_subscriber("exporter", &settings.log.level, log_writer));
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error.message = %e, "cannot start the async runtime");
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(async {
                let app = Application::build(settings)?;
                tracing::info!(port = app.port(), "exporter listening");
                app.run_until_stopped().await?;
                anyhow::Ok(())
            });
            match result {
                Ok(()) => {
                    tracing::info!("exporter stopped");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error.cause_chain = ?e, error.message = %e, "exporter failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
