//! The run plan as data: what kinds of request exist, and phases of rate and mix.
//!
//! Built-in scenarios ([`crate::scenario`]) and custom YAML files produce the same [`Plan`].

use model_bundle::Drift;
use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// Upper bound on batch size accepted in a plan (the API's default `max_batch_rows`).
pub const MAX_BATCH_SIZE: usize = 1000;

/// Every request the generator can send. Valid kinds come first.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// One valid row (named-feature object or array in manifest order).
    Single,
    /// A valid batch of `batch_size` rows.
    Batch,
    /// One valid row moved away from the training distribution.
    Drift,
    /// A truncated JSON body.
    MalformedJson,
    /// A row with one feature too few.
    WrongFeatureCount,
    /// A row with a string where a number belongs.
    NonNumeric,
    /// A valid row sent as `text/plain`.
    WrongContentType,
    /// A body larger than the API's body limit.
    Oversized,
    /// One valid row predicted with a request id, then labelled with its true class through
    /// `POST /feedback` (two HTTP requests; the outcome is the label's).
    Feedback,
    /// Like `feedback`, but labelled with a wrong class on purpose (live accuracy falls).
    WrongFeedback,
}

impl RequestKind {
    pub const ALL: [RequestKind; 10] = [
        RequestKind::Single,
        RequestKind::Batch,
        RequestKind::Drift,
        RequestKind::MalformedJson,
        RequestKind::WrongFeatureCount,
        RequestKind::NonNumeric,
        RequestKind::WrongContentType,
        RequestKind::Oversized,
        RequestKind::Feedback,
        RequestKind::WrongFeedback,
    ];

    /// The bad kinds, in the order the `errors` scenario mixes them.
    pub const BAD: [RequestKind; 5] = [
        RequestKind::MalformedJson,
        RequestKind::WrongFeatureCount,
        RequestKind::NonNumeric,
        RequestKind::WrongContentType,
        RequestKind::Oversized,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Single => "single",
            RequestKind::Batch => "batch",
            RequestKind::Drift => "drift",
            RequestKind::MalformedJson => "malformed_json",
            RequestKind::WrongFeatureCount => "wrong_feature_count",
            RequestKind::NonNumeric => "non_numeric",
            RequestKind::WrongContentType => "wrong_content_type",
            RequestKind::Oversized => "oversized",
            RequestKind::Feedback => "feedback",
            RequestKind::WrongFeedback => "wrong_feedback",
        }
    }

    /// Whether the API should accept this request.
    pub fn is_valid(self) -> bool {
        matches!(
            self,
            RequestKind::Single
                | RequestKind::Batch
                | RequestKind::Drift
                | RequestKind::Feedback
                | RequestKind::WrongFeedback
        )
    }

    /// The status the inference API promises for this kind (absent overload or outage).
    pub fn expected_status(self) -> u16 {
        match self {
            RequestKind::Single
            | RequestKind::Batch
            | RequestKind::Drift
            | RequestKind::Feedback
            | RequestKind::WrongFeedback => 200,
            RequestKind::MalformedJson => 400,
            RequestKind::WrongFeatureCount | RequestKind::NonNumeric => 422,
            RequestKind::WrongContentType => 415,
            RequestKind::Oversized => 413,
        }
    }
}

impl std::fmt::Display for RequestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EncodeLabelValue for RequestKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// Requests per second during a phase: constant, or a straight line from `from` to `to`.
///
/// In YAML: `rate: 50` or `rate: {from: 10, to: 200}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Rate {
    Constant(f64),
    Ramp { from: f64, to: f64 },
}

impl Rate {
    /// Rate at the phase's start and end.
    pub fn endpoints(self) -> (f64, f64) {
        match self {
            Rate::Constant(r) => (r, r),
            Rate::Ramp { from, to } => (from, to),
        }
    }

    /// Rate `t` seconds into a phase of `len` seconds.
    pub fn at(self, t: f64, len: f64) -> f64 {
        let (a, b) = self.endpoints();
        if len <= 0.0 {
            return b;
        }
        a + (b - a) * (t / len).clamp(0.0, 1.0)
    }
}

