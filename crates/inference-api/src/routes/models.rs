//! `GET /models`: the model's versions as the loader last saw them, and the state of each.

use crate::state::AppState;
use actix_web::{HttpResponse, web};
use model_bundle::repository::ModelVersions;
use serde::Serialize;
use std::path::Path;
use utoipa::ToSchema;

/// The answer to `GET /models`.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub(crate) struct ModelsView {
    pub(crate) models: Vec<ModelView>,
}

/// One model and its versions, newest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub(crate) struct ModelView {
    #[schema(example = "breast-cancer")]
    pub(crate) name: String,
    /// Whether `POST /predict` serves this model.
    pub(crate) default: bool,
    /// The model's folder.
    #[schema(example = "models/breast-cancer")]
    pub(crate) path: String,
    pub(crate) versions: Vec<VersionView>,
}

/// One version of a model.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub(crate) struct VersionView {
    /// The manifest's version; absent when the manifest cannot be read.
    #[schema(example = "1.0.0")]
    pub(crate) version: Option<String>,
    pub(crate) state: VersionState,
    /// The manifest's `trained_at`.
    #[schema(example = "2026-11-21T00:00:00Z")]
    pub(crate) trained_at: Option<String>,
    /// The sha256 of `model.onnx` the manifest declares (checked when the version loads).
    pub(crate) sha256: Option<String>,
    /// The version's folder.
    pub(crate) path: String,
    /// Why the version cannot be served (state `failed`).
    pub(crate) reason: Option<String>,
}

/// Where a version stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum VersionState {
    /// Loaded and answering predictions.
    Ready,
    /// Being loaded and warmed up; it is served once ready.
    Loading,
    /// Refused: see `reason`. The version serving before keeps serving.
    Failed,
    /// A readable older version, not loaded (only the newest is served).
    Available,
}

impl ModelView {
    /// The view of a folder scan: `state_of` gives each readable version's state and reason.
    pub(crate) fn new(
        dir: &Path,
        found: &ModelVersions,
        state_of: impl Fn(&model_bundle::VersionDir) -> (VersionState, Option<String>),
    ) -> Self {
        let mut versions: Vec<VersionView> = found
            .versions
            .iter()
            .map(|v| {
                let (state, reason) = state_of(v);
                VersionView {
                    version: Some(v.version.clone()),
                    state,
                    trained_at: Some(v.identity.trained_at.clone()),
                    sha256: v.sha256.clone(),
                    path: v.dir.display().to_string(),
                    reason,
                }
            })
            .collect();
        versions.extend(found.bad.iter().map(|b| {
            VersionView {
                // A sub-folder is named after its version; the model folder's own bundle is not.
                version: (b.dir != dir)
                    .then(|| b.dir.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .flatten(),
                state: VersionState::Failed,
                trained_at: None,
                sha256: None,
                path: b.dir.display().to_string(),
                reason: Some(b.reason.clone()),
            }
        }));
        Self {
            name: found.model.clone(),
            default: true,
            path: dir.display().to_string(),
            versions,
        }
    }
}

/// The models this server serves, each with every version in its folder and its state.
#[utoipa::path(
    get,
    path = "/models",
    tag = "service",
    responses((status = 200, description = "every model and version, with state", body = ModelsView)),
)]
pub(crate) async fn models(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.models_view())
}
