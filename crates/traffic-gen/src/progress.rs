//! Live progress on a terminal: elapsed, sent, achieved rate, errors, p50/p99 so far.

use crate::report::Aggregate;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the line is redrawn.
pub const REFRESH: Duration = Duration::from_millis(250);

/// A one-line spinner on stderr, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    sent: Arc<AtomicU64>,
}

/// Progress is shown only when both stdout and stderr are terminals.
pub fn wanted(disabled: bool) -> bool {
    !disabled && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

impl Progress {
    pub fn new(enabled: bool, sent: Arc<AtomicU64>) -> Self {
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        Self {
            bar,
            start: Instant::now(),
            sent,
        }
    }

    pub fn update(&self, agg: &Aggregate) {
        let Some(bar) = &self.bar else { return };
        let elapsed = self.start.elapsed().as_secs_f64();
        let sent = self.sent.load(Ordering::Relaxed);
        // The first instants give meaningless rates.
        let rate = if elapsed >= REFRESH.as_secs_f64() {
            sent as f64 / elapsed
        } else {
            0.0
        };
        let errors = agg.errors();
        let share = if agg.completed() > 0 {
            100.0 * errors as f64 / agg.completed() as f64
        } else {
            0.0
        };
        bar.set_message(format!(
            "{elapsed:>6.1}s  sent {sent}  {rate:.1} req/s  errors {errors} ({share:.1}%)  p50 {:.2} ms  p99 {:.2} ms",
            agg.latency_at(0.5).as_secs_f64() * 1000.0,
            agg.latency_at(0.99).as_secs_f64() * 1000.0,
        ));
        bar.tick();
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
