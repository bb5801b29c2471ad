//! The drift window: the most recent rows' values, one shard per worker so recording a row
//! takes only that worker's (uncontended) lock. Recording copies the values; they are binned, and
//! PSI computed, at scrape time by merging shards: a request pays a copy of its rows, not a bin
//! search per value (docs/performance.md, "Where a 100-row request's time goes").

use super::psi::psi;
use crate::model::manifest::Manifest;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per-feature training bins and range, in input order.
#[derive(Debug, Clone)]
pub(crate) struct FeatureBins {
    pub(crate) edges: Vec<Vec<f32>>,
    pub(crate) expected: Vec<Vec<f64>>,
    pub(crate) min: Vec<f32>,
    pub(crate) max: Vec<f32>,
    /// Every feature's edges but the last, padded with +inf to `stride`, a multiple of
    /// [`LANES`]: a value's bin is the number of these below it (`psi::bin_index`), counted
    /// [`LANES`] edges at a time with no branch.
    inner: Vec<f32>,
    stride: usize,
}

/// Edges compared at once when counting a value's bin.
const LANES: usize = 8;

impl FeatureBins {
    pub(crate) fn new(
        edges: Vec<Vec<f32>>,
        expected: Vec<Vec<f64>>,
        min: Vec<f32>,
        max: Vec<f32>,
    ) -> Self {
        let most = edges
            .iter()
            .map(|e| e.len().saturating_sub(1))
            .max()
            .unwrap_or(0);
        let stride = most.div_ceil(LANES).max(1) * LANES;
        let mut inner = vec![f32::INFINITY; edges.len() * stride];
        for (row, e) in inner.chunks_exact_mut(stride).zip(&edges) {
            let n = e.len().saturating_sub(1);
            row[..n].copy_from_slice(&e[..n]);
        }
        Self {
            edges,
            expected,
            min,
            max,
            inner,
            stride,
        }
    }

    pub(crate) fn from_manifest(m: &Manifest) -> Self {
        let stats = &m.training.feature_stats;
        Self::new(
            stats
                .iter()
                .map(|s| s.bin_edges.iter().map(|&e| e as f32).collect())
                .collect(),
            stats.iter().map(|s| s.bin_fractions.clone()).collect(),
            stats.iter().map(|s| s.min as f32).collect(),
            stats.iter().map(|s| s.max as f32).collect(),
        )
    }

    pub(crate) fn features(&self) -> usize {
        self.edges.len()
    }

    /// The bins of one row's finite values, as `psi::bin_index` finds them, into `out`.
    fn bin_row(&self, row: &[f32], out: &mut [u8]) {
        for ((bin, &x), edges) in out
            .iter_mut()
            .zip(row)
            .zip(self.inner.chunks_exact(self.stride))
        {
            let mut below = 0u32;
            // Whole lanes (`stride` is a multiple of LANES): the compiler compares them at once.
            for lanes in edges.as_chunks::<LANES>().0 {
                for &e in lanes {
                    below += u32::from(e < x);
                }
            }
            // At most 255 edges below: `Manifest::parse` allows 256 bins.
            *bin = below as u8;
        }
    }
}

/// A ring of the last `capacity` rows seen by one worker: arrival time and the row's values.
struct Shard {
    times: Vec<Instant>,
    values: Vec<f32>,
    next: usize,
    len: usize,
}

pub(crate) struct DriftWindow {
    bins: FeatureBins,
    rows: usize,
    max_age: Duration,
    shards: Vec<Mutex<Shard>>,
}

/// The window at one moment: how many rows, and PSI per feature (empty when there are no rows).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DriftSnapshot {
    pub(crate) rows: usize,
    pub(crate) psi: Vec<f64>,
}

impl DriftWindow {
    /// A window of the last `rows` rows no older than `max_age`, with `shards` writers.
    pub(crate) fn new(bins: FeatureBins, rows: usize, max_age: Duration, shards: usize) -> Self {
        let f = bins.features();
        let rows = rows.max(1);
        let shards = (0..shards.max(1))
            .map(|_| {
                Mutex::new(Shard {
                    times: Vec::with_capacity(rows),
                    values: vec![0.0; rows * f],
                    next: 0,
                    len: 0,
                })
            })
            .collect();
        Self {
            bins,
            rows,
            max_age,
            shards,
        }
    }

