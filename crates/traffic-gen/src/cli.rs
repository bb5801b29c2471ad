//! Command-line options (clap derive). Every run option can also come from a `TRAFFIC_*`
//! environment variable, which is how docker compose configures it.

use crate::output::Format;
use crate::payload::DEFAULT_OVERSIZED_BYTES;
use crate::scenario::{Params, Source};
use clap::{Args, Parser, Subcommand};
use model_bundle::Drift;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The API's default model (`model.default` unless set): without --model the run sends to
/// `POST /predict` with bodies from this model's bundle.
const DEFAULT_MODEL: &str = "breast-cancer";

#[derive(Parser, Debug)]
#[command(
    name = "traffic-gen",
    version,
    about = "Drives the modelwatch inference API with realistic traffic and on-purpose faults, and reports what it saw."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Send traffic to the inference API and print a report.
    Run(Box<RunArgs>),
    /// List the built-in scenarios, one per line.
    Scenarios,
    /// Exit 0 when the /health endpoint of a running traffic-gen's metrics server answers 2xx.
    Healthcheck(HealthArgs),
}

fn duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Base URL of the inference API.
    #[arg(
        short,
        long,
        env = "TRAFFIC_TARGET",
        default_value = "http://127.0.0.1:8000"
    )]
    pub target: crate::http::Target,
    /// A built-in scenario (see `traffic-gen scenarios`) or a YAML scenario file.
    #[arg(short, long, env = "TRAFFIC_SCENARIO", default_value = "mixed")]
    pub scenario: Source,
    /// Base rate in requests per second (built-in scenarios; YAML files carry their own rates).
    #[arg(short, long, env = "TRAFFIC_RATE", default_value_t = 50.0)]
    pub rate: f64,
    /// Stop sending after this long (e.g. `30s`, `10m`, `365d`). Without --requests: 60s.
    #[arg(short, long, env = "TRAFFIC_DURATION", value_parser = duration)]
    pub duration: Option<Duration>,
    /// Stop after sending this many requests.
    #[arg(short = 'n', long, env = "TRAFFIC_REQUESTS")]
    pub requests: Option<u64>,
    /// Most requests in flight at once; a send that finds them all busy waits and counts as late.
    #[arg(
        short = 'c',
        long,
        env = "TRAFFIC_MAX_IN_FLIGHT",
        default_value_t = 256
    )]
    pub max_in_flight: usize,
    /// Seed of the request sequence (kinds, rows, timing). Random when absent; the report shows it.
    #[arg(long, env = "TRAFFIC_SEED")]
    pub seed: Option<u64>,
    /// Rows per request in `batch` (and the cap for `mixed`'s small batches).
    #[arg(long, env = "TRAFFIC_BATCH_SIZE", default_value_t = crate::plan::default_batch_size())]
    pub batch_size: usize,
    /// Share of bad requests in `errors`, between 0 and 1.
    #[arg(long, env = "TRAFFIC_BAD_SHARE", default_value_t = 0.3)]
    pub bad_share: f64,
    /// Final rate of `ramp` in requests per second (default: 4 x --rate).
    #[arg(long, env = "TRAFFIC_RAMP_TO")]
    pub ramp_to: Option<f64>,
    /// How long `ramp` takes to reach --ramp-to.
    #[arg(long, default_value = "60s", value_parser = duration)]
    pub ramp_duration: Duration,
    /// Rate multiplier during `spike` bursts.
    #[arg(long, default_value_t = 5.0)]
    pub spike_factor: f64,
    /// Time from one `spike` burst to the next.
    #[arg(long, default_value = "20s", value_parser = duration)]
    pub spike_every: Duration,
    /// Length of each `spike` burst.
    #[arg(long, default_value = "3s", value_parser = duration)]
    pub spike_length: Duration,
    /// `drift`: shift every feature by this many training standard deviations.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub drift_shift: f64,
    /// `drift`: scale every feature's distance from its training mean.
    #[arg(long, default_value_t = 1.0)]
    pub drift_scale: f64,
    /// The models to send to, comma-separated: `POST /models/<MODEL>/predict` (feedback names
    /// it too) instead of the API's default model at `POST /predict`. Several models take turns,
    /// request by request, each with bodies from its own bundle.
    #[arg(long, env = "TRAFFIC_MODEL", value_delimiter = ',')]
    pub model: Vec<String>,
    /// Where the models' bundles are: `<MODELS_DIR>/<MODEL>` (with --model).
    #[arg(long, env = "TRAFFIC_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
    /// Model bundle directory holding samples.csv (and model.json for drift statistics); default
    /// `<MODELS_DIR>/<MODEL>` with one --model, else `<MODELS_DIR>/breast-cancer` (the API's
    /// default model). Not with several models.
    #[arg(long, env = "TRAFFIC_BUNDLE")]
    pub bundle: Option<PathBuf>,
    /// Body size of `oversized` requests in bytes (the API's default limit is 2 MiB).
    #[arg(long, default_value_t = DEFAULT_OVERSIZED_BYTES)]
    pub oversized_bytes: usize,
    /// Per-request timeout; a request without an answer by then counts as an error.
    #[arg(long, env = "TRAFFIC_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub timeout: Duration,
    /// Wait up to this long for GET /ready to answer 200 before sending (default: probe /health once).
    #[arg(long, env = "TRAFFIC_WAIT_READY", value_parser = duration)]
    pub wait_ready: Option<Duration>,
    /// Format of the final report on stdout.
    #[arg(short, long, value_enum, env = "TRAFFIC_OUTPUT", default_value_t = Format::Text)]
    pub output: Format,
    /// Exit with status 3 when errors / completed exceeds this (0..1). Errors: non-2xx or no response.
    #[arg(long, env = "TRAFFIC_MAX_ERROR_RATIO")]
    pub max_error_ratio: Option<f64>,
    /// Serve client-side metrics on this address (`/metrics`, `/health`), e.g. 0.0.0.0:9102.
    #[arg(long, env = "TRAFFIC_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Never draw the live progress line (it is only drawn on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Args, Debug, Clone)]
