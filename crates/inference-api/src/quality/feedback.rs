//! Recent predictions kept for feedback labels: one shard per worker (a prediction is written to
//! its own worker's shard without contention; a label, which is rare, looks in every shard).
//! Each shard holds at most `capacity / shards` predicted rows; the oldest requests are evicted.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

struct Entry {
    classes: Vec<u16>,
    labelled: Vec<bool>,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<Arc<str>, Entry>,
    order: VecDeque<Arc<str>>,
    rows: usize,
}

pub(crate) struct FeedbackStore {
    shards: Vec<Mutex<Shard>>,
    rows_per_shard: usize,
}

/// What a label found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabelOutcome {
    /// The predicted class of that row; the label is recorded.
    Recorded {
        predicted: usize,
    },
    UnknownRequest,
    UnknownRow {
        rows: usize,
    },
    AlreadyLabelled,
}

impl FeedbackStore {
    pub(crate) fn new(capacity_rows: usize, shards: usize) -> Self {
        let shards = shards.max(1);
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            rows_per_shard: (capacity_rows / shards).max(1),
        }
    }

    /// Keeps the predicted classes of one request; returns how many older rows were evicted.
    pub(crate) fn insert(&self, shard: usize, request_id: Arc<str>, classes: Vec<u16>) -> usize {
        let mut s = self.shards[shard % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let rows = classes.len();
        if let Some(old) = s.entries.insert(
            request_id.clone(),
            Entry {
                labelled: vec![false; rows],
                classes,
            },
        ) {
            // A reused request id: the newest prediction wins.
            s.rows -= old.classes.len();
            s.order.retain(|k| k != &request_id);
        }
        s.order.push_back(request_id);
        s.rows += rows;
        let mut evicted = 0;
        while s.rows > self.rows_per_shard && s.order.len() > 1 {
            let Some(oldest) = s.order.pop_front() else {
                break;
            };
            if let Some(e) = s.entries.remove(&oldest) {
                s.rows -= e.classes.len();
                evicted += e.classes.len();
            }
        }
        evicted
    }

    /// Records a label for `row` of `request_id`, once.
    pub(crate) fn label(&self, request_id: &str, row: usize) -> LabelOutcome {
        for shard in &self.shards {
            let mut s = shard.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = s.entries.get_mut(request_id) {
                return match e.labelled.get_mut(row) {
                    None => LabelOutcome::UnknownRow {
                        rows: e.classes.len(),
                    },
                    Some(done) if *done => LabelOutcome::AlreadyLabelled,
                    Some(done) => {
                        *done = true;
                        LabelOutcome::Recorded {
                            predicted: usize::from(e.classes[row]),
                        }
                    }
                };
            }
        }
        LabelOutcome::UnknownRequest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_labelled_once_and_unknown_ids_and_rows_are_told_apart() {
        let store = FeedbackStore::new(100, 2);
        store.insert(0, Arc::from("a"), vec![1, 0, 1]);
        assert_eq!(store.label("a", 1), LabelOutcome::Recorded { predicted: 0 });
        assert_eq!(store.label("a", 1), LabelOutcome::AlreadyLabelled);
        assert_eq!(store.label("a", 3), LabelOutcome::UnknownRow { rows: 3 });
        assert_eq!(store.label("b", 0), LabelOutcome::UnknownRequest);
    }

    #[test]
    fn the_oldest_predictions_are_evicted_and_counted() {
        let store = FeedbackStore::new(4, 1);
        assert_eq!(store.insert(0, Arc::from("r1"), vec![0, 0]), 0);
        assert_eq!(store.insert(0, Arc::from("r2"), vec![1, 1]), 0);
        assert_eq!(store.insert(0, Arc::from("r3"), vec![1]), 2);
        assert_eq!(store.label("r1", 0), LabelOutcome::UnknownRequest);
        assert_eq!(
            store.label("r2", 0),
            LabelOutcome::Recorded { predicted: 1 }
        );
        assert_eq!(
            store.label("r3", 0),
            LabelOutcome::Recorded { predicted: 1 }
        );
    }
}
