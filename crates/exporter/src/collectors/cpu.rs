//! `cpu`: whole-machine CPU usage over the last sampling interval, CPU count and load averages.
//!
//! Usage is a difference between two readings of `/proc/stat`, so it cannot be computed at scrape
//! time without sleeping. A [`CpuSampler`] is refreshed by a background task every sampling
//! interval (see [`crate::startup`]); a scrape only reads its latest sample. Load averages are
//! already averaged by the kernel and are read from `/proc/loadavg` at scrape time.

use super::{CollectError, Collector, CollectorName, Labels, Samples};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use sysinfo::{CpuRefreshKind, RefreshKind, System};

/// Two readings closer than this give a meaningless ratio (sysinfo's own advice is 200 ms).
const MIN_SAMPLE_SPACING: Duration = Duration::from_millis(100);

/// The latest CPU reading, shared between the background sampler and the collector.
#[derive(Clone)]
pub(crate) struct CpuSampler {
    interval: Duration,
    inner: Arc<Mutex<SamplerState>>,
}

struct SamplerState {
    system: System,
    previous_refresh: Instant,
    latest: Option<CpuSample>,
}

/// One usage ratio, averaged between two refreshes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CpuSample {
    /// 0..=1, busy time over total time of all CPUs.
    pub(crate) usage_ratio: f64,
    /// Logical CPUs of the machine.
    pub(crate) count: usize,
    pub(crate) taken_at: Instant,
}

impl CpuSampler {
    /// Takes the first (baseline) reading; the first usage is known after [`Self::sample`].
    pub(crate) fn new(interval: Duration) -> Self {
        let system = System::new_with_specifics(
            RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing().with_cpu_usage()),
        );
        Self {
            interval,
            inner: Arc::new(Mutex::new(SamplerState {
                system,
                previous_refresh: Instant::now(),
                latest: None,
            })),
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Refreshes `/proc/stat` and records the usage since the previous refresh.
    pub(crate) fn sample(&self) {
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if now.duration_since(state.previous_refresh) < MIN_SAMPLE_SPACING {
            return;
        }
        state.system.refresh_cpu_usage();
        state.previous_refresh = now;
        let count = state.system.cpus().len();
        if count == 0 {
            // /proc/stat could not be read; keep no value rather than a made-up one.
            state.latest = None;
            return;
        }
        let percent = f64::from(state.system.global_cpu_usage());
        state.latest = Some(CpuSample {
            usage_ratio: (percent / 100.0).clamp(0.0, 1.0),
            count,
            taken_at: now,
        });
    }

    pub(crate) fn latest(&self) -> Option<CpuSample> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .latest
    }

    /// When the first usage sample should be taken: soon, not a whole (possibly long) interval
    /// after start.
    pub(crate) fn first_sample_delay(&self) -> Duration {
        self.interval.min(Duration::from_millis(250))
    }
}

pub(crate) struct CpuCollector {
    sampler: CpuSampler,
    started: Instant,
}

impl CpuCollector {
    pub(crate) fn new(sampler: CpuSampler) -> Self {
        Self {
            sampler,
            started: Instant::now(),
        }
    }

    /// A sample older than this means the background sampler is stuck.
    fn max_age(&self) -> Duration {
        self.sampler.interval() * 2 + Duration::from_secs(1)
    }
}

impl Collector for CpuCollector {
    fn name(&self) -> CollectorName {
        CollectorName::Cpu
    }

    fn collect(&self, out: &mut Samples) -> Result<(), CollectError> {
        let loadavg = std::fs::read_to_string("/proc/loadavg")
            .map_err(|e| CollectError::new(format!("cannot read /proc/loadavg: {e}")))
            .and_then(|text| {
                parse_loadavg(&text)
                    .ok_or_else(|| CollectError::new(format!("unexpected /proc/loadavg: {text:?}")))
            });
        if let Ok([one, five, fifteen]) = loadavg {
            out.gauge(
                "system_load1",
                "1-minute load average",
                None,
                Labels::Empty,
                one,
            );
            out.gauge(
                "system_load5",
                "5-minute load average",
                None,
                Labels::Empty,
                five,
            );
            out.gauge(
                "system_load15",
                "15-minute load average",
                None,
                Labels::Empty,
                fifteen,
            );
        }

        let sample = self.sampler.latest();
        let sample_error = match sample {
            Some(s) if s.taken_at.elapsed() > self.max_age() => Some(CollectError::new(format!(
                "the CPU sampler has not refreshed for {:.1}s",
                s.taken_at.elapsed().as_secs_f64()
            ))),
            Some(s) => {
                out.gauge(
                    "system_cpu_usage_ratio",
                    "Busy share of all CPUs of the machine over the last sampling interval (0..1)",
                    None,
                    Labels::Empty,
                    s.usage_ratio,
                );
                out.gauge(
                    "system_cpu_count",
                    "Logical CPUs of the machine",
                    None,
                    Labels::Empty,
                    s.count as f64,
                );
                None
            }
            // Right after start the first two readings are not taken yet; that is not a failure.
            None if self.started.elapsed() <= self.max_age() => None,
            None => Some(CollectError::new(
                "no CPU usage could be read from /proc/stat",
            )),
        };
        match (loadavg, sample_error) {
            (Err(e), _) | (Ok(_), Some(e)) => Err(e),
            (Ok(_), None) => Ok(()),
        }
    }
}

/// The three load averages of `/proc/loadavg` (`"0.30 0.58 0.34 1/103 12209"`).
fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    let one = fields.next()?.ok()?;
    let five = fields.next()?.ok()?;
    let fifteen = fields.next()?.ok()?;
    Some([one, five, fifteen])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loadavg() {
        assert_eq!(
            parse_loadavg("0.30 0.58 0.34 1/103 12209\n"),
            Some([0.30, 0.58, 0.34])
        );
        assert_eq!(parse_loadavg("0.30 0.58"), None);
        assert_eq!(parse_loadavg("a b c"), None);
    }

    #[test]
    fn a_sample_is_a_ratio_with_the_machine_cpu_count() {
        let sampler = CpuSampler::new(Duration::from_millis(200));
        assert_eq!(sampler.latest(), None);
        std::thread::sleep(Duration::from_millis(150));
        sampler.sample();
        let s = sampler.latest().expect("a sample after two readings");
        assert!((0.0..=1.0).contains(&s.usage_ratio), "{s:?}");
        let online = std::fs::read_to_string("/proc/stat")
            .expect("/proc/stat")
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .count();
        assert_eq!(s.count, online);
    }

    #[test]
    fn readings_too_close_together_are_ignored() {
        let sampler = CpuSampler::new(Duration::from_secs(5));
        sampler.sample();
        assert_eq!(sampler.latest(), None);
    }
}
