//! Coalescing: the rows of requests that are ready together on one worker run in one model call.
//!
//! Most of an ONNX Runtime call's cost for a small input is fixed, not per row: on this
//! project's model, one row costs about 48k instructions and each further row about 19k. Under
//! load, a worker's event loop wakes several connections at once; their rows join one open
//! group, and the group runs in a task spawned behind them, so it runs after every request
//! already woken on this loop has joined. No timer is involved: a lone request waits one pass
//! of the loop, microseconds. A request with more than `max_rows` rows runs alone, and a group
//! never grows past `max_rows`.
//!
//! One `Coalescer` per worker thread; it is neither `Send` nor `Sync`.

use super::{EngineError, Predictions};
use std::cell::RefCell;
use std::rc::Rc;
use tokio::sync::oneshot;

/// Runs the model on a row-major `[rows, features]` matrix (and records the call's metrics).
pub(crate) type RunModel = dyn Fn(&[f32], usize) -> Result<Predictions, EngineError>;

type Reply = oneshot::Sender<Result<Predictions, EngineError>>;

#[derive(Clone)]
pub(crate) struct Coalescer {
    inner: Rc<Inner>,
}

struct Inner {
    run: Box<RunModel>,
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
    /// `max_rows` 0 turns coalescing off: every request runs alone.
    pub(crate) fn new(max_rows: usize, run: Box<RunModel>) -> Self {
        Self {
            inner: Rc::new(Inner {
                run,
                max_rows,
                open: RefCell::new(None),
            }),
        }
    }

    /// Runs `rows` rows, together with other requests' rows when they are ready at the same time.
    /// Must be called on a thread with a tokio local task set (every actix-web worker has one).
    pub(crate) async fn run(
        &self,
        values: &[f32],
        rows: usize,
    ) -> Result<Predictions, EngineError> {
        let inner = &self.inner;
        if rows == 0 || rows > inner.max_rows {
            return (inner.run)(values, rows);
        }
        let (tx, rx) = oneshot::channel();
        let group = self.join(rows);
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
    fn join(&self, rows: usize) -> Rc<RefCell<Group>> {
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
        // Spawned tasks queue behind the ones already woken, so those join first.
        actix_web::rt::spawn(async move { inner.flush(&task_group) });
        group
    }
}

impl Inner {
    /// Closes the group, runs its rows in one call and hands each request its rows' results.
    fn flush(&self, group: &Rc<RefCell<Group>>) {
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
        let result = (self.run)(&values, rows);
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
    use std::cell::RefCell;

    /// A fake 2-class model over 2 features: label = first feature,
    /// probabilities = [second, 1 - second]. Records the row count of every call.
    fn coalescer(max_rows: usize) -> (Coalescer, Rc<RefCell<Vec<usize>>>) {
        let calls = Rc::new(RefCell::new(Vec::new()));
        let seen = Rc::clone(&calls);
        let run = move |values: &[f32], rows: usize| {
            seen.borrow_mut().push(rows);
            let out = Output {
                labels: values.chunks_exact(2).map(|r| r[0] as i64).collect(),
                probabilities: values
                    .chunks_exact(2)
                    .flat_map(|r| [r[1], 1.0 - r[1]])
                    .collect(),
            };
            Predictions::check(out, rows, 2)
        };
        (Coalescer::new(max_rows, Box::new(run)), calls)
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
        let (c, calls) = coalescer(32);
        let inputs: Vec<Vec<f32>> = (0..5).map(row).collect();
        let outs = join_all(inputs.iter().map(|v| c.run(v, 1))).await;
        for (i, out) in outs.into_iter().enumerate() {
            assert_eq!(out.expect("prediction"), expected(&[i]));
        }
        assert_eq!(*calls.borrow(), vec![5]);
    }

    #[actix_web::test]
    async fn multi_row_requests_keep_their_rows_in_order() {
        let (c, calls) = coalescer(32);
        let a: Vec<f32> = [1, 2, 3].iter().flat_map(|&i| row(i)).collect();
        let b: Vec<f32> = row(7);
        let c_rows: Vec<f32> = [8, 9].iter().flat_map(|&i| row(i)).collect();
        let (ra, rb, rc) =
            futures_util::future::join3(c.run(&a, 3), c.run(&b, 1), c.run(&c_rows, 2)).await;
        assert_eq!(ra.expect("a"), expected(&[1, 2, 3]));
        assert_eq!(rb.expect("b"), expected(&[7]));
        assert_eq!(rc.expect("c"), expected(&[8, 9]));
        assert_eq!(*calls.borrow(), vec![6]);
    }

    #[actix_web::test]
    async fn a_group_never_exceeds_max_rows_and_larger_requests_run_alone() {
        let (c, calls) = coalescer(4);
        let inputs: Vec<Vec<f32>> = (0..6).map(row).collect();
        let big: Vec<f32> = (10..15).flat_map(row).collect();
        let (small, big_out) = futures_util::future::join(
            join_all(inputs.iter().map(|v| c.run(v, 1))),
            c.run(&big, 5),
        )
        .await;
        for (i, out) in small.into_iter().enumerate() {
            assert_eq!(out.expect("prediction"), expected(&[i]));
        }
        assert_eq!(big_out.expect("big"), expected(&[10, 11, 12, 13, 14]));
        // The 5-row request ran at once, inline; the six single rows went as 4 + 2.
        assert_eq!(*calls.borrow(), vec![5, 4, 2]);
    }

    #[actix_web::test]
    async fn zero_max_rows_runs_every_request_alone() {
        let (c, calls) = coalescer(0);
        let inputs: Vec<Vec<f32>> = (0..3).map(row).collect();
        let outs = join_all(inputs.iter().map(|v| c.run(v, 1))).await;
        assert!(outs.into_iter().all(|o| o.is_ok()));
        assert_eq!(*calls.borrow(), vec![1, 1, 1]);
    }

    #[actix_web::test]
    async fn requests_one_after_another_each_run_alone() {
        let (c, calls) = coalescer(32);
        assert_eq!(c.run(&row(3), 1).await.expect("first"), expected(&[3]));
        assert_eq!(c.run(&row(4), 1).await.expect("second"), expected(&[4]));
        assert_eq!(*calls.borrow(), vec![1, 1]);
    }

    #[actix_web::test]
    async fn an_engine_error_reaches_every_request_of_the_group() {
        let c = Coalescer::new(
            32,
            Box::new(|_: &[f32], _| Err(EngineError::Run("boom".into()))),
        );
        let inputs: Vec<Vec<f32>> = (0..3).map(row).collect();
        for out in join_all(inputs.iter().map(|v| c.run(v, 1))).await {
            assert_eq!(
                out.expect_err("error").to_string(),
                "model run failed: boom"
            );
        }
    }

    #[actix_web::test]
    async fn a_request_that_goes_away_does_not_disturb_its_group() {
        let (c, calls) = coalescer(32);
        let gone_row = row(1);
        let mut gone = Box::pin(c.run(&gone_row, 1));
        // Joins the group, then is dropped (a client that disconnected) before the group runs.
        assert!(futures_util::FutureExt::now_or_never(gone.as_mut()).is_none());
        drop(gone);
        assert_eq!(c.run(&row(2), 1).await.expect("kept"), expected(&[2]));
        assert_eq!(*calls.borrow(), vec![2]);
    }
}
