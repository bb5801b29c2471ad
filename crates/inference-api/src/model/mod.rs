//! The model: its manifest, the engine that runs it, and loading a bundle.
//!
//! Handlers see only [`Engine`] and plain data; `ort` appears in [`onnx`] alone.

pub(crate) mod coalesce;
mod fast_json;
pub mod features;
pub(crate) mod loader;
pub mod manifest;
mod onnx;

pub use loader::LoadedModel;
pub(crate) use loader::load_bundle;

/// Raw outputs for `rows` rows: one class index per row, and `rows × classes` probabilities.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    pub labels: Vec<i64>,
    pub probabilities: Vec<f32>,
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