pub struct HealthArgs {
    /// The metrics address of the traffic-gen to check (an unspecified IP means 127.0.0.1).
    #[arg(long, env = "TRAFFIC_METRICS_ADDR", default_value = "127.0.0.1:9102")]
    pub addr: SocketAddr,
}

impl RunArgs {
    /// The knobs of the built-in scenarios.
    pub fn params(&self) -> Params {
        Params {
            rate: self.rate,
            batch_size: self.batch_size,
            bad_share: self.bad_share,
            ramp_to: self.ramp_to.unwrap_or(4.0 * self.rate),
            ramp_duration: self.ramp_duration,
            spike_factor: self.spike_factor,
            spike_every: self.spike_every,
            spike_length: self.spike_length,
            drift: Drift {
                shift_std: self.drift_shift,
                scale: self.drift_scale,
            },
        }
    }

    /// What the run sends to: (model, its prediction route relative to the target, the bundle
    /// its bodies come from). One entry without --model: the API's default model at `predict`.
    pub fn targets(&self) -> Vec<(Option<String>, String, PathBuf)> {
        let bundle = |model: &str| {
            self.bundle
                .clone()
                .unwrap_or_else(|| self.models_dir.join(model))
        };
        if self.model.is_empty() {
            return vec![(None, "predict".into(), bundle(DEFAULT_MODEL))];
        }
        self.model
            .iter()
            .map(|model| {
                (
                    Some(model.clone()),
                    format!("models/{model}/predict"),
                    bundle(model),
                )
            })
            .collect()
    }

    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err("--rate must be a positive number".into());
        }
        if self.max_in_flight == 0 {
            return Err("--max-in-flight must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.bad_share) {
            return Err("--bad-share must be between 0 and 1".into());
        }
        if let Some(r) = self.max_error_ratio
            && !(0.0..=1.0).contains(&r)
        {
            return Err("--max-error-ratio must be between 0 and 1".into());
        }
        if self.timeout.is_zero() {
            return Err("--timeout must be positive".into());
        }
        for model in &self.model {
            if model.is_empty()
                || !model
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                || model.starts_with('.')
            {
                return Err(format!(
                    "--model {model:?}: a model name is letters, digits, '-', '_' and '.', not starting with '.'"
                ));
            }
        }
        if self.model.len() > 1 && self.bundle.is_some() {
            return Err(
                "--bundle names one bundle; with several --model, each comes from --models-dir"
                    .into(),
            );
        }
        if self.spike_length.is_zero() || self.spike_length > self.spike_every {
            return Err("--spike-length must be positive and at most --spike-every".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_a_runnable_mixed_scenario() {
        let cli = Cli::try_parse_from(["traffic-gen", "run"]).expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            args.scenario,
            Source::Builtin(crate::scenario::Builtin::Mixed)
        );
        args.validate().expect("valid defaults");
        assert_eq!(args.params().ramp_to, 200.0);
    }

    #[test]
    fn model_picks_the_routes_the_bundles_and_safe_names() {
        let run = |extra: &[&str]| {
            let argv = ["traffic-gen", "run"].iter().chain(extra).copied();
            match Cli::try_parse_from(argv).expect("parses").command {
                Command::Run(args) => *args,
                _ => panic!("not run"),
            }
        };
        let target = |model: Option<&str>, path: &str, bundle: &str| {
            (
                model.map(str::to_owned),
                path.to_owned(),
                PathBuf::from(bundle),
            )
        };
        assert_eq!(
            run(&[]).targets(),
            vec![target(None, "predict", "models/breast-cancer")]
        );
        assert_eq!(
            run(&["--models-dir", "/app/models"]).targets(),
            vec![target(None, "predict", "/app/models/breast-cancer")]
        );
        let wine = run(&["--model", "wine"]);
        assert_eq!(
            wine.targets(),
            vec![target(Some("wine"), "models/wine/predict", "models/wine")]
        );
        wine.validate().expect("a plain name");
        let own = run(&["--model", "wine", "--bundle", "/srv/wine/1.0.1"]);
        assert_eq!(own.targets()[0].2, PathBuf::from("/srv/wine/1.0.1"));
        let both = run(&[
            "--model",
            "breast-cancer,wine",
            "--models-dir",
            "/app/models",
        ]);
        both.validate().expect("two models");
        assert_eq!(
            both.targets(),
            vec![
                target(
                    Some("breast-cancer"),
                    "models/breast-cancer/predict",
                    "/app/models/breast-cancer"
                ),
                target(Some("wine"), "models/wine/predict", "/app/models/wine"),
            ]
        );
        let e = run(&["--model", "a,b", "--bundle", "x"])
            .validate()
            .expect_err("one bundle for two models");
        assert!(e.starts_with("--bundle"), "{e}");
        for bad in ["../wine", ".hidden", "a/b", "wine?x=1", "a,,b"] {
            let e = run(&["--model", bad]).validate().expect_err(bad);
            assert!(e.starts_with("--model"), "{e}");
        }
    }

    #[test]
    fn durations_scenarios_and_bounds_are_checked() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["traffic-gen", "run"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv)
        };
        assert!(parse(&["--duration", "soon"]).is_err());
        assert!(parse(&["--scenario", "nope"]).is_err());
        let Command::Run(args) = parse(&["-d", "1m30s", "-s", "x.yaml", "--bad-share", "2"])
            .expect("parses")
            .command
        else {
            panic!("not run")
        };
        assert_eq!(args.duration, Some(Duration::from_secs(90)));
        assert_eq!(args.scenario, Source::File("x.yaml".into()));
        assert!(args.validate().is_err());
    }
}
