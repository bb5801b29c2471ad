//! How requests are sent: an open loop over a [`Schedule`].
//!
//! One producer sleeps until each ticket's absolute due time, takes one of `max_in_flight`
//! permits and spawns a task for the request, so slow responses never slow the schedule down.
//! When every permit is taken, the send waits for one and is counted as late, and so is every
//! send that this wait pushed past its due time (by more than a timer tick); none is skipped. Each task measures latency from the *intended* send time (coordinated-omission
//! corrected) and from its actual start (service time) and hands a [`Completed`] to the
//! aggregator over a channel.

use crate::http::{HttpClient, Route, SendError};
use crate::metrics::TrafficMetrics;
use crate::payload::{JSON, Payloads, Request};
use crate::plan::RequestKind;
use crate::report::{Completed, SendSummary, StopReason};
use crate::schedule::Schedule;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Resolution of tokio's timer.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// When a run ends (at least one is set).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
}

/// Where predictions go and what they carry: one model's route and bodies.
#[derive(Clone)]
pub struct Target {
    /// `POST /predict`, or `POST /models/<name>/predict`.
    pub route: Route,
    pub payloads: Arc<Payloads>,
}

/// Everything the sending side needs.
pub struct Executor {
    pub client: HttpClient,
    /// One per model; request `seq` goes to `targets[seq % len]`. Never empty.
    pub targets: Vec<Target>,
    /// `POST /feedback`.
    pub feedback_route: Route,
    pub max_in_flight: usize,
    pub metrics: TrafficMetrics,
}

/// What every request task shares, behind one `Arc` (one reference count per request).
struct Shared {
    client: HttpClient,
    targets: Vec<Target>,
    feedback_route: Route,
    /// Prefix of the request ids of labelled predictions: unique per run.
    run_id: String,
    labelled: AtomicU64,
    metrics: TrafficMetrics,
    results: mpsc::UnboundedSender<Completed>,
}

impl Executor {
    /// Sends the schedule until a limit is reached or `cancel` fires, and says what was sent.
    /// Requests still in flight keep the `results` sender, which closes when the last one ends.
    pub async fn send_all(
        &self,
        schedule: Schedule,
        limits: Limits,
        results: mpsc::UnboundedSender<Completed>,
        sent_counter: Arc<AtomicU64>,
        cancel: CancellationToken,
    ) -> SendSummary {
        let plan = schedule.plan().clone();
        let run_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        let shared = Arc::new(Shared {
            client: self.client.clone(),
            targets: self.targets.clone(),
            feedback_route: self.feedback_route.clone(),
            run_id: format!("tg-{run_id:x}"),
            labelled: AtomicU64::new(0),
            metrics: self.metrics.clone(),
            results,
        });
        let permits = Arc::new(Semaphore::new(self.max_in_flight));
        let mut sent_by_kind = [0u64; RequestKind::ALL.len()];
        let (mut sent, mut late) = (0u64, 0u64);
        // Set while sends are behind schedule because of the in-flight ceiling.
        let mut behind_ceiling = false;
        let mut max_lag = Duration::ZERO;
        let start = Instant::now();
        // Sending stops at the deadline even when it is behind schedule (the report then shows
        // fewer sends than planned); a run is always bounded in time.
        let deadline = limits.duration.map(|d| start + d);
        let never = start + Duration::from_secs(100 * 365 * 86_400);
        // One future for "stop now", created once rather than per request.
        let stop = async {
            tokio::select! {
                () = cancel.cancelled() => StopReason::Signal,
                () = tokio::time::sleep_until(deadline.unwrap_or(never)) => StopReason::Duration,
            }
        };
        tokio::pin!(stop);
        let stopped = |reason: StopReason| match reason {
            StopReason::Duration => (StopReason::Duration, limits.duration),
            other => (other, None),
        };
        let (stopped_by, planned_end) = 'send: {
            for ticket in schedule {
                if limits.requests.is_some_and(|n| ticket.seq >= n) {
                    break 'send (StopReason::Requests, Some(ticket.offset));
                }
                if let Some(d) = limits.duration
                    && ticket.offset >= d
                {
                    break 'send (StopReason::Duration, Some(d));
                }
                let intended = start + ticket.offset;
                let now = Instant::now();
                // Behind schedule with free slots, the loop below never waits; the wall clock
                // still ends the run.
                if deadline.is_some_and(|dl| now >= dl) {
                    break 'send (StopReason::Duration, limits.duration);
                }
                // tokio's timer fires on the first millisecond tick at or after its deadline, so
                // aim one tick early: sends leave within [intended - 1 ms, intended] instead of
                // [intended, intended + 1 ms], and the timer's own lag stays out of the
                // corrected latency. The schedule, and so the rate, is unchanged.
                if now + TIMER_TICK < intended {
                    tokio::select! {
                        biased;
                        reason = &mut stop => break 'send stopped(reason),
                        () = tokio::time::sleep_until(intended - TIMER_TICK) => {}
                    }
                }
                let permit = match permits.clone().try_acquire_owned() {
                    Ok(p) => {
                        // A send overdue because an earlier one waited for a slot is late too;
                        // the backlog is over once a send is on time again.
                        if behind_ceiling {
                            if now > intended + TIMER_TICK {
                                late += 1;
                                shared.metrics.late_send();
                            } else {
                                behind_ceiling = false;
                            }
                        }
                        p
                    }
                    Err(_) => {
                        let permit = tokio::select! {
                            biased;
                            reason = &mut stop => break 'send stopped(reason),
                            p = permits.clone().acquire_owned() => match p {
                                Ok(p) => p,
                                Err(_) => break 'send (StopReason::Signal, None),
                            },
                        };
                        late += 1;
                        shared.metrics.late_send();
                        behind_ceiling = true;
                        permit
                    }
                };
                max_lag = max_lag.max(intended.elapsed());
                shared
                    .metrics
                    .set_target_rate(plan.rate_at(ticket.offset.as_secs_f64()));
                let batch_size = plan.phases[ticket.phase].batch_size;
                let target = (ticket.seq % self.targets.len() as u64) as usize;
                let mut request =
                    self.targets[target]
                        .payloads
                        .build(ticket.kind, ticket.choice, batch_size);
                request.target = target;
                tokio::spawn(send_one(shared.clone(), request, intended, permit));
                sent += 1;
                sent_by_kind[ticket.kind as usize] += 1;
                sent_counter.store(sent, Ordering::Relaxed);
            }
            // A schedule never ends on its own.
            (StopReason::Signal, None)
        };
        let elapsed = start.elapsed();
        let window = planned_end.map_or(elapsed, |end| end.max(elapsed));
        shared.metrics.set_target_rate(0.0);
        SendSummary {
            sent_by_kind: RequestKind::ALL
                .iter()
                .zip(sent_by_kind)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (*k, n))
                .collect(),
            sent,
            late_sends: late,
            max_send_lag: max_lag,
            window,
            planned: plan.planned_requests(window.as_secs_f64()),
            stopped_by,
        }
    }
}

