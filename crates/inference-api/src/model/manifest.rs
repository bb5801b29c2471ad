//! The bundle manifest `model.json`, written by `scripts/train_model.py`.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    pub(crate) name: String,
    pub(crate) version: String,
    /// RFC 3339, e.g. `2026-11-21T00:00:00Z`.
    pub(crate) trained_at: String,
    pub(crate) input: InputSpec,
    pub(crate) outputs: OutputSpec,
    pub features: Vec<String>,
    pub(crate) classes: Vec<String>,
    pub(crate) validation: Validation,
    pub training: Training,
    #[serde(default)]
    pub(crate) artifacts: HashMap<String, Artifact>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct InputSpec {
    pub(crate) name: String,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct OutputSpec {
    pub(crate) label: String,
    pub(crate) probabilities: String,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Validation {
    pub(crate) scores: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Training {
    pub feature_stats: Vec<FeatureStats>,
}

/// Training statistics of one feature, for imputation and drift.
#[derive(Clone, Debug, Deserialize)]
pub struct FeatureStats {
    pub(crate) name: String,
    pub mean: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// Inclusive upper edge of each quantile bin.
    pub(crate) bin_edges: Vec<f64>,
    /// Share of training rows in each bin.
    pub(crate) bin_fractions: Vec<f64>,
}

/// Bins are stored as one byte per row in the drift window.
const MAX_BINS: usize = 256;

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
        Err(format!("model.json: feature {:?} {why}", self.name))
    }
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Artifact {
    pub(crate) sha256: String,
}

impl Manifest {
    /// Parses and checks the manifest's internal consistency.
    pub fn parse(json: &str) -> Result<Self, String> {
        let m: Manifest = serde_json::from_str(json).map_err(|e| format!("model.json: {e}"))?;
        // The name is the `model` label of every series: the exporter refuses an empty one too.
        if m.name.trim().is_empty() {
            return Err("model.json: `name` is empty".into());
        }
        if m.features.is_empty() {
            return Err("model.json lists no features".into());
        }
        if m.classes.len() < 2 {
            return Err("model.json must list at least two classes".into());
        }
        if m.training.feature_stats.len() != m.features.len()
            || m.training
                .feature_stats
                .iter()
                .zip(&m.features)
                .any(|(s, f)| &s.name != f)
        {
            return Err(
                "model.json: training.feature_stats must follow `features` in order".into(),
            );
        }
        for s in &m.training.feature_stats {
            s.check_bins()?;
        }
        m.trained_at_unix()?;
        Ok(m)
    }

    /// `trained_at` as seconds since the Unix epoch.
    pub(crate) fn trained_at_unix(&self) -> Result<f64, String> {
        let t = time::OffsetDateTime::parse(
            &self.trained_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| format!("model.json trained_at {:?}: {e}", self.trained_at))?;
        Ok(t.unix_timestamp_nanos() as f64 / 1e9)
    }
}

/// The manifest as served by `GET /model`: everything but the bulky training statistics.
pub(crate) fn public_view(raw: &serde_json::Value) -> serde_json::Value {
    let mut view = raw.clone();
    if let Some(training) = view.get_mut("training").and_then(|t| t.as_object_mut()) {
        training.remove("feature_stats");
    }
    view
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
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
        assert_eq!(m.name, "breast-cancer");
        assert_eq!(m.features.len(), 30);
        assert_eq!(m.classes, ["malignant", "benign"]);
        assert_eq!(m.trained_at_unix(), Ok(1_795_219_200.0)); // 2026-11-21T00:00:00Z
        assert!(m.artifacts["model.onnx"].sha256.len() == 64);
    }

    #[test]
    fn the_public_view_drops_feature_stats_only() {
        let raw: serde_json::Value = serde_json::from_str(&bundled()).expect("json");
        let view = public_view(&raw);
        assert!(view["training"].get("feature_stats").is_none());
        assert_eq!(view["training"]["rows"], raw["training"]["rows"]);
        assert_eq!(view["features"], raw["features"]);
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
