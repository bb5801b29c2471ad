//! The model: its manifest, the engine that runs it, and loading a bundle.
//!
//! Handlers see only [`Engine`] and plain data; `ort` appears in [`onnx`] alone. The
//! `ort_alone` example (scripts/bench.sh's baseline) runs [`load_bundle`]'s engines without HTTP.

pub(crate) mod coalesce;
pub mod features;
pub(crate) mod loader;
pub mod manifest;
mod onnx;

pub use loader::LoadedModel;
pub use loader::load_bundle;

/// An engine's raw outputs for `rows` rows: one class index per row, and `rows × classes`
/// probabilities. Unchecked: [`Predictions::check`] is the one place they are checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    pub labels: Vec<i64>,
    pub probabilities: Vec<f32>,
}

/// An engine's output once checked: `rows` class indices below `classes`, `rows × classes`
/// probabilities. Only [`Predictions::check`] builds one from an engine's [`Output`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Predictions {
    class_indices: Vec<usize>,
    probabilities: Vec<f32>,
    classes: usize,
}

impl Predictions {
    /// Checks an engine's output for `rows` rows of a `classes`-class model.
    pub(crate) fn check(out: Output, rows: usize, classes: usize) -> Result<Self, EngineError> {
        if out.labels.len() != rows || out.probabilities.len() != rows * classes {
            return Err(EngineError::Run(format!(
                "the model returned {} labels and {} probabilities for {rows} rows of {classes} classes",
                out.labels.len(),
                out.probabilities.len()
            )));
        }
        let class_indices = out
            .labels
            .iter()
            .map(|&label| {
                usize::try_from(label)
                    .ok()
                    .filter(|&i| i < classes)
                    .ok_or_else(|| {
                        EngineError::Run(format!(
                            "the model predicted class index {label} but has {classes} classes"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            class_indices,
            probabilities: out.probabilities,
            classes,
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.class_indices.len()
    }

    /// Each row's class index.
    pub(crate) fn class_indices(&self) -> &[usize] {
        &self.class_indices
    }

    /// `rows × classes` probabilities, row-major.
    pub(crate) fn probabilities(&self) -> &[f32] {
        &self.probabilities
    }

    /// Each row's class index and its probabilities in class order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &[f32])> {
        self.class_indices
            .iter()
            .copied()
            .zip(self.probabilities.chunks_exact(self.classes.max(1)))
    }

    /// Rows `start..end`.
    pub(crate) fn slice(&self, start: usize, end: usize) -> Self {
        Self {
            class_indices: self.class_indices[start..end].to_vec(),
            probabilities: self.probabilities[start * self.classes..end * self.classes].to_vec(),
            classes: self.classes,
        }
    }
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the model engine: {0}")]
    Start(String),
    #[error("model run failed: {0}")]
    Run(String),
}

/// Runs a tabular classifier on a row-major `[rows, features]` matrix.
pub trait Engine: Send {
    fn run(&mut self, input: &[f32], rows: usize) -> Result<Output, EngineError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(labels: &[i64], probabilities: &[f32]) -> Output {
        Output {
            labels: labels.to_vec(),
            probabilities: probabilities.to_vec(),
        }
    }

    #[test]
    fn a_well_formed_output_gives_each_row_its_class_and_probabilities() {
        let p = Predictions::check(output(&[1, 0], &[0.2, 0.8, 0.9, 0.1]), 2, 2).expect("valid");
        let rows: Vec<(usize, &[f32])> = p.iter().collect();
        assert_eq!(rows, vec![(1, &[0.2, 0.8][..]), (0, &[0.9, 0.1][..])]);
        assert_eq!(
            p.slice(1, 2).iter().collect::<Vec<_>>(),
            vec![(0, &[0.9, 0.1][..])]
        );
    }

    #[test]
    fn wrong_row_or_probability_counts_are_errors() {
        for (labels, probabilities) in [(&[0][..], &[0.5, 0.5][..]), (&[0, 1, 0], &[0.5; 5])] {
            let e = Predictions::check(output(labels, probabilities), 3, 2).expect_err("bad shape");
            assert!(e.to_string().contains("for 3 rows of 2 classes"), "{e}");
        }
    }

    #[test]
    fn class_indices_outside_the_classes_are_errors() {
        for label in [-1, 2] {
            let e = Predictions::check(output(&[label], &[0.5, 0.5]), 1, 2).expect_err("bad index");
            assert!(
                e.to_string().contains(&format!("class index {label}")),
                "{e}"
            );
        }
    }
}