async fn send_one(
    shared: Arc<Shared>,
    request: Request,
    intended: Instant,
    permit: OwnedSemaphorePermit,
) {
    let started = Instant::now();
    shared.metrics.sent();
    let kind = request.kind;
    let result = match kind {
        RequestKind::Feedback | RequestKind::WrongFeedback => {
            predict_then_label(&shared, request).await
        }
        _ => {
            shared
                .client
                .send(
                    &shared.targets[request.target].route,
                    Some(request.content_type),
                    request.body,
                    None,
                )
                .await
        }
    }
    .map_err(|e| (e.failure, e.message));
    let done = Instant::now();
    let completed = Completed {
        kind,
        result,
        // From the intended send time, or from the actual one when it was (at most a timer
        // tick) earlier.
        latency: done - intended.min(started),
        service: done - started,
    };
    shared.metrics.finished();
    shared.metrics.observe(
        kind,
        completed.outcome(),
        completed.latency,
        completed.service,
    );
    // The aggregator only goes away when the run is over; then nobody needs this result.
    let _ = shared.results.send(completed);
    drop(permit);
}

/// A labelled prediction: predicts a sample row under its own request id and, when that
/// succeeds, sends the row's true class (or, for `wrong_feedback`, another one) to
/// `POST /feedback`. The status is the label's, or the prediction's when it failed.
async fn predict_then_label(shared: &Shared, request: Request) -> Result<u16, SendError> {
    let n = shared.labelled.fetch_add(1, Ordering::Relaxed);
    let id = format!("{}-{n}", shared.run_id);
    let status = shared
        .client
        .send_with_id(
            &shared.targets[request.target].route,
            Some(request.content_type),
            request.body,
            None,
            Some(&id),
        )
        .await?;
    if !(200..300).contains(&status) {
        return Ok(status);
    }
    let wrong = request.kind == RequestKind::WrongFeedback;
    let body =
        shared.targets[request.target]
            .payloads
            .feedback(&id, request.row.unwrap_or(0), wrong);
    shared
        .client
        .send(&shared.feedback_route, Some(JSON), body, None)
        .await
}
