//! Aggregation: finished requests stream into an [`Aggregate`] (bounded memory: counts and two
//! HDR histograms), which becomes the final [`Report`] once the run ends.

use crate::metrics::Outcome;
use crate::plan::RequestKind;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Highest latency the histograms track (longer ones are recorded as this).
const MAX_TRACKED_MICROS: u64 = 3_600_000_000;

/// How a request that got no HTTP response failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    Timeout,
    Connect,
    Transport,
}

impl Failure {
    pub fn outcome(self) -> Outcome {
        match self {
            Failure::Timeout => Outcome::Timeout,
            Failure::Connect => Outcome::ConnectError,
            Failure::Transport => Outcome::TransportError,
        }
    }
}

/// One finished request, as the executor hands it over.
#[derive(Clone, Debug)]
pub struct Completed {
    pub kind: RequestKind,
    /// The HTTP status, or how it failed (with the error's message).
    pub result: Result<u16, (Failure, String)>,
    /// From the intended send time to the response (coordinated-omission corrected).
    pub latency: Duration,
    /// From the actual send to the response.
    pub service: Duration,
}

impl Completed {
    pub fn outcome(&self) -> Outcome {
        match &self.result {
            Ok(status) => Outcome::from_status(*status),
            Err((failure, _)) => failure.outcome(),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct KindCounts {
    completed: u64,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
    failures: BTreeMap<Failure, u64>,
}

/// Running totals of finished requests.
pub struct Aggregate {
    kinds: BTreeMap<RequestKind, KindCounts>,
    latency: Histogram<u64>,
    service: Histogram<u64>,
    completed: u64,
    errors: u64,
    failure_examples: BTreeMap<Failure, String>,
}

impl Default for Aggregate {
    fn default() -> Self {
        Self::new()
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 1 h at 3 significant digits: about 200 KiB, fixed.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3).expect("valid histogram bounds")
}

impl Aggregate {
    pub fn new() -> Self {
        Self {
            kinds: BTreeMap::new(),
            latency: histogram(),
            service: histogram(),
            completed: 0,
            errors: 0,
            failure_examples: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, c: Completed) {
        let outcome = c.outcome();
        let k = self.kinds.entry(c.kind).or_default();
        k.completed += 1;
        self.completed += 1;
        if outcome.is_error() {
            k.errors += 1;
            self.errors += 1;
        }
        match c.result {
            Ok(status) => *k.statuses.entry(status).or_default() += 1,
            Err((failure, message)) => {
                *k.failures.entry(failure).or_default() += 1;
                self.failure_examples.entry(failure).or_insert(message);
            }
        }
        self.latency.saturating_record(micros(c.latency));
        self.service.saturating_record(micros(c.service));
    }

    pub fn completed(&self) -> u64 {
        self.completed
    }

    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Corrected latency at quantile `q` so far.
    pub fn latency_at(&self, q: f64) -> Duration {
        Duration::from_micros(self.latency.value_at_quantile(q))
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_TRACKED_MICROS)
}

/// Why sending stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `--duration` elapsed.
    Duration,
    /// `--requests` were sent.
    Requests,
    /// Ctrl-C or SIGTERM.
    Signal,
}

/// What the sending side knows at the end of a run.
#[derive(Clone, Debug)]
pub struct SendSummary {
    pub sent_by_kind: BTreeMap<RequestKind, u64>,
    pub sent: u64,
    pub late_sends: u64,
    pub max_send_lag: Duration,
    /// From the start to the end of sending: the planned end, or later if sending fell behind.
    pub window: Duration,
    /// Requests the plan asked for during `window`.
    pub planned: f64,
    pub stopped_by: StopReason,
}

/// Latency statistics in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Self {
                count: 0,
                min_ms: 0.0,
                mean_ms: 0.0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                p99_9_ms: 0.0,
                max_ms: 0.0,
            };
        }
        Self {
            count: h.len(),
            min_ms: ms(h.min()),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p99_9_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// Counts for one request kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    pub kind: RequestKind,
    pub sent: u64,
    pub completed: u64,
    pub errors: u64,
    /// Responses by HTTP status code.
    pub status_codes: BTreeMap<u16, u64>,
    /// Requests that got no response, by failure class.
    pub transport_errors: BTreeMap<Failure, u64>,
}

/// The final report (also the `--output json` document).
///
/// Invariants: `completed + unfinished = sent`; `succeeded + errors = completed`; the status-code
/// and transport-error counts add up to `completed`, overall and per kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub target: String,
    pub seed: u64,
    pub stopped_by: StopReason,
    /// Length of the sending window in seconds.
    pub duration_seconds: f64,
    /// Mean rate the scenario asked for over the window.
    pub target_rate: f64,
    /// Requests actually sent per second over the window.
    pub achieved_rate: f64,
    pub sent: u64,
    pub completed: u64,
    /// Sent but not answered when the run ended (only after Ctrl-C/SIGTERM or a stuck target).
    pub unfinished: u64,
    /// Sends that started late because `max_in_flight` requests were in flight: they waited for
    /// a free slot, or an earlier send's wait pushed them past their due time.
    pub late_sends: u64,
    /// The worst delay between a request's intended and actual send time.
    pub max_send_lag_ms: f64,
    pub max_in_flight: usize,
    /// 2xx responses.
    pub succeeded: u64,
    /// Non-2xx responses plus requests that got no response at all.
    pub errors: u64,
    /// `errors / completed` (0 when nothing completed).
    pub error_ratio: f64,
    pub status_codes: BTreeMap<u16, u64>,
    pub transport_errors: BTreeMap<Failure, u64>,
    /// The first error message seen per failure class.
    pub transport_error_examples: BTreeMap<Failure, String>,
    pub kinds: Vec<KindReport>,
    /// From the intended send time to the response (coordinated-omission corrected).
    pub latency: Latency,
    /// From the actual send to the response.
    pub service_time: Latency,
}

