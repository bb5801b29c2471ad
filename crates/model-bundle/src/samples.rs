//! A bundle's held-out rows (`samples.csv`), plus the training statistics of its `model.json`
//! that the drift transform needs: what the traffic generator sends, and what tests replay.

use crate::manifest::Manifest;
use crate::{MANIFEST_FILE, SAMPLES_FILE};
use anyhow::{Context, bail};
use std::path::Path;

/// Name of the class column in `samples.csv`.
pub const LABEL_COLUMN: &str = "label";

/// One row of `samples.csv`: feature values in manifest order and the true class name.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub features: Vec<f64>,
    pub label: String,
}

/// Mean and standard deviation of one feature on the training set.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureStat {
    pub name: String,
    pub mean: f64,
    pub std: f64,
}

/// The rows of a model bundle and their statistics.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// Feature names in the order the model expects them.
    pub features: Vec<String>,
    pub samples: Vec<Sample>,
    /// Training statistics, one per feature in `features` order.
    pub stats: Vec<FeatureStat>,
}

impl Bundle {
    /// Loads `<dir>/samples.csv` and, when present, `<dir>/model.json`.
    ///
    /// With a manifest (which must pass [`Manifest::parse`]), columns are reordered to the
    /// manifest's feature order and the training statistics come from it; without one, the CSV
    /// order is used and the statistics are computed from the samples themselves.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = if manifest_path.exists() {
            let text = std::fs::read_to_string(&manifest_path)
                .with_context(|| format!("reading {}", manifest_path.display()))?;
            Some(Manifest::parse(&text).map_err(|e| {
                anyhow::anyhow!("{e}").context(format!("parsing {}", manifest_path.display()))
            })?)
        } else {
            None
        };
        let samples_path = dir.join(SAMPLES_FILE);
        let file = std::fs::File::open(&samples_path)
            .with_context(|| format!("opening {}", samples_path.display()))?;
        let expected = manifest.as_ref().map(|m| m.features.clone());
        let (features, samples) = read_samples(file, expected.as_deref())
            .with_context(|| format!("reading {}", samples_path.display()))?;
        // A parsed manifest's statistics follow its features, in order.
        let stats = match manifest {
            Some(m) => m
                .training
                .feature_stats
                .into_iter()
                .map(|s| FeatureStat {
                    name: s.name,
                    mean: s.mean,
                    std: s.std,
                })
                .collect(),
            None => stats_from_samples(&features, &samples),
        };
        Ok(Self {
            features,
            samples,
            stats,
        })
    }
}

/// Reads samples from CSV text. Columns are every feature plus [`LABEL_COLUMN`]; when `expected`
/// is given the features are returned in that order and must all be present.
pub fn read_samples(
    reader: impl std::io::Read,
    expected: Option<&[String]>,
) -> anyhow::Result<(Vec<String>, Vec<Sample>)> {
    let mut csv = csv::Reader::from_reader(reader);
    let header: Vec<String> = csv.headers()?.iter().map(str::to_owned).collect();
    let label_at = header
        .iter()
        .position(|h| h == LABEL_COLUMN)
        .with_context(|| format!("no `{LABEL_COLUMN}` column"))?;
    let features: Vec<String> = match expected {
        Some(names) => names.to_vec(),
        None => header
            .iter()
            .filter(|h| *h != LABEL_COLUMN)
            .cloned()
            .collect(),
    };
    let columns: Vec<usize> = features
        .iter()
        .map(|name| {
            header
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("feature `{name}` is not a column"))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut samples = Vec::new();
    for (i, record) in csv.records().enumerate() {
        let record = record?;
        let row = i + 2;
        let values = columns
            .iter()
            .map(|&c| {
                let raw = record.get(c).unwrap_or("");
                raw.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .with_context(|| format!("line {row}: `{raw}` is not a finite number"))
            })
            .collect::<anyhow::Result<Vec<f64>>>()?;
        let label = record.get(label_at).unwrap_or("").trim().to_owned();
        samples.push(Sample {
            features: values,
            label,
        });
    }
    if samples.is_empty() {
        bail!("no rows");
    }
    Ok((features, samples))
}

/// Mean and population standard deviation of every feature over `samples`.
pub fn stats_from_samples(features: &[String], samples: &[Sample]) -> Vec<FeatureStat> {
    let n = samples.len().max(1) as f64;
    features
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let mean = samples.iter().map(|s| s.features[j]).sum::<f64>() / n;
            let var = samples
                .iter()
                .map(|s| (s.features[j] - mean).powi(2))
                .sum::<f64>()
                / n;
            FeatureStat {
                name: name.clone(),
                mean,
                std: var.sqrt(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_the_manifest_order_and_labels_are_kept() {
        let csv = "b,label,a\n2,benign,1\n4,malignant,3\n";
        let order = vec!["a".to_owned(), "b".to_owned()];
        let (features, samples) = read_samples(csv.as_bytes(), Some(&order)).expect("valid csv");
        assert_eq!(features, order);
        assert_eq!(samples[0].features, vec![1.0, 2.0]);
        assert_eq!(samples[1].label, "malignant");
    }

    #[test]
    fn a_missing_feature_or_a_bad_number_is_an_error() {
        let order = vec!["a".to_owned(), "c".to_owned()];
        let err = read_samples("a,label\n1,x\n".as_bytes(), Some(&order)).expect_err("no c");
        assert!(err.to_string().contains("`c`"), "{err}");
        let err = read_samples("a,label\nNaN,x\n".as_bytes(), None).expect_err("NaN");
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
    }

    #[test]
    fn the_bundled_model_loads_with_thirty_features_and_training_stats() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/breast-cancer");
        let bundle = Bundle::load(&dir).expect("bundle loads");
        assert_eq!(bundle.features.len(), 30);
        assert_eq!(bundle.stats.len(), 30);
        assert_eq!(bundle.features[0], "mean radius");
        assert!(bundle.samples.len() >= 100);
        assert!(bundle.stats.iter().all(|s| s.std > 0.0));
        assert!(
            bundle
                .samples
                .iter()
                .all(|s| s.label == "benign" || s.label == "malignant")
        );
    }
}
