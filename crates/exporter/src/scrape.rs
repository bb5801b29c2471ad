//! Runs every collector on each scrape and encodes what they found, plus
//! `exporter_collector_success{collector}` and `exporter_collector_duration_seconds{collector}`.
//!
//! A failing collector does not fail the scrape: it is reported unsuccessful, its error is logged
//! once when it starts failing (and once when it recovers), and everything else is exported.
//!
//! Each collector runs on a thread of its own with a deadline (`collectors.timeout_seconds`): one
//! that blocks (a FIFO, a hung network filesystem) is reported unsuccessful when the deadline
//! passes, and while that collection is still stuck later scrapes do not start another one of
//! the same collector: they report it unsuccessful at once. The other collectors are unaffected.

use crate::collectors::{CollectError, Collector, CollectorName, Kind, Labels, Samples};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

const UNKNOWN: u8 = 0;
const SUCCEEDING: u8 = 1;
const FAILING: u8 = 2;

struct Watched {
    collector: Box<dyn Collector>,
    state: AtomicU8,
    /// Collections of this collector still running: id -> when it started.
    running: Mutex<Vec<(u64, Instant)>>,
    next_id: AtomicU64,
}

impl Watched {
    fn running(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Instant)>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The age of the oldest running collection, if it is past `deadline`.
    fn stuck_for(&self, deadline: Duration) -> Option<Duration> {
        self.running()
            .iter()
            .map(|(_, started)| started.elapsed())
            .filter(|age| *age > deadline)
            .max()
    }
}

/// How one collector did in one scrape.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) collector: CollectorName,
    pub(crate) success: bool,
    pub(crate) seconds: f64,
}

/// The scrape-time part of the registry: `registry.register_collector(Box::new(scraper))`.
pub(crate) struct ScrapeCollector {
    collectors: Vec<Arc<Watched>>,
    timeout: Duration,
}

impl std::fmt::Debug for ScrapeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.collectors.iter().map(|w| w.collector.name().as_str()))
            .finish()
    }
}

/// What one collection found, whether it succeeded, and how long it took (seconds).
type Found = (Samples, Result<(), CollectError>, f64);
/// A collection's [`Found`], for the collector at this index.
type Report = (usize, Found);

impl ScrapeCollector {
    /// `timeout`: how long one scrape waits for a collector.
    pub(crate) fn new(collectors: Vec<Box<dyn Collector>>, timeout: Duration) -> Self {
        Self {
            collectors: collectors
                .into_iter()
                .map(|collector| {
                    Arc::new(Watched {
                        collector,
                        state: AtomicU8::new(UNKNOWN),
                        running: Mutex::new(Vec::new()),
                        next_id: AtomicU64::new(0),
                    })
                })
                .collect(),
            timeout,
        }
    }

