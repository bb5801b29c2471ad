//! Coalescing: the rows of requests that are ready together on one worker run in one model call.
//!
//! Most of an ONNX Runtime call's cost for a small input is fixed, not per row (figures for the
//! bundled model: docs/performance.md, "Instructions per request"). Under
//! load, a worker's event loop wakes several connections at once; their rows join one open
//! group, and the group runs in a task spawned behind them, so it runs after every request
//! already woken on this loop has joined. No timer is involved: a lone request waits one pass
//! of the loop, microseconds. A request with more than `max_rows` rows runs alone, and a group
//! never grows past `max_rows`.
//!
//! One `Coalescer` per worker thread; it is neither `Send` nor `Sync`. The model it runs is
//! handed in with each request: the serving model (`state::ServingModel`) is published after
//! the workers start.

use super::{EngineError, Predictions};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::oneshot;

/// What a coalescer runs: one model call on a row-major `[rows, features]` matrix with the
/// engine of `worker`.
pub(crate) trait RunModel {
    fn run(&self, worker: usize, values: &[f32], rows: usize) -> Result<Predictions, EngineError>;
}

type Reply = oneshot::Sender<Result<Predictions, EngineError>>;

pub(crate) struct Coalescer {
    inner: Rc<Inner>,
}

struct Inner {
    worker: usize,
    max_rows: usize,
    /// The group requests join until its task takes it.
    open: RefCell<Option<Rc<RefCell<Group>>>>,
}

#[derive(Default)]
struct Group {
    values: Vec<f32>,
    rows: usize,
    /// Each waiting request: its row count and where its rows' results go, in row order.
    waiters: Vec<(usize, Reply)>,
}

impl Coalescer {
    /// The coalescer of `worker`; `max_rows` 0 turns coalescing off: every request runs alone.
    pub(crate) fn new(worker: usize, max_rows: usize) -> Self {
        Self {
            inner: Rc::new(Inner {
                worker,
                max_rows,
                open: RefCell::new(None),
            }),
        }
    }

    /// Runs `rows` rows on `model`, together with other requests' rows when they are ready at the
    /// same time (a group runs on the model of the request that opened it: there is only one).
    /// Must be called on a thread with a tokio local task set (every actix-web worker has one).
    pub(crate) async fn run<M: RunModel + 'static>(
        &self,
        model: &Arc<M>,
        values: &[f32],
        rows: usize,
    ) -> Result<Predictions, EngineError> {
        let inner = &self.inner;
        if rows == 0 || rows > inner.max_rows {
            return model.run(inner.worker, values, rows);
        }
        let (tx, rx) = oneshot::channel();
        let group = self.join(model, rows);
        {
            let mut g = group.borrow_mut();
            g.values.extend_from_slice(values);
            g.rows += rows;
            g.waiters.push((rows, tx));
        }
        // The sender is dropped without a reply only if the group's task never finished: a panic
        // in the engine, or the worker shutting down first.
        rx.await.unwrap_or_else(|_| {
            Err(EngineError::Run(
                "the coalesced model run did not finish".into(),
            ))
        })
    }

    /// The open group if these rows fit in it, else a new group with its task spawned.
    fn join<M: RunModel + 'static>(&self, model: &Arc<M>, rows: usize) -> Rc<RefCell<Group>> {
        let mut open = self.inner.open.borrow_mut();
        if let Some(group) = open.as_ref()
            && group.borrow().rows + rows <= self.inner.max_rows
        {
            return Rc::clone(group);
        }
        let group = Rc::new(RefCell::new(Group::default()));
        *open = Some(Rc::clone(&group));
        let inner = Rc::clone(&self.inner);
        let task_group = Rc::clone(&group);
        let model = Arc::clone(model);
        // Spawned tasks queue behind the ones already woken, so those join first.
        actix_web::rt::spawn(async move { inner.flush(&*model, &task_group) });
        group
    }
}

