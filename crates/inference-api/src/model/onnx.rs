//! ONNX Runtime through `ort`: the only module that uses it.

use super::{Engine, EngineError, Output};
use ort::session::Session;
use ort::value::TensorRef;
use std::path::Path;
use std::sync::OnceLock;

static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Loads the ONNX Runtime library once per process (ONNX Runtime allows one environment).
fn environment(library: &Path) -> Result<&'static ort::environment::Environment, EngineError> {
    let _guard = INIT
        .lock()
        .map_err(|_| EngineError::Start("poisoned init lock".into()))?;
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let env = ort::init_from(library)
        .map_err(|e| {
            EngineError::Start(format!(
                "loading ONNX Runtime from {}: {e}",
                library.display()
            ))
        })?
        .with_name("inference-api")
        .with_telemetry(false)
        .build()
        .map_err(|e| EngineError::Start(format!("creating the ONNX Runtime environment: {e}")))?;
    Ok(ENVIRONMENT.get_or_init(|| env))
}

/// ONNX Runtime's build description, once the library is loaded.
pub(crate) fn build_info() -> &'static str {
    if ENVIRONMENT.get().is_some() {
        ort::info()
    } else {
        "not loaded"
    }
}

/// One ONNX Runtime session with the names of its input and two outputs.
pub(crate) struct OnnxEngine {
    session: Session,
    input: String,
    label_output: String,
    probabilities_output: String,
    features: usize,
}

pub(crate) struct EngineSpec<'a> {
    pub(crate) library: &'a Path,
    pub(crate) model: &'a [u8],
    pub(crate) input: &'a str,
    pub(crate) label_output: &'a str,
    pub(crate) probabilities_output: &'a str,
    pub(crate) features: usize,
    pub(crate) intra_threads: usize,
}

impl OnnxEngine {
    pub(crate) fn new(spec: &EngineSpec<'_>) -> Result<Self, EngineError> {
        let env = environment(spec.library)?;
        let start = |e: ort::Error| EngineError::Start(e.to_string());
        let session = Session::builder(env)
            .map_err(start)?
            .with_intra_threads(spec.intra_threads.max(1))
            .map_err(|e| EngineError::Start(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| EngineError::Start(e.to_string()))?
            .commit_from_memory(spec.model)
            .map_err(start)?;
        let has_input = session.inputs().iter().any(|o| o.name() == spec.input);
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        if !has_input {
            return Err(EngineError::Start(format!(
                "the model has no input named {:?}",
                spec.input
            )));
        }
        for name in [spec.label_output, spec.probabilities_output] {
            if !outputs.contains(&name) {
                return Err(EngineError::Start(format!(
                    "the model has no output named {name:?} (it has {outputs:?})"
                )));
            }
        }
        Ok(Self {
            session,
            input: spec.input.to_owned(),
            label_output: spec.label_output.to_owned(),
            probabilities_output: spec.probabilities_output.to_owned(),
            features: spec.features,
        })
    }
}

impl Engine for OnnxEngine {
    fn run(&mut self, input: &[f32], rows: usize) -> Result<Output, EngineError> {
        let run = |e: ort::Error| EngineError::Run(e.to_string());
        if input.len() != rows * self.features {
            return Err(EngineError::Run(format!(
                "input holds {} values, expected {rows} × {}",
                input.len(),
                self.features
            )));
        }
        let tensor = TensorRef::from_array_view(([rows, self.features], input)).map_err(run)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(run)?;
        let (_, labels) = outputs[self.label_output.as_str()]
            .try_extract_tensor::<i64>()
            .map_err(run)?;
        let (_, probabilities) = outputs[self.probabilities_output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(run)?;
        Ok(Output {
            labels: labels.to_vec(),
            probabilities: probabilities.to_vec(),
        })
    }
}
