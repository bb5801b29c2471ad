//! A model bundle as every service reads it: one folder holding `model.onnx`, its manifest
//! `model.json` and held-out `samples.csv`, all written by `scripts/train_model.py`.
//!
//! - [`manifest`]: `model.json`, parsed and checked once: [`Manifest`] (everything, for the
//!   inference API) and [`Identity`] (name, version, training time, for the exporter), with one
//!   `trained_at` parser.
//! - [`samples`]: `samples.csv` and the training statistics the traffic generator needs
//!   ([`Bundle`]).
//! - [`repository`]: a model's folder and its versions, the newest served.
//! - [`drift`]: the drift transform that moves rows away from the training distribution.

pub mod drift;
pub mod manifest;
pub mod repository;
pub mod samples;

pub use drift::Drift;
pub use manifest::{Identity, Manifest};
pub use repository::{ModelVersions, VersionDir, compare_versions, model_versions};
pub use samples::{Bundle, FeatureStat, LABEL_COLUMN, Sample};

/// The manifest's file name in a bundle.
pub const MANIFEST_FILE: &str = "model.json";
/// The ONNX model's file name in a bundle.
pub const MODEL_FILE: &str = "model.onnx";
/// The held-out samples' file name in a bundle.
pub const SAMPLES_FILE: &str = "samples.csv";
