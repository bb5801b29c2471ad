//! Loading a model bundle: manifest, checksum, one engine per worker (or one shared), warm-up.

use super::features::FeatureSchema;
use super::manifest::{Manifest, now_unix, public_view};
use super::onnx::{EngineSpec, OnnxEngine};
use super::{Engine, EngineError, Predictions};
use crate::configuration::{ModelSettings, SessionSharing};
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A loaded, warmed-up model, ready to serve.
pub struct LoadedModel {
    pub(crate) manifest: Manifest,
    /// `GET /model`: the manifest without training statistics.
    pub(crate) public_manifest: serde_json::Value,
    pub(crate) schema: FeatureSchema,
    pub(crate) name: Arc<str>,
    pub(crate) loaded_at_unix: f64,
    engines: Vec<Mutex<Box<dyn Engine>>>,
}

impl LoadedModel {
    /// Builds a model around ready engines (tests use this with fakes).
    pub fn new(
        manifest: Manifest,
        raw_manifest: &serde_json::Value,
        engines: Vec<Box<dyn Engine>>,
    ) -> Self {
        Self {
            public_manifest: public_view(raw_manifest),
            schema: FeatureSchema::new(
                manifest.features.clone(),
                manifest
                    .training
                    .feature_stats
                    .iter()
                    .map(|s| s.mean as f32)
                    .collect(),
            ),
            name: Arc::from(manifest.name()),
            loaded_at_unix: now_unix(),
            engines: engines.into_iter().map(Mutex::new).collect(),
            manifest,
        }
    }

    /// Runs the model on `rows` rows with the engine of `worker`, and checks what it returned.
    pub(crate) fn run(
        &self,
        worker: usize,
        input: &[f32],
        rows: usize,
    ) -> Result<Predictions, EngineError> {
        let engine = &self.engines[worker % self.engines.len()];
        // A poisoned lock only means an earlier run panicked; the session itself is still usable.
        let out = engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .run(input, rows)?;
        Predictions::check(out, rows, self.manifest.classes.len())
    }

    pub(crate) fn sessions(&self) -> usize {
        self.engines.len()
    }

    /// Features per input row.
    pub fn features(&self) -> usize {
        self.schema.len()
    }

    /// Runs the model on `rows` rows with engine `session` exactly as a request would (the same
    /// call and output check) and answers how many rows it predicted: for measuring the engine
    /// without HTTP (the `ort_alone` example).
    pub fn run_rows(
        &self,
        session: usize,
        input: &[f32],
        rows: usize,
    ) -> Result<usize, EngineError> {
        self.run(session, input, rows).map(|p| p.rows())
    }
}

/// Fails with one actionable line when the ONNX Runtime library is not where the settings say.
pub(crate) fn check_runtime(settings: &ModelSettings) -> anyhow::Result<()> {
    if !settings.onnxruntime_path.is_file() {
        bail!(
            "ONNX Runtime library not found at {}: run scripts/fetch-onnxruntime.sh (or set APP_MODEL__ONNXRUNTIME_PATH)",
            settings.onnxruntime_path.display()
        );
    }
    Ok(())
}

/// Loads the bundle in `dir` (one version of a model in `settings.repository`) with `workers`
/// engines (per worker) or one (shared), and runs each engine once on the training means before
/// returning. Every way a bundle can be wrong is an error naming the file and the reason.
pub fn load_bundle(
    settings: &ModelSettings,
    dir: &Path,
    workers: usize,
) -> anyhow::Result<LoadedModel> {
    check_runtime(settings)?;
    let raw = model_bundle::repository::read_small_file(
        &dir.join(model_bundle::MANIFEST_FILE),
        MAX_MANIFEST_BYTES,
    )
    .map_err(anyhow::Error::msg)?;
    let manifest = Manifest::parse(&raw).map_err(|e| anyhow::anyhow!("{}/{e}", dir.display()))?;
    let raw_json: serde_json::Value = serde_json::from_str(&raw)?;
    let model = read_model(dir, settings.max_model_bytes)?;
    if let Some(expected) = manifest.artifacts.get(model_bundle::MODEL_FILE) {
        let actual = format!("{:x}", Sha256::digest(&model));
        if !actual.eq_ignore_ascii_case(&expected.sha256) {
            bail!(
                "{}/model.onnx has sha256 {actual}, the manifest says {}",
                dir.display(),
                expected.sha256
            );
        }
    }
    let sessions = match settings.session_sharing {
        SessionSharing::PerWorker => workers.max(1),
        SessionSharing::Shared => 1,
    };
    let spec = EngineSpec {
        library: &settings.onnxruntime_path,
        model: &model,
        input: &manifest.input.name,
        label_output: &manifest.outputs.label,
        probabilities_output: &manifest.outputs.probabilities,
        features: manifest.features.len(),
        intra_threads: settings.intra_threads,
    };
    let means: Vec<f32> = manifest
        .training
        .feature_stats
        .iter()
        .map(|s| s.mean as f32)
        .collect();
    let mut engines: Vec<Box<dyn Engine>> = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        engines.push(Box::new(OnnxEngine::new(&spec)?));
    }
    let model = LoadedModel::new(manifest, &raw_json, engines);
    for worker in 0..sessions {
        model.run(worker, &means, 1).context("warm-up run")?;
    }
    Ok(model)
}

/// ONNX Runtime's build description and the version in the library's file name.
pub(crate) fn runtime_description(settings: &ModelSettings) -> (String, &'static str) {
    let version = settings
        .onnxruntime_path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("libonnxruntime.so."))
        .unwrap_or("unknown")
        .to_owned();
    (version, super::onnx::build_info())
}

/// The largest `model.json` read (a manifest is a few kilobytes; its training bins included).
pub(crate) const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Reads `model.onnx`: a regular file of at most `max` bytes (`model.max_model_bytes`).
fn read_model(dir: &Path, max: u64) -> anyhow::Result<Vec<u8>> {
    let path = dir.join(model_bundle::MODEL_FILE);
    model_bundle::repository::read_bounded(&path, max, &format!("model.max_model_bytes ({max})"))
        .map_err(anyhow::Error::msg)
}