    /// Runs every collector once, each on its own thread, and waits for them until the deadline.
    pub(crate) fn gather(&self) -> (Samples, Vec<Outcome>) {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let (tx, rx) = mpsc::channel::<Report>();
        let mut results: Vec<Option<Found>> = (0..self.collectors.len()).map(|_| None).collect();
        let mut waiting = 0;
        for (index, watched) in self.collectors.iter().enumerate() {
            if let Some(age) = watched.stuck_for(self.timeout) {
                let message = format!(
                    "an earlier collection has been running for {:.0} s and has not finished",
                    age.as_secs_f64()
                );
                results[index] = Some((Samples::default(), Err(CollectError(message)), 0.0));
                continue;
            }
            match spawn_collection(index, watched.clone(), tx.clone()) {
                Ok(()) => waiting += 1,
                Err(e) => {
                    let message = format!("cannot start a thread for it: {e}");
                    results[index] = Some((Samples::default(), Err(CollectError(message)), 0.0));
                }
            }
        }
        drop(tx);
        while waiting > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((index, found)) => {
                    results[index] = Some(found);
                    waiting -= 1;
                }
                Err(_) => break,
            }
        }

        let mut samples = Samples::default();
        let mut outcomes = Vec::with_capacity(self.collectors.len());
        for (watched, result) in self.collectors.iter().zip(results) {
            let (found, result, seconds) = result.unwrap_or_else(|| {
                let message = format!(
                    "did not finish within {:.1} s (collectors.timeout_seconds)",
                    self.timeout.as_secs_f64()
                );
                (
                    Samples::default(),
                    Err(CollectError(message)),
                    start.elapsed().as_secs_f64(),
                )
            });
            let name = watched.collector.name();
            samples.append(found);
            let new_state = if result.is_ok() { SUCCEEDING } else { FAILING };
            let old_state = watched.state.swap(new_state, Ordering::Relaxed);
            match result {
                Err(e) if old_state != FAILING => {
                    tracing::warn!(collector = name.as_str(), error.message = %e, "collector failed");
                }
                Ok(()) if old_state == FAILING => {
                    tracing::info!(collector = name.as_str(), "collector recovered");
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

/// Runs one collection of `watched` on a new thread; its report goes to `tx` (nobody listens
/// any more when it comes after the deadline).
fn spawn_collection(
    index: usize,
    watched: Arc<Watched>,
    tx: mpsc::Sender<Report>,
) -> std::io::Result<()> {
    let id = watched.next_id.fetch_add(1, Ordering::Relaxed);
    watched.running().push((id, Instant::now()));
    let runner = watched.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("collect-{}", watched.collector.name().as_str()))
        .spawn(move || {
            let started = Instant::now();
            let mut samples = Samples::default();
            let result = runner.collector.collect(&mut samples);
            let seconds = started.elapsed().as_secs_f64();
            runner.running().retain(|(i, _)| *i != id);
            let _ = tx.send((index, (samples, result, seconds)));
        });
    if spawned.is_err() {
        watched.running().retain(|(i, _)| *i != id);
    }
    spawned.map(|_| ())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectorLabels {
    collector: CollectorName,
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
                match (family.kind, labels) {
                    (Kind::Info, _) => metric.encode_info(labels)?,
                    (Kind::Gauge, Labels::Empty) => metric.encode_gauge(value)?,
                    (Kind::Gauge, _) => metric.encode_family(labels)?.encode_gauge(value)?,
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
                .encode_family(&CollectorLabels {
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
                .encode_family(&CollectorLabels {
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
    use crate::collectors::ModelLabels;
    use std::sync::atomic::AtomicBool;

    const TIMEOUT: Duration = Duration::from_secs(5);

    struct Switchable {
        fail: Arc<AtomicBool>,
    }

    /// Fails while switched; it stands in for the CPU collector.
    impl Collector for Switchable {
        fn name(&self) -> CollectorName {
            CollectorName::Cpu
        }
        fn collect(&self, out: &mut Samples) -> Result<(), CollectError> {
            if self.fail.load(Ordering::Relaxed) {
                return Err(CollectError::new("switched off"));
            }
            out.gauge("test_value", "A value", None, Labels::Empty, 42.0);
            Ok(())
        }
    }

    struct Steady;

    /// Always succeeds; it stands in for the memory collector.
    impl Collector for Steady {
        fn name(&self) -> CollectorName {
            CollectorName::Memory
        }
        fn collect(&self, out: &mut Samples) -> Result<(), CollectError> {
            out.gauge("test", "Bytes", Some(Unit::Bytes), model("m"), 7.0);
            Ok(())
        }
    }

    fn model(name: &str) -> ModelLabels {
        ModelLabels { model: name.into() }
    }

    fn render(scraper: ScrapeCollector) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(scraper));
        metrics_core::exposition::render(&registry)
    }

    #[test]
    fn a_failing_collector_is_reported_and_the_others_still_export() {
        let fail = Arc::new(AtomicBool::new(true));
        let scraper = ScrapeCollector::new(
            vec![
                Box::new(Switchable { fail: fail.clone() }),
                Box::new(Steady),
            ],
            TIMEOUT,
        );
        let (samples, outcomes) = scraper.gather();
        assert_eq!(samples.value("test_value", Labels::Empty), None);
        assert_eq!(samples.value("test", model("m")), Some(7.0));
        assert_eq!(
            outcomes.iter().map(|o| o.success).collect::<Vec<_>>(),
            [false, true]
        );
        fail.store(false, Ordering::Relaxed);
        let (samples, outcomes) = scraper.gather();
        assert_eq!(samples.value("test_value", Labels::Empty), Some(42.0));
        assert!(outcomes.iter().all(|o| o.success));
    }

    #[test]
    fn failures_are_logged_once_per_change_of_state() {
        let logs = metrics_core::telemetry::CapturedLines::default();
        let subscriber = metrics_core::telemetry::get_subscriber("test", "info", logs.clone());
        let fail = Arc::new(AtomicBool::new(true));
        let scraper =
            ScrapeCollector::new(vec![Box::new(Switchable { fail: fail.clone() })], TIMEOUT);

        tracing::subscriber::with_default(subscriber, || {
            for failing in [true, true, true, false, false, true, true] {
                fail.store(failing, Ordering::Relaxed);
                scraper.gather();
            }
        });

        let lines = logs.lines();
        let count = |msg: &str| lines.iter().filter(|l| l["msg"] == msg).count();
        assert_eq!(count("collector failed"), 2, "{lines:#?}");
        assert_eq!(count("collector recovered"), 1, "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.to_string().contains("switched off")),
            "{lines:#?}"
        );
    }

    #[test]
    fn encodes_units_labels_and_self_metrics() {
        let text = render(ScrapeCollector::new(
            vec![
                Box::new(Switchable {
                    fail: Arc::new(AtomicBool::new(true)),
                }),
                Box::new(Steady),
            ],
            TIMEOUT,
        ));
        assert!(text.contains("# UNIT test_bytes bytes\n"), "{text}");
        assert!(text.contains("test_bytes{model=\"m\"} 7.0\n"), "{text}");
        assert!(text.contains("exporter_collector_success{collector=\"cpu\"} 0\n"));
        assert!(text.contains("exporter_collector_success{collector=\"memory\"} 1\n"));
        assert!(text.contains("exporter_collector_duration_seconds{collector=\"memory\"} "));
        assert!(text.ends_with("# EOF\n"));
    }

    /// Blocks in `collect` until released, like a read of a FIFO or of a hung network mount.
    struct Blocking {
        release: Arc<(Mutex<bool>, std::sync::Condvar)>,
    }

    /// It stands in for the filesystem collector.
    impl Collector for Blocking {
        fn name(&self) -> CollectorName {
            CollectorName::Filesystem
        }
        fn collect(&self, out: &mut Samples) -> Result<(), CollectError> {
            let (lock, cvar) = &*self.release;
            let mut released = lock.lock().expect("lock");
            while !*released {
                released = cvar.wait(released).expect("wait");
            }
            out.gauge("blocking_value", "A value", None, Labels::Empty, 1.0);
            Ok(())
        }
    }

    #[test]
    fn a_blocked_collector_fails_at_its_deadline_and_does_not_hold_up_later_scrapes() {
        let release = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let timeout = Duration::from_millis(300);
        let scraper = ScrapeCollector::new(
            vec![
                Box::new(Blocking {
                    release: release.clone(),
                }),
                Box::new(Steady),
            ],
            timeout,
        );
        let success = |outcomes: &[Outcome]| outcomes.iter().map(|o| o.success).collect::<Vec<_>>();

        // The first scrape waits for the deadline, then reports the blocked collector failed.
        let started = Instant::now();
        let (samples, outcomes) = scraper.gather();
        let first = started.elapsed();
        assert!(first >= timeout && first < timeout * 3, "{first:?}");
        assert_eq!(success(&outcomes), [false, true]);
        assert_eq!(samples.value("test", model("m")), Some(7.0));

        // While it is still stuck, later scrapes answer at once and start no second collection.
        std::thread::sleep(timeout);
        let started = Instant::now();
        let (_, outcomes) = scraper.gather();
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(success(&outcomes), [false, true]);
        assert_eq!(scraper.collectors[0].running().len(), 1);

        // Released, it finishes in the background and the next scrape succeeds again.
        *release.0.lock().expect("lock") = true;
        release.1.notify_all();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !scraper.collectors[0].running().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let (samples, outcomes) = scraper.gather();
        assert_eq!(success(&outcomes), [true, true]);
        assert_eq!(samples.value("blocking_value", Labels::Empty), Some(1.0));
    }
}