/// Relative weights over request kinds; kinds left out have weight 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Weights(pub BTreeMap<RequestKind, f64>);

impl Weights {
    pub fn only(kind: RequestKind) -> Self {
        Self(BTreeMap::from([(kind, 1.0)]))
    }

    pub fn total(&self) -> f64 {
        self.0.values().sum()
    }

    /// The share of `kind` among all requests (0 when absent).
    pub fn share(&self, kind: RequestKind) -> f64 {
        self.0.get(&kind).copied().unwrap_or(0.0) / self.total()
    }
}

/// One stretch of a run with a rate and a request mix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    #[serde(with = "humantime_serde_compat")]
    pub duration: Duration,
    pub rate: Rate,
    pub weights: Weights,
    /// Rows per `batch` request.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

pub fn default_batch_size() -> usize {
    32
}

fn default_repeat() -> bool {
    true
}

/// A whole scenario: phases run in order, then start over (`repeat: true`, the default) or stay
/// in the last phase at its final rate (`repeat: false`). The run's `--duration`/`--requests`
/// decides when it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_repeat")]
    pub repeat: bool,
    /// The transform applied to `drift` requests.
    #[serde(default)]
    pub drift: Drift,
    pub phases: Vec<Phase>,
}

/// Why a plan cannot run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("invalid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("the plan has no phases")]
    NoPhases,
    #[error("phase `{0}`: duration must be positive")]
    ZeroDuration(String),
    #[error("phase `{0}`: rates must be finite and non-negative")]
    BadRate(String),
    #[error("no phase sends anything: every rate is 0")]
    NothingToSend,
    #[error("phase `{0}`: weights must be finite, non-negative and not all 0")]
    BadWeights(String),
    #[error("phase `{0}`: batch_size must be between 1 and {MAX_BATCH_SIZE}")]
    BadBatchSize(String),
    #[error("drift: shift_std and scale must be finite")]
    BadDrift,
}

impl Plan {
    /// Parses and validates a YAML scenario.
    pub fn from_yaml(text: &str) -> Result<Self, PlanError> {
        let plan: Plan = serde_yaml::from_str(text)?;
        plan.validate()?;
        Ok(plan)
    }

    pub fn validate(&self) -> Result<(), PlanError> {
        if self.phases.is_empty() {
            return Err(PlanError::NoPhases);
        }
        if !(self.drift.shift_std.is_finite() && self.drift.scale.is_finite()) {
            return Err(PlanError::BadDrift);
        }
        for p in &self.phases {
            if p.duration.is_zero() {
                return Err(PlanError::ZeroDuration(p.name.clone()));
            }
            let (a, b) = p.rate.endpoints();
            if !(a.is_finite() && b.is_finite() && a >= 0.0 && b >= 0.0) {
                return Err(PlanError::BadRate(p.name.clone()));
            }
            let w = &p.weights.0;
            if w.values().any(|v| !v.is_finite() || *v < 0.0) || p.weights.total() <= 0.0 {
                return Err(PlanError::BadWeights(p.name.clone()));
            }
            if !(1..=MAX_BATCH_SIZE).contains(&p.batch_size) {
                return Err(PlanError::BadBatchSize(p.name.clone()));
            }
        }
        let sends = |p: &Phase| {
            let (a, b) = p.rate.endpoints();
            a > 0.0 || b > 0.0
        };
        let last_sends = self
            .phases
            .last()
            .is_some_and(|p| p.rate.endpoints().1 > 0.0);
        if !(self.phases.iter().any(sends) && (self.repeat || last_sends)) {
            return Err(PlanError::NothingToSend);
        }
        Ok(())
    }