    /// Records the rows of a row-major matrix into `shard`'s ring.
    pub(crate) fn record(&self, shard: usize, values: &[f32], now: Instant) {
        let f = self.bins.features();
        let mut s = self.shards[shard % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for row in values.chunks_exact(f) {
            let slot = s.next;
            s.values[slot * f..(slot + 1) * f].copy_from_slice(row);
            if slot < s.times.len() {
                s.times[slot] = now;
            } else {
                s.times.push(now);
            }
            s.next = (slot + 1) % self.rows;
            s.len = (s.len + 1).min(self.rows);
        }
    }

    /// The most recent `rows` rows across shards, no older than `max_age`, and their PSI.
    pub(crate) fn snapshot(&self, now: Instant) -> DriftSnapshot {
        let f = self.bins.features();
        let oldest = now.checked_sub(self.max_age);
        let mut rows: Vec<(Instant, Vec<u8>)> = Vec::new();
        for shard in &self.shards {
            let s = shard.lock().unwrap_or_else(|p| p.into_inner());
            for slot in 0..s.len {
                let t = s.times[slot];
                if oldest.is_none_or(|o| t >= o) {
                    let mut bins = vec![0; f];
                    self.bins
                        .bin_row(&s.values[slot * f..(slot + 1) * f], &mut bins);
                    rows.push((t, bins));
                }
            }
        }
        rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
        rows.truncate(self.rows);
        if rows.is_empty() {
            return DriftSnapshot {
                rows: 0,
                psi: Vec::new(),
            };
        }
        let psi = (0..f)
            .map(|j| {
                let mut counts = vec![0u32; self.bins.expected[j].len()];
                for (_, b) in &rows {
                    counts[usize::from(b[j])] += 1;
                }
                psi(&self.bins.expected[j], &counts)
            })
            .collect();
        DriftSnapshot {
            rows: rows.len(),
            psi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::psi::bin_index;

    fn bins() -> FeatureBins {
        FeatureBins::new(
            vec![vec![1.0, 2.0, 3.0, 4.0]],
            vec![vec![0.25; 4]],
            vec![0.0],
            vec![4.0],
        )
    }

    #[test]
    fn rows_are_binned_as_bin_index_bins_each_value() {
        // Features with 1, 4 (with a tie), 9, 17 and 256 edges: padding within and across lanes.
        let edges: Vec<Vec<f32>> = [1usize, 4, 9, 17, 256]
            .iter()
            .map(|&n| {
                let mut e: Vec<f32> = (0..n).map(|i| (i as f32 * 0.75) - 5.0).collect();
                if n == 4 {
                    e[2] = e[1];
                }
                e
            })
            .collect();
        let f = edges.len();
        let bins = FeatureBins::new(
            edges.clone(),
            edges
                .iter()
                .map(|e| vec![1.0 / e.len() as f64; e.len()])
                .collect(),
            vec![0.0; f],
            vec![0.0; f],
        );
        let mut out = vec![0u8; f];
        for i in -40..=800 {
            let x = i as f32 * 0.25 - 6.0;
            let row = vec![x; f];
            bins.bin_row(&row, &mut out);
            for (j, e) in edges.iter().enumerate() {
                assert_eq!(usize::from(out[j]), bin_index(e, x), "{x} in feature {j}");
            }
        }
        for x in [f32::MIN, f32::MAX, -0.0, 0.0] {
            bins.bin_row(&vec![x; f], &mut out);
            for (j, e) in edges.iter().enumerate() {
                assert_eq!(usize::from(out[j]), bin_index(e, x), "{x} in feature {j}");
            }
        }
    }

    #[test]
    fn the_window_keeps_only_the_last_rows_across_shards() {
        let w = DriftWindow::new(bins(), 4, Duration::from_secs(3600), 2);
        let t0 = Instant::now();
        // Eight rows in bin 0 first, then four in bin 3: only the latest four count.
        for i in 0..8 {
            w.record(i % 2, &[0.5], t0);
        }
        let t1 = t0 + Duration::from_millis(1);
        w.record(0, &[3.5, 3.5], t1);
        w.record(1, &[3.5, 3.5], t1);
        let s = w.snapshot(t1);
        assert_eq!(s.rows, 4);
        // All four in bin 3 against a uniform expectation.
        let expected = crate::quality::psi::psi(&[0.25; 4], &[0, 0, 0, 4]);
        assert!((s.psi[0] - expected).abs() < 1e-12);
    }

    #[test]
    fn rows_older_than_the_time_bound_leave_the_window() {
        let w = DriftWindow::new(bins(), 100, Duration::from_secs(60), 1);
        let t0 = Instant::now();
        w.record(0, &[0.5, 1.5, 2.5, 3.5], t0);
        assert_eq!(w.snapshot(t0 + Duration::from_secs(30)).rows, 4);
        let later = w.snapshot(t0 + Duration::from_secs(61));
        assert_eq!(
            later,
            DriftSnapshot {
                rows: 0,
                psi: vec![]
            }
        );
    }

    #[test]
    fn rows_matching_the_training_shares_give_zero_psi() {
        let w = DriftWindow::new(bins(), 100, Duration::from_secs(60), 3);
        let t = Instant::now();
        for (i, x) in [0.5f32, 1.5, 2.5, 3.5].iter().cycle().take(40).enumerate() {
            w.record(i, &[*x], t);
        }
        let s = w.snapshot(t);
        assert_eq!(s.rows, 40);
        assert!(s.psi[0].abs() < 1e-12);
    }
}
