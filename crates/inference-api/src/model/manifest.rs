//! The bundle manifest `model.json`: parsed and checked by the shared `model-bundle` crate; here,
//! what only the API does with it.

pub use model_bundle::manifest::{FeatureStats, Manifest};
use std::time::{SystemTime, UNIX_EPOCH};

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

    #[test]
    fn the_public_view_drops_feature_stats_only() {
        let raw = serde_json::json!({
            "name": "m",
            "features": ["a", "b"],
            "training": {"rows": 455, "feature_stats": [{"name": "a"}, {"name": "b"}]},
        });
        let view = public_view(&raw);
        assert!(view["training"].get("feature_stats").is_none());
        assert_eq!(view["training"]["rows"], raw["training"]["rows"]);
        assert_eq!(view["features"], raw["features"]);
    }
}
