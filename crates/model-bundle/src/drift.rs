//! The drift transform: moves rows away from the training distribution, in units of each
//! feature's training standard deviation, so a drift detector has something to find.
//!
//! `x' = mean + (x - mean) * scale + shift_std * std`, per feature. `scale = 1, shift_std = 0` is
//! the identity. The default shifts every feature by one training standard deviation.

use crate::samples::FeatureStat;
use serde::{Deserialize, Serialize};

/// How far drifted rows are moved.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// Added to every feature, in training standard deviations of that feature.
    #[serde(default = "default_shift_std")]
    pub shift_std: f64,
    /// Multiplies every feature's distance from its training mean (1 keeps the spread).
    #[serde(default = "default_scale")]
    pub scale: f64,
}

fn default_shift_std() -> f64 {
    1.0
}

fn default_scale() -> f64 {
    1.0
}

impl Default for Drift {
    fn default() -> Self {
        Self {
            shift_std: default_shift_std(),
            scale: default_scale(),
        }
    }
}

impl Drift {
    /// Applies the transform to one row. `stats[i]` describes `row[i]`.
    ///
    /// # Panics
    /// If `row` and `stats` have different lengths.
    pub fn apply(&self, row: &[f64], stats: &[FeatureStat]) -> Vec<f64> {
        assert_eq!(row.len(), stats.len(), "one statistic per feature");
        row.iter()
            .zip(stats)
            .map(|(&x, s)| s.mean + (x - s.mean) * self.scale + self.shift_std * s.std)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mean: f64, std: f64) -> FeatureStat {
        FeatureStat {
            name: "f".into(),
            mean,
            std,
        }
    }

    #[test]
    fn shifts_by_training_standard_deviations_and_scales_around_the_mean() {
        let stats = [stat(10.0, 2.0), stat(0.0, 0.5)];
        let shifted = Drift {
            shift_std: 0.5,
            scale: 1.0,
        }
        .apply(&[11.0, 1.0], &stats);
        assert_eq!(shifted, vec![12.0, 1.25]);
        let scaled = Drift {
            shift_std: 0.0,
            scale: 2.0,
        }
        .apply(&[11.0, 1.0], &stats);
        assert_eq!(scaled, vec![12.0, 2.0]);
    }

    #[test]
    fn the_default_moves_the_sample_mean_by_one_standard_deviation() {
        let stats = [stat(5.0, 2.0)];
        let rows = [[3.0], [5.0], [7.0]];
        let mean: f64 = rows
            .iter()
            .map(|r| Drift::default().apply(r, &stats)[0])
            .sum::<f64>()
            / 3.0;
        assert!((mean - 7.0).abs() < 1e-12);
    }
}
