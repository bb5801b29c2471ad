//! Built-in scenarios, expressed as [`Plan`]s, and loading custom ones from YAML.

use crate::plan::{Phase, Plan, PlanError, Rate, RequestKind, Weights};
use model_bundle::Drift;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The built-in scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Builtin {
    Steady,
    Batch,
    Ramp,
    Spike,
    Errors,
    Drift,
    Mixed,
    Mislabel,
}

impl Builtin {
    pub const ALL: [Builtin; 8] = [
        Builtin::Steady,
        Builtin::Batch,
        Builtin::Ramp,
        Builtin::Spike,
        Builtin::Errors,
        Builtin::Drift,
        Builtin::Mixed,
        Builtin::Mislabel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Steady => "steady",
            Builtin::Batch => "batch",
            Builtin::Ramp => "ramp",
            Builtin::Spike => "spike",
            Builtin::Errors => "errors",
            Builtin::Drift => "drift",
            Builtin::Mixed => "mixed",
            Builtin::Mislabel => "mislabel",
        }
    }

    /// One line for `traffic-gen scenarios`.
    pub fn summary(self) -> &'static str {
        match self {
            Builtin::Steady => "valid single rows at --rate",
            Builtin::Batch => "valid batches of --batch-size rows at --rate",
            Builtin::Ramp => {
                "valid single rows, rate rising from --rate to --ramp-to over --ramp-duration, then held"
            }
            Builtin::Spike => {
                "valid single rows at --rate, with --spike-length bursts at --spike-factor x every --spike-every"
            }
            Builtin::Errors => {
                "--bad-share of requests bad (malformed JSON, wrong feature count, non-numeric, wrong content type, oversized), the rest valid rows"
            }
            Builtin::Drift => {
                "valid single rows shifted by --drift-shift training std and scaled by --drift-scale"
            }
            Builtin::Mixed => {
                "demo default: mostly valid rows, small batches, 2% drifted, 2% bad, 20% labelled with their true class via /feedback; rate waves between --rate and 2x"
            }
            Builtin::Mislabel => {
                "valid single rows, each labelled via /feedback, 40% with a wrong class on purpose: live accuracy falls to about 60%"
            }
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// The knobs of the built-in scenarios (custom YAML scenarios carry their own values).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub rate: f64,
    pub batch_size: usize,
    /// Share of bad requests in `errors`, 0..=1.
    pub bad_share: f64,
    pub ramp_to: f64,
    pub ramp_duration: Duration,
    pub spike_factor: f64,
    pub spike_every: Duration,
    pub spike_length: Duration,
    pub drift: Drift,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            rate: 50.0,
            batch_size: crate::plan::default_batch_size(),
            bad_share: 0.3,
            ramp_to: 200.0,
            ramp_duration: Duration::from_secs(60),
            spike_factor: 5.0,
            spike_every: Duration::from_secs(20),
            spike_length: Duration::from_secs(3),
            drift: Drift::default(),
        }
    }
}

/// Batch size in `mixed`: small batches, so a demo's server-side row counts stay readable.
pub const MIXED_BATCH_SIZE: usize = 4;
/// Share of bad requests in `mixed`; well under a 5% error-ratio alert threshold.
pub const MIXED_BAD_SHARE: f64 = 0.02;
/// Share of drifted rows in `mixed`.
pub const MIXED_DRIFT_SHARE: f64 = 0.02;
/// Share of batches in `mixed`.
pub const MIXED_BATCH_SHARE: f64 = 0.10;
/// Share of `mixed` predictions labelled with their true class, so live accuracy has data.
pub const MIXED_FEEDBACK_SHARE: f64 = 0.20;
/// Share of `mislabel` labels that are wrong on purpose.
pub const MISLABEL_WRONG_SHARE: f64 = 0.40;

