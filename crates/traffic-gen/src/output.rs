//! Presenting the final report: human text or JSON.

use crate::report::{Latency, Report};
use std::fmt::Write;

/// How the final report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report)
                .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode report: {e}\"}}"));
            s.push('\n');
            s
        }
        Format::Text => text(report),
    }
}

fn text(r: &Report) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = write_text(&mut s, r);
    s
}

fn write_text(s: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(s, "Summary")?;
    writeln!(s, "  Scenario:       {} (seed {})", r.scenario, r.seed)?;
    writeln!(s, "  Target:         {}", r.target)?;
    writeln!(
        s,
        "  Duration:       {:.2} s (stopped by {})",
        r.duration_seconds,
        match r.stopped_by {
            crate::report::StopReason::Duration => "--duration",
            crate::report::StopReason::Requests => "--requests",
            crate::report::StopReason::Signal => "a signal",
        }
    )?;
    writeln!(s, "  Target rate:    {:.2} req/s", r.target_rate)?;
    writeln!(s, "  Achieved rate:  {:.2} req/s", r.achieved_rate)?;
    writeln!(
        s,
        "  Requests:       {} sent, {} completed, {} unfinished",
        r.sent, r.completed, r.unfinished
    )?;
    writeln!(
        s,
        "  Late sends:     {} (max-in-flight {}; worst send lag {:.2} ms)",
        r.late_sends, r.max_in_flight, r.max_send_lag_ms
    )?;
    writeln!(
        s,
        "  Errors:         {} of {} ({:.2}%; non-2xx or no response)",
        r.errors,
        r.completed,
        100.0 * r.error_ratio
    )?;
    writeln!(s)?;
    latency(s, "Latency from intended send time (corrected)", &r.latency)?;
    latency(s, "Service time from actual send", &r.service_time)?;
    writeln!(s, "Requests by kind")?;
    writeln!(
        s,
        "  {:<20} {:>9} {:>9} {:>8}  outcomes",
        "kind", "sent", "completed", "errors"
    )?;
    for k in &r.kinds {
        let mut outcomes: Vec<String> = k
            .status_codes
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect();
        outcomes.extend(
            k.transport_errors
                .iter()
                .map(|(f, n)| format!("{}: {n}", serde_plain(f))),
        );
        writeln!(
            s,
            "  {:<20} {:>9} {:>9} {:>8}  {}",
            k.kind.as_str(),
            k.sent,
            k.completed,
            k.errors,
            outcomes.join(", ")
        )?;
    }
    if !r.status_codes.is_empty() {
        writeln!(s)?;
        writeln!(s, "Status codes")?;
        for (code, n) in &r.status_codes {
            writeln!(s, "  {code}: {n}")?;
        }
    }
    if !r.transport_errors.is_empty() {
        writeln!(s)?;
        writeln!(s, "Requests without a response")?;
        for (f, n) in &r.transport_errors {
            let example = r
                .transport_error_examples
                .get(f)
                .map(String::as_str)
                .unwrap_or("");
            writeln!(s, "  {}: {n}  (e.g. {example})", serde_plain(f))?;
        }
    }
    Ok(())
}

fn latency(s: &mut String, title: &str, l: &Latency) -> std::fmt::Result {
    writeln!(s, "{title}")?;
    writeln!(
        s,
        "  p50 {:.2} ms   p90 {:.2} ms   p99 {:.2} ms   p99.9 {:.2} ms   max {:.2} ms   (mean {:.2} ms, min {:.2} ms, n {})",
        l.p50_ms, l.p90_ms, l.p99_ms, l.p99_9_ms, l.max_ms, l.mean_ms, l.min_ms, l.count
    )?;
    writeln!(s)
}

fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
