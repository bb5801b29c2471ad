//! The bundle manifest `model.json`, written by `scripts/train_model.py`: parsed and checked here
//! for every service.
//!
//! [`Manifest`] is all of it, checked for internal consistency (the inference API serves only
//! such a bundle). [`Identity`] is what names a bundle and dates it (name, version, `trained_at`),
//! read without the rest (the exporter reports any bundle it can name). Every manifest
//! [`Manifest::parse`] accepts, [`Identity::parse`] accepts too (the fuzz target `manifest`
//! checks it).

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// What names and dates a bundle; other fields are ignored.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Identity {
    /// The `model` label of every series: never empty.
    pub name: String,
    pub version: String,
    /// RFC 3339, e.g. `2026-11-21T00:00:00Z`.
    pub trained_at: String,
    /// How old the model may get before it is stale (ModelStale), in days: optional, more than 0
    /// and at most [`MAX_AGE_DAYS_LIMIT`]; [`DEFAULT_MAX_AGE_DAYS`] when absent.
    #[serde(default = "default_max_age_days")]
    pub max_age_days: f64,
}

/// The allowed age of a model whose manifest sets none: 30 days.
pub const DEFAULT_MAX_AGE_DAYS: f64 = 30.0;
/// The largest `max_age_days` a manifest may set: 100 years.
pub const MAX_AGE_DAYS_LIMIT: f64 = 36_500.0;

fn default_max_age_days() -> f64 {
    DEFAULT_MAX_AGE_DAYS
}

impl Identity {
    /// Parses the manifest's identity and checks it: a non-blank name and an RFC 3339
    /// `trained_at`.
    pub fn parse(json: &str) -> Result<Self, String> {
        let id: Identity = serde_json::from_str(json).map_err(|e| e.to_string())?;
        id.check()?;
        Ok(id)
    }

    fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` is empty".into());
        }
        if !(self.max_age_days > 0.0 && self.max_age_days <= MAX_AGE_DAYS_LIMIT) {
            return Err(format!(
                "`max_age_days` {} is not more than 0 and at most {MAX_AGE_DAYS_LIMIT}",
                self.max_age_days
            ));
        }
        self.trained_at_unix().map(|_| ())
    }

    /// `max_age_days` in seconds.
    pub fn max_age_seconds(&self) -> f64 {
        self.max_age_days * 86_400.0
    }

    /// `trained_at` as seconds since the Unix epoch, with sub-second precision.
    pub fn trained_at_unix(&self) -> Result<f64, String> {
        let t = time::OffsetDateTime::parse(
            &self.trained_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| format!("`trained_at` {:?} is not RFC 3339: {e}", self.trained_at))?;
        Ok(t.unix_timestamp_nanos() as f64 / 1e9)
    }
}

/// The whole manifest.
#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    #[serde(flatten)]
    pub identity: Identity,
    pub input: InputSpec,
    pub outputs: OutputSpec,
    pub features: Vec<String>,
    pub classes: Vec<String>,
    pub validation: Validation,
    pub training: Training,
    #[serde(default)]
    pub artifacts: HashMap<String, Artifact>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct InputSpec {
    pub name: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct OutputSpec {
    pub label: String,
    pub probabilities: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Validation {
    pub scores: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Training {
    pub feature_stats: Vec<FeatureStats>,
}

/// Training statistics of one feature, for imputation, drift detection and the drift transform.
#[derive(Clone, Debug, Deserialize)]
pub struct FeatureStats {
    pub name: String,
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Inclusive upper edge of each quantile bin.
    pub bin_edges: Vec<f64>,
    /// Share of training rows in each bin.
    pub bin_fractions: Vec<f64>,
}

/// Bins are stored as one byte per row in the API's drift window.
pub const MAX_BINS: usize = 256;

impl FeatureStats {
    /// 1 to [`MAX_BINS`] ascending edges, one training share per bin.
    fn check_bins(&self) -> Result<(), String> {
        let (edges, shares) = (&self.bin_edges, &self.bin_fractions);
        let why = if edges.is_empty() || edges.len() > MAX_BINS {
            format!("needs 1 to {MAX_BINS} bin_edges, has {}", edges.len())
        } else if shares.len() != edges.len() {
            format!(
                "has {} bin_edges but {} bin_fractions",
                edges.len(),
                shares.len()
            )
        } else if edges.windows(2).any(|w| w[0] > w[1]) {
            "bin_edges must be ascending".to_string()
        } else {
            return Ok(());
        };
        Err(format!("feature {:?} {why}", self.name))
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Artifact {
    pub sha256: String,
}

impl Manifest {
    /// Parses the manifest and checks its internal consistency; every message starts with
    /// `model.json: `.
    pub fn parse(json: &str) -> Result<Self, String> {
        Self::parse_unprefixed(json).map_err(|e| format!("model.json: {e}"))
    }

    fn parse_unprefixed(json: &str) -> Result<Self, String> {
        let m: Manifest = serde_json::from_str(json).map_err(|e| e.to_string())?;
        m.identity.check()?;
        if m.features.is_empty() {
            return Err("lists no features".into());
        }
        if m.classes.len() < 2 {
            return Err("must list at least two classes".into());
        }
        if m.training.feature_stats.len() != m.features.len()
            || m.training
                .feature_stats
                .iter()
                .zip(&m.features)
                .any(|(s, f)| &s.name != f)
        {
            return Err("training.feature_stats must follow `features` in order".into());
        }
        for s in &m.training.feature_stats {
            s.check_bins()?;
        }
        Ok(m)
    }

    pub fn name(&self) -> &str {
        &self.identity.name
    }

    pub fn version(&self) -> &str {
        &self.identity.version
    }

    /// `trained_at` as seconds since the Unix epoch.
    pub fn trained_at_unix(&self) -> Result<f64, String> {
        self.identity.trained_at_unix()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/breast-cancer/model.json"
        ))
        .expect("bundled manifest")
    }

    #[test]
    fn the_bundled_manifest_parses() {
        let m = Manifest::parse(&bundled()).expect("valid");
        assert_eq!(m.name(), "breast-cancer");
        assert_eq!(m.features.len(), 30);
        assert_eq!(m.classes, ["malignant", "benign"]);
        assert_eq!(m.trained_at_unix(), Ok(1_795_219_200.0)); // 2026-11-21T00:00:00Z
        assert!(m.artifacts["model.onnx"].sha256.len() == 64);
    }

    #[test]
    fn inconsistent_manifests_are_rejected() {
        let mut raw: serde_json::Value = serde_json::from_str(&bundled()).expect("json");
        raw["classes"] = serde_json::json!(["only"]);
        assert!(Manifest::parse(&raw.to_string()).is_err());
        let mut raw: serde_json::Value = serde_json::from_str(&bundled()).expect("json");
        raw["trained_at"] = serde_json::json!("yesterday");
        assert!(Manifest::parse(&raw.to_string()).is_err());
        // Found by the fuzz target `manifest`: the exporter refused it, the API served it.
        let mut raw: serde_json::Value = serde_json::from_str(&bundled()).expect("json");
        raw["name"] = serde_json::json!(" ");
        assert_eq!(
            Manifest::parse(&raw.to_string()).expect_err("rejected"),
            "model.json: `name` is empty"
        );
    }

    #[test]
    fn the_identity_alone_is_enough_for_identity_parse() {
        assert!(Identity::parse("{}").is_err());
        assert!(
            Identity::parse(r#"{"name":"","version":"1","trained_at":"2026-11-21T00:00:00Z"}"#)
                .is_err()
        );
        let err = Identity::parse(r#"{"name":"m","version":"1","trained_at":"yesterday"}"#)
            .expect_err("not RFC 3339");
        assert!(err.contains("yesterday"), "{err}");
        let id = Identity::parse(
            r#"{"name":"m","version":"1","trained_at":"2026-11-21T01:00:00.5+01:00"}"#,
        )
        .expect("valid");
        assert_eq!(id.trained_at_unix(), Ok(1_795_219_200.5));
        let full = Manifest::parse(&bundled()).expect("valid");
        assert_eq!(Identity::parse(&bundled()), Ok(full.identity));
    }

    #[test]
    fn max_age_days_is_30_unless_set_and_must_be_a_positive_number_of_days() {
        let with = |max_age: &str| {
            Identity::parse(&format!(
                r#"{{"name":"m","version":"1","trained_at":"2026-11-21T00:00:00Z"{max_age}}}"#
            ))
        };
        assert_eq!(with("").map(|i| i.max_age_seconds()), Ok(2_592_000.0));
        assert_eq!(
            with(r#","max_age_days":0.5"#).map(|i| i.max_age_seconds()),
            Ok(43_200.0)
        );
        for bad in ["0", "-1", "36501"] {
            let err = with(&format!(r#","max_age_days":{bad}"#)).expect_err(bad);
            assert!(err.contains("max_age_days"), "{bad}: {err}");
        }
        for not_a_number in ["\"7\"", "null"] {
            assert!(with(&format!(r#","max_age_days":{not_a_number}"#)).is_err());
        }
        let mut raw: serde_json::Value = serde_json::from_str(&bundled()).expect("json");
        raw["max_age_days"] = serde_json::json!(-3);
        assert!(
            Manifest::parse(&raw.to_string())
                .expect_err("rejected")
                .contains("max_age_days")
        );
    }

    #[test]
    fn drift_bins_must_be_usable() {
        let broken = |edit: fn(&mut serde_json::Value)| {
            let mut raw: serde_json::Value = serde_json::from_str(&bundled()).expect("json");
            edit(&mut raw["training"]["feature_stats"][3]);
            Manifest::parse(&raw.to_string()).expect_err("rejected")
        };
        assert_eq!(
            broken(|s| s["bin_edges"] = serde_json::json!([])),
            "model.json: feature \"mean area\" needs 1 to 256 bin_edges, has 0"
        );
        assert_eq!(
            broken(|s| s["bin_fractions"] = serde_json::json!([1.0])),
            "model.json: feature \"mean area\" has 10 bin_edges but 1 bin_fractions"
        );
        assert_eq!(
            broken(|s| s["bin_edges"][4] = serde_json::json!(1e9)),
            "model.json: feature \"mean area\" bin_edges must be ascending"
        );
    }
}
