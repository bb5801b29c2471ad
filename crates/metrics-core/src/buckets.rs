//! Histogram bucket sets, declared once and referenced by name.
//!
//! Services expose these as configuration defaults; a deployment may override them, but the
//! names below are the vocabulary used in code and dashboards.

/// HTTP request latency: 0.5 ms .. 10 s. Fine at the low end, where a tabular model answers.
pub const HTTP_LATENCY_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// In-process work such as feature parsing or one model run: 5 µs .. 1 s.
pub const FAST_OPERATION_SECONDS: &[f64] = &[
    0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Rows per call: powers of two up to 1024.
pub const BATCH_ROWS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Prediction confidence (max class probability): fine between 0.5 and 1.
pub const CONFIDENCE: &[f64] = &[
    0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 0.999, 1.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bucket_set_is_strictly_increasing_and_positive() {
        for set in [
            HTTP_LATENCY_SECONDS,
            FAST_OPERATION_SECONDS,
            BATCH_ROWS,
            CONFIDENCE,
        ] {
            assert!(set[0] > 0.0);
            assert!(set.windows(2).all(|w| w[0] < w[1]), "{set:?}");
        }
    }
}

/// A bucket set that builds histograms: the constructor of every histogram family, so a family's
/// buckets are chosen once, where it is registered.
#[derive(Clone, Debug)]
pub struct Buckets(std::sync::Arc<[f64]>);

/// A histogram family whose histograms all use one [`Buckets`] set.
pub type HistogramFamily<L> = prometheus_client::metrics::family::Family<
    L,
    prometheus_client::metrics::histogram::Histogram,
    Buckets,
>;

impl Buckets {
    pub fn new(bounds: &[f64]) -> Self {
        Self(bounds.into())
    }

    pub fn histogram(&self) -> prometheus_client::metrics::histogram::Histogram {
        prometheus_client::metrics::histogram::Histogram::new(self.0.iter().copied())
    }

    pub fn family<L: Clone + std::hash::Hash + Eq>(&self) -> HistogramFamily<L> {
        prometheus_client::metrics::family::Family::new_with_constructor(self.clone())
    }
}

impl
    prometheus_client::metrics::family::MetricConstructor<
        prometheus_client::metrics::histogram::Histogram,
    > for Buckets
{
    fn new_metric(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.histogram()
    }
}
