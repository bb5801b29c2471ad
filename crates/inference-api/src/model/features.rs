//! The model's side of its input: the features it expects and the matrix it runs on.
//!
//! Parsing `/predict` bodies into a [`FeatureMatrix`] lives with the route
//! (`routes::predict::body`).

use serde::Deserialize;
use std::collections::HashMap;

/// What to do with a missing (absent or null) feature.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// 422 naming the missing features.
    Reject,
    /// Use the training mean.
    Impute,
}

/// The features a model expects, in input order, and their training means (for imputation).
#[derive(Clone, Debug)]
pub struct FeatureSchema {
    names: Vec<String>,
    index: HashMap<String, usize>,
    means: Vec<f32>,
}

/// How a request becomes model input.
#[derive(Clone, Copy, Debug)]
pub struct Preprocessing<'a> {
    pub schema: &'a FeatureSchema,
    pub max_rows: usize,
    pub missing: MissingPolicy,
}

impl FeatureSchema {
    pub fn new(names: Vec<String>, means: Vec<f32>) -> Self {
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Self {
            names,
            index,
            means,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Feature names in input order.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Training means in input order.
    pub(crate) fn means(&self) -> &[f32] {
        &self.means
    }

    /// The input position of the feature called `name`.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

/// Rows ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeatureMatrix {
    pub(crate) rows: usize,
    pub(crate) values: Vec<f32>,
    /// Feature index of every imputed value.
    pub(crate) imputed: Vec<usize>,
}