    /// Length of one pass through the phases.
    pub fn cycle(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// The planned rate `t` seconds after the start.
    pub fn rate_at(&self, t: f64) -> f64 {
        let cycle = self.cycle().as_secs_f64();
        let mut t = if self.repeat { t % cycle } else { t };
        for p in &self.phases {
            let len = p.duration.as_secs_f64();
            if t < len {
                return p.rate.at(t, len);
            }
            t -= len;
        }
        self.phases.last().map_or(0.0, |p| p.rate.endpoints().1)
    }

    /// Requests the plan schedules in `[0, t)` seconds (its integral of rate, without rounding).
    pub fn planned_requests(&self, t: f64) -> f64 {
        let cycle = self.cycle().as_secs_f64();
        let per_cycle: f64 = self.phases.iter().map(phase_requests).sum();
        let (mut whole, mut t) = if self.repeat {
            ((t / cycle).floor() * per_cycle, t % cycle)
        } else {
            (0.0, t)
        };
        for p in &self.phases {
            let len = p.duration.as_secs_f64();
            if t <= len {
                let (a, _) = p.rate.endpoints();
                return whole + (a + p.rate.at(t, len)) / 2.0 * t;
            }
            whole += phase_requests(p);
            t -= len;
        }
        whole + self.phases.last().map_or(0.0, |p| p.rate.endpoints().1) * t
    }
}

fn phase_requests(p: &Phase) -> f64 {
    let (a, b) = p.rate.endpoints();
    (a + b) / 2.0 * p.duration.as_secs_f64()
}

/// `duration: 30s` in YAML, through humantime.
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "
name: rush
description: a quiet start, then a rush with some bad requests
repeat: false
drift: {shift_std: 0.5}
phases:
  - name: warm-up
    duration: 10s
    rate: 20
    weights: {single: 1}
  - name: rush
    duration: 1m
    rate: {from: 20, to: 200}
    weights: {single: 8, batch: 1, malformed_json: 1}
    batch_size: 16
";

    #[test]
    fn parses_constant_and_ramp_rates_durations_and_weights() {
        let plan = Plan::from_yaml(EXAMPLE).expect("valid plan");
        assert!(!plan.repeat);
        assert_eq!(plan.drift.shift_std, 0.5);
        assert_eq!(plan.drift.scale, 1.0);
        assert_eq!(plan.phases[0].rate, Rate::Constant(20.0));
        assert_eq!(plan.phases[0].batch_size, 32);
        assert_eq!(plan.phases[1].duration, Duration::from_secs(60));
        assert_eq!(
            plan.phases[1].rate,
            Rate::Ramp {
                from: 20.0,
                to: 200.0
            }
        );
        assert_eq!(plan.phases[1].weights.share(RequestKind::Batch), 0.1);
        // 10 s at 20/s, then 60 s averaging 110/s, then holding 200/s.
        assert_eq!(plan.planned_requests(10.0), 200.0);
        assert_eq!(plan.planned_requests(70.0), 200.0 + 6600.0);
        assert_eq!(plan.planned_requests(71.0), 200.0 + 6600.0 + 200.0);
        assert_eq!(plan.rate_at(40.0), 110.0);
    }

    #[test]
    fn rejects_plans_that_cannot_run() {
        for (bad, what) in [
            ("name: x\nphases: []", "no phases"),
            (
                "name: x\nphases: [{name: a, duration: 1s, rate: 0, weights: {single: 1}}]",
                "every rate is 0",
            ),
            (
                "name: x\nphases: [{name: a, duration: 1s, rate: 5, weights: {single: 0}}]",
                "weights",
            ),
            (
                "name: x\nphases: [{name: a, duration: 1s, rate: -5, weights: {single: 1}}]",
                "non-negative",
            ),
            (
                "name: x\nphases: [{name: a, duration: 1s, rate: 5, weights: {teapot: 1}}]",
                "unknown variant",
            ),
            (
                "name: x\nphases: [{name: a, duration: soon, rate: 5, weights: {single: 1}}]",
                "invalid YAML",
            ),
            (
                "name: x\nphases: [{name: a, duration: 1s, rate: 5, batch_size: 0, weights: {batch: 1}}]",
                "batch_size",
            ),
        ] {
            let err = Plan::from_yaml(bad).expect_err(bad).to_string();
            assert!(err.contains(what), "{bad}: {err}");
        }
    }

    #[test]
    fn kinds_encode_as_lower_snake_case_and_round_trip_through_serde() {
        for kind in RequestKind::ALL {
            let json = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert!(RequestKind::BAD.iter().all(|k| !k.is_valid()));
    }
}
