//! Runs every collector on each scrape and encodes what they found, plus
//! `exporter_collector_success{collector}` and `exporter_collector_duration_seconds{collector}`.
//!
//! A failing collector does not fail the scrape: it is reported unsuccessful, its error is logged
//! once when it starts failing (and once when it recovers), and everything else is exported.

use crate::collectors::{Collector, Kind, Samples};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

const UNKNOWN: u8 = 0;
const SUCCEEDING: u8 = 1;
const FAILING: u8 = 2;

struct Watched {
    collector: Box<dyn Collector>,
    state: AtomicU8,
}

/// How one collector did in one scrape.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub collector: &'static str,
    pub success: bool,
    pub seconds: f64,
}

/// The scrape-time part of the registry: `registry.register_collector(Box::new(scraper))`.
pub struct ScrapeCollector {
    collectors: Vec<Watched>,
}

impl std::fmt::Debug for ScrapeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.collectors.iter().map(|w| w.collector.name()))
            .finish()
    }
}

impl ScrapeCollector {
    pub fn new(collectors: Vec<Box<dyn Collector>>) -> Self {
        Self {
            collectors: collectors
                .into_iter()
                .map(|collector| Watched {
                    collector,
                    state: AtomicU8::new(UNKNOWN),
                })
                .collect(),
        }
    }

    /// Runs every collector once, one after the other.
    pub fn gather(&self) -> (Samples, Vec<Outcome>) {
        let mut samples = Samples::default();
        let mut outcomes = Vec::with_capacity(self.collectors.len());
        for watched in &self.collectors {
            let name = watched.collector.name();
            let start = Instant::now();
            let result = watched.collector.collect(&mut samples);
            let seconds = start.elapsed().as_secs_f64();
            let new_state = if result.is_ok() { SUCCEEDING } else { FAILING };
            let old_state = watched.state.swap(new_state, Ordering::Relaxed);
            match result {
                Err(e) if old_state != FAILING => {
                    tracing::warn!(collector = name, error.message = %e, "collector failed");
                }
                Ok(()) if old_state == FAILING => {
                    tracing::info!(collector = name, "collector recovered");
                }
                _ => {}
            }
            outcomes.push(Outcome {
                collector: name,
                success: new_state == SUCCEEDING,
                seconds,
            });
        }
        (samples, outcomes)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectorLabel {
    collector: &'static str,
}

impl prometheus_client::collector::Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (samples, outcomes) = self.gather();
        for family in samples.families() {
            let metric_type = match family.kind {
                Kind::Gauge => MetricType::Gauge,
                Kind::Info => MetricType::Info,
            };
            let mut metric = encoder.encode_descriptor(
                family.name,
                family.help,
                family.unit.as_ref(),
                metric_type,
            )?;
            for (labels, value) in &family.samples {
                match family.kind {
                    Kind::Info => metric.encode_info(labels)?,
                    Kind::Gauge if labels.is_empty() => metric.encode_gauge(value)?,
                    Kind::Gauge => metric.encode_family(labels)?.encode_gauge(value)?,
                }
            }
        }

        let mut success = encoder.encode_descriptor(
            "exporter_collector_success",
            "Whether the collector succeeded in this scrape (1) or not (0)",
            None,
            MetricType::Gauge,
        )?;
        for o in &outcomes {
            let value: i64 = o.success.into();
            success
                .encode_family(&CollectorLabel {
                    collector: o.collector,
                })?
                .encode_gauge(&value)?;
        }
        let mut duration = encoder.encode_descriptor(
            "exporter_collector_duration",
            "Time the collector took in this scrape",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for o in &outcomes {
            duration
                .encode_family(&CollectorLabel {
                    collector: o.collector,
                })?
                .encode_gauge(&o.seconds)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::CollectError;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    struct Switchable {
        fail: Arc<AtomicBool>,
    }

    impl Collector for Switchable {
        fn name(&self) -> &'static str {
            "switchable"
        }
        fn collect(&self, out: &mut Samples) -> Result<(), CollectError> {
            if self.fail.load(Ordering::Relaxed) {
                return Err(CollectError::new("switched off"));
            }
            out.gauge("test_value", "A value", None, vec![], 42.0);
            Ok(())
        }
    }

    struct Steady;

    impl Collector for Steady {
        fn name(&self) -> &'static str {
            "steady"
        }
        fn collect(&self, out: &mut Samples) -> Result<(), CollectError> {
            out.gauge(
                "test",
                "Bytes",
                Some(Unit::Bytes),
                vec![("k", "v".into())],
                7.0,
            );
            Ok(())
        }
    }

    fn render(scraper: ScrapeCollector) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(scraper));
        metrics_core::exposition::render(&registry)
    }

    #[test]
    fn a_failing_collector_is_reported_and_the_others_still_export() {
        let fail = Arc::new(AtomicBool::new(true));
        let scraper = ScrapeCollector::new(vec![
            Box::new(Switchable { fail: fail.clone() }),
            Box::new(Steady),
        ]);
        let (samples, outcomes) = scraper.gather();
        assert_eq!(samples.value("test_value", &[]), None);
        assert_eq!(samples.value("test", &[("k", "v")]), Some(7.0));
        assert_eq!(
            outcomes.iter().map(|o| o.success).collect::<Vec<_>>(),
            [false, true]
        );
        fail.store(false, Ordering::Relaxed);
        let (samples, outcomes) = scraper.gather();
        assert_eq!(samples.value("test_value", &[]), Some(42.0));
        assert!(outcomes.iter().all(|o| o.success));
    }

    /// Collects log lines in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn failures_are_logged_once_per_change_of_state() {
        let logs = Captured::default();
        let sink = logs.clone();
        let subscriber =
            metrics_core::telemetry::get_subscriber("test", "info", move || sink.clone());
        let fail = Arc::new(AtomicBool::new(true));
        let scraper = ScrapeCollector::new(vec![Box::new(Switchable { fail: fail.clone() })]);

        tracing::subscriber::with_default(subscriber, || {
            for failing in [true, true, true, false, false, true, true] {
                fail.store(failing, Ordering::Relaxed);
                scraper.gather();
            }
        });

        let text = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
        assert_eq!(text.matches("collector failed").count(), 2, "{text}");
        assert_eq!(text.matches("collector recovered").count(), 1, "{text}");
        assert!(text.contains("switched off"), "{text}");
    }

    #[test]
    fn encodes_units_labels_and_self_metrics() {
        let text = render(ScrapeCollector::new(vec![
            Box::new(Switchable {
                fail: Arc::new(AtomicBool::new(true)),
            }),
            Box::new(Steady),
        ]));
        assert!(text.contains("# UNIT test_bytes bytes\n"), "{text}");
        assert!(text.contains("test_bytes{k=\"v\"} 7.0\n"), "{text}");
        assert!(text.contains("exporter_collector_success{collector=\"switchable\"} 0\n"));
        assert!(text.contains("exporter_collector_success{collector=\"steady\"} 1\n"));
        assert!(text.contains("exporter_collector_duration_seconds{collector=\"steady\"} "));
        assert!(text.ends_with("# EOF\n"));
    }
}