impl Inner {
    /// Closes the group, runs its rows in one call and hands each request its rows' results.
    fn flush(&self, model: &impl RunModel, group: &Rc<RefCell<Group>>) {
        {
            let mut open = self.open.borrow_mut();
            if open.as_ref().is_some_and(|g| Rc::ptr_eq(g, group)) {
                *open = None;
            }
        }
        let Group {
            values,
            rows,
            mut waiters,
        } = std::mem::take(&mut *group.borrow_mut());
        if waiters.is_empty() {
            return;
        }
        let result = model.run(self.worker, &values, rows);
        if waiters.len() == 1 {
            // A group of one gets the call's output as it is.
            let (_, reply) = waiters.pop().expect("one waiter");
            let _ = reply.send(result);
            return;
        }
        match result {
            Ok(out) => {
                let mut start = 0;
                for (n, reply) in waiters {
                    let end = start + n;
                    // A request that went away (client disconnected) dropped its receiver.
                    let _ = reply.send(Ok(out.slice(start, end)));
                    start = end;
                }
            }
            Err(e) => {
                for (_, reply) in waiters {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Output;
    use futures_util::future::join_all;
    use std::sync::Mutex;

    /// A fake 2-class model over 2 features: label = first feature,
    /// probabilities = [second, 1 - second], or always `boom` when it fails.
    /// Records the worker and row count of every call.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<(usize, usize)>>,
        fails: bool,
    }

    impl RunModel for Fake {
        fn run(
            &self,
            worker: usize,
            values: &[f32],
            rows: usize,
        ) -> Result<Predictions, EngineError> {
            self.calls.lock().expect("calls").push((worker, rows));
            if self.fails {
                return Err(EngineError::Run("boom".into()));
            }
            let out = Output {
                labels: values.chunks_exact(2).map(|r| r[0] as i64).collect(),
                probabilities: values
                    .chunks_exact(2)
                    .flat_map(|r| [r[1], 1.0 - r[1]])
                    .collect(),
            };
            Predictions::check(out, rows, 2)
        }
    }

    const WORKER: usize = 3;

    fn coalescer(max_rows: usize) -> (Coalescer, Arc<Fake>) {
        (Coalescer::new(WORKER, max_rows), Arc::default())
    }

    /// The row count of every call the fake model saw (all on `WORKER`).
    fn calls(model: &Fake) -> Vec<usize> {
        let calls = model.calls.lock().expect("calls");
        assert!(calls.iter().all(|&(w, _)| w == WORKER), "{calls:?}");
        calls.iter().map(|&(_, rows)| rows).collect()
    }

    /// Row `i`: class `i % 2`, probabilities unique to `i`.
    fn row(i: usize) -> Vec<f32> {
        vec![(i % 2) as f32, i as f32 / 100.0]
    }

    fn expected(rows: &[usize]) -> Predictions {
        let out = Output {
            labels: rows.iter().map(|&i| (i % 2) as i64).collect(),
            probabilities: rows
                .iter()
                .flat_map(|&i| [i as f32 / 100.0, 1.0 - i as f32 / 100.0])
                .collect(),
        };
        Predictions::check(out, rows.len(), 2).expect("valid")
    }

    #[actix_web::test]
    async fn requests_ready_together_share_one_call_and_get_their_own_rows_back() {
        let (c, m) = coalescer(32);
        let inputs: Vec<Vec<f32>> = (0..5).map(row).collect();
        let outs = join_all(inputs.iter().map(|v| c.run(&m, v, 1))).await;
        for (i, out) in outs.into_iter().enumerate() {
            assert_eq!(out.expect("prediction"), expected(&[i]));
        }
        assert_eq!(calls(&m), vec![5]);
    }

    #[actix_web::test]
    async fn multi_row_requests_keep_their_rows_in_order() {
        let (c, m) = coalescer(32);
        let a: Vec<f32> = [1, 2, 3].iter().flat_map(|&i| row(i)).collect();
        let b: Vec<f32> = row(7);
        let c_rows: Vec<f32> = [8, 9].iter().flat_map(|&i| row(i)).collect();
        let (ra, rb, rc) =
            futures_util::future::join3(c.run(&m, &a, 3), c.run(&m, &b, 1), c.run(&m, &c_rows, 2))
                .await;
        assert_eq!(ra.expect("a"), expected(&[1, 2, 3]));
        assert_eq!(rb.expect("b"), expected(&[7]));
        assert_eq!(rc.expect("c"), expected(&[8, 9]));
        assert_eq!(calls(&m), vec![6]);
    }

    #[actix_web::test]
    async fn a_group_never_exceeds_max_rows_and_larger_requests_run_alone() {
        let (c, m) = coalescer(4);
        let inputs: Vec<Vec<f32>> = (0..6).map(row).collect();
        let big: Vec<f32> = (10..15).flat_map(row).collect();
        let (small, big_out) = futures_util::future::join(
            join_all(inputs.iter().map(|v| c.run(&m, v, 1))),
            c.run(&m, &big, 5),
        )
        .await;
        for (i, out) in small.into_iter().enumerate() {
            assert_eq!(out.expect("prediction"), expected(&[i]));
        }
        assert_eq!(big_out.expect("big"), expected(&[10, 11, 12, 13, 14]));
        // The 5-row request ran at once, inline; the six single rows went as 4 + 2.
        assert_eq!(calls(&m), vec![5, 4, 2]);
    }

    #[actix_web::test]
    async fn zero_max_rows_runs_every_request_alone() {
        let (c, m) = coalescer(0);
        let inputs: Vec<Vec<f32>> = (0..3).map(row).collect();
        let outs = join_all(inputs.iter().map(|v| c.run(&m, v, 1))).await;
        assert!(outs.into_iter().all(|o| o.is_ok()));
        assert_eq!(calls(&m), vec![1, 1, 1]);
    }

    #[actix_web::test]
    async fn requests_one_after_another_each_run_alone() {
        let (c, m) = coalescer(32);
        assert_eq!(c.run(&m, &row(3), 1).await.expect("first"), expected(&[3]));
        assert_eq!(c.run(&m, &row(4), 1).await.expect("second"), expected(&[4]));
        assert_eq!(calls(&m), vec![1, 1]);
    }

    #[actix_web::test]
    async fn an_engine_error_reaches_every_request_of_the_group() {
        let c = Coalescer::new(WORKER, 32);
        let m = Arc::new(Fake {
            fails: true,
            ..Fake::default()
        });
        let inputs: Vec<Vec<f32>> = (0..3).map(row).collect();
        for out in join_all(inputs.iter().map(|v| c.run(&m, v, 1))).await {
            assert_eq!(
                out.expect_err("error").to_string(),
                "model run failed: boom"
            );
        }
    }

    #[actix_web::test]
    async fn a_request_that_goes_away_does_not_disturb_its_group() {
        let (c, m) = coalescer(32);
        let gone_row = row(1);
        let mut gone = Box::pin(c.run(&m, &gone_row, 1));
        // Joins the group, then is dropped (a client that disconnected) before the group runs.
        assert!(futures_util::FutureExt::now_or_never(gone.as_mut()).is_none());
        drop(gone);
        assert_eq!(c.run(&m, &row(2), 1).await.expect("kept"), expected(&[2]));
        assert_eq!(calls(&m), vec![2]);
    }
}