/// A built-in scenario as a plan.
pub fn builtin(which: Builtin, p: &Params) -> Plan {
    let phase = |name: &str, duration: Duration, rate: Rate, weights: Weights| Phase {
        name: name.to_owned(),
        duration,
        rate,
        weights,
        batch_size: p.batch_size,
    };
    let minute = Duration::from_secs(60);
    let single = Weights::only(RequestKind::Single);
    let (phases, repeat) = match which {
        Builtin::Steady => (
            vec![phase("steady", minute, Rate::Constant(p.rate), single)],
            true,
        ),
        Builtin::Batch => (
            vec![phase(
                "batch",
                minute,
                Rate::Constant(p.rate),
                Weights::only(RequestKind::Batch),
            )],
            true,
        ),
        Builtin::Ramp => (
            vec![phase(
                "ramp",
                p.ramp_duration,
                Rate::Ramp {
                    from: p.rate,
                    to: p.ramp_to,
                },
                single,
            )],
            false,
        ),
        Builtin::Spike => {
            let base = p.spike_every.saturating_sub(p.spike_length);
            let mut phases = Vec::new();
            if !base.is_zero() {
                phases.push(phase("base", base, Rate::Constant(p.rate), single.clone()));
            }
            phases.push(phase(
                "spike",
                p.spike_length,
                Rate::Constant(p.rate * p.spike_factor),
                single,
            ));
            (phases, true)
        }
        Builtin::Errors => {
            let mut w = BTreeMap::from([(RequestKind::Single, 1.0 - p.bad_share)]);
            for kind in RequestKind::BAD {
                w.insert(kind, p.bad_share / RequestKind::BAD.len() as f64);
            }
            (
                vec![phase("errors", minute, Rate::Constant(p.rate), Weights(w))],
                true,
            )
        }
        Builtin::Drift => (
            vec![phase(
                "drift",
                minute,
                Rate::Constant(p.rate),
                Weights::only(RequestKind::Drift),
            )],
            true,
        ),
        Builtin::Mixed => {
            let valid = 1.0
                - MIXED_BAD_SHARE
                - MIXED_DRIFT_SHARE
                - MIXED_BATCH_SHARE
                - MIXED_FEEDBACK_SHARE;
            let mut w = BTreeMap::from([
                (RequestKind::Single, valid),
                (RequestKind::Batch, MIXED_BATCH_SHARE),
                (RequestKind::Drift, MIXED_DRIFT_SHARE),
                (RequestKind::Feedback, MIXED_FEEDBACK_SHARE),
            ]);
            for kind in RequestKind::BAD {
                w.insert(kind, MIXED_BAD_SHARE / RequestKind::BAD.len() as f64);
            }
            let w = Weights(w);
            let r = p.rate;
            let half = Duration::from_secs(30);
            let mut phases = vec![
                phase("calm", minute, Rate::Constant(r), w.clone()),
                phase(
                    "rise",
                    half,
                    Rate::Ramp {
                        from: r,
                        to: 2.0 * r,
                    },
                    w.clone(),
                ),
                phase("busy", half, Rate::Constant(2.0 * r), w.clone()),
                phase(
                    "fall",
                    half,
                    Rate::Ramp {
                        from: 2.0 * r,
                        to: r,
                    },
                    w,
                ),
            ];
            for ph in &mut phases {
                ph.batch_size = MIXED_BATCH_SIZE.min(p.batch_size);
            }
            (phases, true)
        }
        Builtin::Mislabel => {
            let w = BTreeMap::from([
                (RequestKind::Feedback, 1.0 - MISLABEL_WRONG_SHARE),
                (RequestKind::WrongFeedback, MISLABEL_WRONG_SHARE),
            ]);
            (
                vec![phase(
                    "mislabel",
                    minute,
                    Rate::Constant(p.rate),
                    Weights(w),
                )],
                true,
            )
        }
    };
    Plan {
        name: which.name().to_owned(),
        description: which.summary().to_owned(),
        repeat,
        drift: p.drift,
        phases,
    }
}

/// What `--scenario` names: a built-in, or a YAML file.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Builtin(Builtin),
    File(std::path::PathBuf),
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(b) = Builtin::from_name(s) {
            return Ok(Source::Builtin(b));
        }
        if s.ends_with(".yaml") || s.ends_with(".yml") || s.contains('/') {
            return Ok(Source::File(s.into()));
        }
        let names: Vec<_> = Builtin::ALL.iter().map(|b| b.name()).collect();
        Err(format!(
            "`{s}` is neither a built-in scenario ({}) nor a .yaml file",
            names.join(", ")
        ))
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario file {path}: {source}")]
    Invalid { path: String, source: PlanError },
    #[error("built-in scenario `{name}` with these options: {source}")]
    BadParams { name: String, source: PlanError },
}

