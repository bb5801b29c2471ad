//! Quantile binning and the Population Stability Index, exactly as `scripts/train_model.py` bins.

/// Fractions below this are replaced by it before taking logarithms, so an empty bin (in training
/// or in the window) gives a large but finite term instead of an infinity. 1e-4 is one row in ten
/// thousand: smaller than any real bin share of a 1,000-row window, large enough to keep one
/// empty bin's term below ~1.
pub(crate) const EPSILON: f64 = 1e-4;

/// The bin of a finite `x` given each bin's inclusive upper edge, ascending (`Manifest::parse`
/// checks): the first edge `>= x`; values above the last edge fall in the last bin. Matches numpy
/// `searchsorted(edges, x, side="left")` clipped. On ascending edges that is the number of edges
/// below `x` among all but the last, counted without a branch per edge. The drift window counts
/// the same way over padded edges (`FeatureBins::bin_row`), tested against this.
#[cfg(test)]
pub(crate) fn bin_index(edges: &[f32], x: f32) -> usize {
    let inner = &edges[..edges.len().saturating_sub(1)];
    inner.iter().map(|&e| usize::from(e < x)).sum()
}

/// PSI = Σ (a − e) · ln(a / e) over bins, with `a` the window's share and `e` the training share.
pub(crate) fn psi(expected: &[f64], counts: &[u32]) -> f64 {
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if total == 0 {
        return 0.0;
    }
    expected
        .iter()
        .zip(counts)
        .map(|(&e, &c)| {
            let a = (f64::from(c) / total as f64).max(EPSILON);
            let e = e.max(EPSILON);
            (a - e) * (a / e).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binning_matches_numpy_searchsorted_left_clipped() {
        let edges = [1.0, 2.0, 2.0, 4.0];
        assert_eq!(bin_index(&edges, 0.5), 0);
        assert_eq!(bin_index(&edges, 1.0), 0); // inclusive upper edge
        assert_eq!(bin_index(&edges, 1.5), 1);
        assert_eq!(bin_index(&edges, 2.0), 1); // ties go to the first equal edge
        assert_eq!(bin_index(&edges, 3.0), 3);
        assert_eq!(bin_index(&edges, 99.0), 3); // above the maximum: the last bin
    }

    #[test]
    fn counting_agrees_with_a_binary_search_on_ascending_edges() {
        let mut edges: Vec<f32> = (0..40).map(|i| ((i * 7) / 3) as f32 * 0.5 - 3.0).collect();
        edges[5] = edges[4]; // a tie
        for k in 1..=edges.len() {
            let e = &edges[..k];
            for i in -40..=240 {
                let x = i as f32 * 0.25;
                let searched = e.partition_point(|v| *v < x).min(k - 1);
                assert_eq!(bin_index(e, x), searched, "{x} in {e:?}");
            }
        }
    }

    #[test]
    fn psi_is_zero_for_identical_shares_and_grows_with_shift() {
        let expected = [0.25, 0.25, 0.25, 0.25];
        assert!(psi(&expected, &[25, 25, 25, 25]).abs() < 1e-12);
        let small = psi(&expected, &[30, 25, 25, 20]);
        let large = psi(&expected, &[70, 10, 10, 10]);
        assert!(small > 0.0 && small < 0.05, "{small}");
        assert!(large > 0.5, "{large}");
    }

    #[test]
    fn empty_bins_give_finite_values() {
        let v = psi(&[0.0, 0.5, 0.5], &[10, 0, 0]);
        assert!(v.is_finite() && v > 1.0, "{v}");
        assert_eq!(psi(&[0.5, 0.5], &[0, 0]), 0.0);
    }
}