/// What the report says about the run besides the numbers.
pub struct RunInfo {
    pub scenario: String,
    pub target: String,
    pub seed: u64,
    pub max_in_flight: usize,
}

impl Report {
    pub fn new(info: RunInfo, send: &SendSummary, agg: &Aggregate) -> Self {
        let window = send.window.as_secs_f64();
        let per_second = |n: f64| if window > 0.0 { n / window } else { 0.0 };
        let mut status_codes = BTreeMap::new();
        let mut transport_errors = BTreeMap::new();
        let mut kinds = Vec::new();
        for kind in RequestKind::ALL {
            let sent = send.sent_by_kind.get(&kind).copied().unwrap_or(0);
            let counts = agg.kinds.get(&kind).cloned().unwrap_or_default();
            if sent == 0 && counts.completed == 0 {
                continue;
            }
            for (s, n) in &counts.statuses {
                *status_codes.entry(*s).or_insert(0) += n;
            }
            for (f, n) in &counts.failures {
                *transport_errors.entry(*f).or_insert(0) += n;
            }
            kinds.push(KindReport {
                kind,
                sent,
                completed: counts.completed,
                errors: counts.errors,
                status_codes: counts.statuses,
                transport_errors: counts.failures,
            });
        }
        Self {
            scenario: info.scenario,
            target: info.target,
            seed: info.seed,
            stopped_by: send.stopped_by,
            duration_seconds: window,
            target_rate: per_second(send.planned),
            achieved_rate: per_second(send.sent as f64),
            sent: send.sent,
            completed: agg.completed,
            unfinished: send.sent.saturating_sub(agg.completed),
            late_sends: send.late_sends,
            max_send_lag_ms: send.max_send_lag.as_secs_f64() * 1000.0,
            max_in_flight: info.max_in_flight,
            succeeded: agg.completed - agg.errors,
            errors: agg.errors,
            error_ratio: if agg.completed > 0 {
                agg.errors as f64 / agg.completed as f64
            } else {
                0.0
            },
            status_codes,
            transport_errors,
            transport_error_examples: agg.failure_examples.clone(),
            kinds,
            latency: Latency::of(&agg.latency),
            service_time: Latency::of(&agg.service),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(kind: RequestKind, result: Result<u16, (Failure, String)>, ms: u64) -> Completed {
        Completed {
            kind,
            result,
            latency: Duration::from_millis(ms),
            service: Duration::from_millis(ms / 2),
        }
    }

    #[test]
    fn totals_add_up_and_errors_are_non_2xx_or_no_response() {
        let mut agg = Aggregate::new();
        for i in 0..100 {
            agg.record(done(RequestKind::Single, Ok(200), i + 1));
        }
        agg.record(done(RequestKind::Oversized, Ok(413), 5));
        agg.record(done(
            RequestKind::Single,
            Err((Failure::Timeout, "timed out".into())),
            10_000,
        ));
        let send = SendSummary {
            sent_by_kind: BTreeMap::from([(RequestKind::Single, 102), (RequestKind::Oversized, 1)]),
            sent: 103,
            late_sends: 0,
            max_send_lag: Duration::ZERO,
            window: Duration::from_secs(2),
            planned: 104.0,
            stopped_by: StopReason::Duration,
        };
        let info = RunInfo {
            scenario: "s".into(),
            target: "t".into(),
            seed: 1,
            max_in_flight: 8,
        };
        let r = Report::new(info, &send, &agg);
        assert_eq!((r.sent, r.completed, r.unfinished), (103, 102, 1));
        assert_eq!((r.succeeded, r.errors), (100, 2));
        assert_eq!(r.status_codes, BTreeMap::from([(200, 100), (413, 1)]));
        assert_eq!(r.transport_errors, BTreeMap::from([(Failure::Timeout, 1)]));
        assert_eq!(r.transport_error_examples[&Failure::Timeout], "timed out");
        assert_eq!((r.target_rate, r.achieved_rate), (52.0, 51.5));
        assert_eq!(r.kinds.len(), 2);
        assert_eq!(r.kinds[0].errors, 1);
        assert_eq!(r.latency.count, 102);
        // The 51st of 102 sorted values (1..=100 ms, 5 ms, 10 s) is 50 ms.
        assert!(
            (r.latency.p50_ms - 50.0).abs() < 0.1,
            "{}",
            r.latency.p50_ms
        );
        assert!((r.latency.max_ms - 10_000.0).abs() < 10.0);
        let json = serde_json::to_string(&r).expect("serializes");
        let back: Report = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, r);
    }
}