impl Source {
    pub fn load(&self, params: &Params) -> Result<Plan, ScenarioError> {
        match self {
            Source::Builtin(b) => {
                let plan = builtin(*b, params);
                plan.validate().map_err(|source| ScenarioError::BadParams {
                    name: b.name().to_owned(),
                    source,
                })?;
                Ok(plan)
            }
            Source::File(path) => load_file(path),
        }
    }
}

pub fn load_file(path: &Path) -> Result<Plan, ScenarioError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: shown.clone(),
        source,
    })?;
    Plan::from_yaml(&text).map_err(|source| ScenarioError::Invalid {
        path: shown,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_a_valid_plan_named_after_itself() {
        for b in Builtin::ALL {
            let plan = builtin(b, &Params::default());
            if let Err(e) = plan.validate() {
                panic!("{}: {e}", b.name());
            }
            assert_eq!(plan.name, b.name());
            assert_eq!(b.name().parse::<Source>(), Ok(Source::Builtin(b)));
        }
    }

    #[test]
    fn errors_has_the_requested_bad_share_and_mixed_stays_under_five_percent() {
        let p = Params {
            bad_share: 0.4,
            ..Params::default()
        };
        let errors = builtin(Builtin::Errors, &p);
        let w = &errors.phases[0].weights;
        let bad: f64 = RequestKind::BAD.iter().map(|k| w.share(*k)).sum();
        assert!((bad - 0.4).abs() < 1e-12);
        assert!(RequestKind::BAD.iter().all(|k| w.share(*k) > 0.07));

        let mixed = builtin(Builtin::Mixed, &Params::default());
        for phase in &mixed.phases {
            let bad: f64 = RequestKind::BAD
                .iter()
                .map(|k| phase.weights.share(*k))
                .sum();
            assert!(bad <= 0.02 + 1e-12, "{bad}");
            assert!(phase.batch_size <= MIXED_BATCH_SIZE);
            // A little of everything but deliberate mislabels: the demo's live accuracy
            // should match the validation accuracy.
            assert!(
                RequestKind::ALL
                    .iter()
                    .filter(|k| **k != RequestKind::WrongFeedback)
                    .all(|k| phase.weights.share(*k) > 0.0)
            );
            assert_eq!(phase.weights.share(RequestKind::WrongFeedback), 0.0);
        }
    }

    #[test]
    fn ramp_holds_its_final_rate_and_spike_bursts_over_the_base_rate() {
        let p = Params::default();
        let ramp = builtin(Builtin::Ramp, &p);
        assert_eq!(ramp.rate_at(0.0), 50.0);
        assert_eq!(ramp.rate_at(30.0), 125.0);
        assert_eq!(ramp.rate_at(600.0), 200.0);
        let spike = builtin(Builtin::Spike, &p);
        assert_eq!(spike.rate_at(1.0), 50.0);
        assert_eq!(spike.rate_at(18.0), 250.0);
        assert_eq!(spike.rate_at(21.0), 50.0);
    }

    #[test]
    fn unknown_names_are_neither_builtins_nor_files() {
        let err = "x".parse::<Source>().expect_err("not a scenario");
        assert!(err.contains("steady, batch"), "{err}");
    }

    #[test]
    fn the_example_scenario_files_load() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("scenarios/ exists") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let plan = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(!plan.phases.is_empty());
                seen += 1;
            }
        }
        assert!(seen >= 1);
    }

    #[test]
    fn an_out_of_range_bad_share_is_refused() {
        let p = Params {
            bad_share: 1.5,
            ..Params::default()
        };
        let err = Source::Builtin(Builtin::Errors)
            .load(&p)
            .expect_err("negative weight");
        assert!(err.to_string().contains("weights"), "{err}");
    }
}
