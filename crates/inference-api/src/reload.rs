//! The model repository, watched: loads the newest version of every model at startup, then looks
//! at the repository every `model.poll_interval_seconds` and swaps in any new, changed or removed
//! version while serving (`model_bundle::repository` says what a version is).

use crate::configuration::ModelSettings;
use crate::metrics::LoadOutcome;
use crate::model::{load_bundle, loader};
use crate::routes::models::{ModelView, VersionState};
use crate::state::AppState;
use actix_web::web;
use model_bundle::repository::{Fingerprint, ModelVersions, model_folders, model_versions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Loads the models of the repository in the background, publishes them to the running server,
/// and then keeps looking for newer versions (`model.poll_interval_seconds`).
#[derive(Clone)]
pub struct ModelLoader {
    state: web::Data<AppState>,
    settings: ModelSettings,
    workers: usize,
    watched: Arc<Mutex<Watched>>,
}

/// What the loader has seen in the repository.
#[derive(Default)]
struct Watched {
    models: HashMap<String, WatchedModel>,
    /// The repository's own problems last logged: logged once, not every poll.
    reported: Vec<String>,
}

/// What the loader has seen in one model's folder.
#[derive(Default)]
struct WatchedModel {
    /// The version served, as its files were when it was loaded.
    served: Option<(PathBuf, Fingerprint)>,
    /// The versions refused, as their files were, and why: not tried again until they change.
    refused: HashMap<PathBuf, (Fingerprint, String)>,
    /// The problems last logged with the folder's versions: each is logged once, not every poll.
    reported: Vec<String>,
}

impl ModelLoader {
    pub(crate) fn new(state: web::Data<AppState>, settings: ModelSettings, workers: usize) -> Self {
        Self {
            state,
            settings,
            workers,
            watched: Arc::default(),
        }
    }

    /// Loads, warms up and publishes the newest version of every model (unless it is served
    /// already). Fails when the default model has no version that loads; the other models'
    /// failures are logged and counted, and they are tried again at the next look.
    pub async fn load(&self) -> anyhow::Result<()> {
        self.check_repository().await
    }

    /// Looks at the repository every `model.poll_interval_seconds` and serves the newest version
    /// of each model whenever it is new or changed. Never returns (unless polling is off).
    pub async fn watch(&self) {
        let Some(every) = self.settings.poll_interval() else {
            return;
        };
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            // Errors are logged and counted; the versions serving keep serving.
            let _ = self.check_repository().await;
        }
    }

    /// One look at the repository: every model folder checked; models whose folder is gone are
    /// no longer served (the default model keeps its last version). The default model's outcome.
    async fn check_repository(&self) -> anyhow::Result<()> {
        let repository = self.settings.repository.clone();
        let listed = tokio::task::spawn_blocking(move || model_folders(&repository)).await?;
        let folders = match listed {
            Ok((folders, problems)) => {
                self.report_repository(problems);
                folders
            }
            Err(e) => {
                self.report_repository(vec![e.clone()]);
                anyhow::bail!(e);
            }
        };
        let names: Vec<String> = folders.iter().map(|(name, _)| name.clone()).collect();
        self.state.retain_models(&names);
        self.watched()
            .models
            .retain(|name, _| names.contains(name) || name == self.state.default_model());
        let default = self.state.default_model().to_owned();
        let mut outcome = Ok(());
        if !names.contains(&default) {
            // Logged once while it lasts; the version it served (if any) keeps serving, and the
            // other models are still looked at.
            let message = format!(
                "{}: the default model {default:?} has no folder there (model.default)",
                self.settings.repository.display()
            );
            let dir = self.settings.default_model_dir();
            self.report(&default, &dir, vec![message.clone()]);
            outcome = Err(anyhow::anyhow!(message));
        }
        for (name, dir) in folders {
            let checked = self.check(&name, &dir).await;
            if name == default {
                outcome = checked.map(|_| ());
            }
        }
        outcome
    }

    /// Loads the newest version of the model `name` in `dir` if it is not the one served (nor
    /// one already refused as it is). `Ok(Some(version))` when it loaded one, `Ok(None)` when
    /// there was nothing new, `Err` when there is no version or the newest was refused.
    async fn check(&self, name: &str, dir: &Path) -> anyhow::Result<Option<String>> {
        let scan_dir = dir.to_path_buf();
        let found = tokio::task::spawn_blocking(move || {
            model_versions(&scan_dir, loader::MAX_MANIFEST_BYTES)
        })
        .await?;
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                self.report(name, dir, vec![e.clone()]);
                anyhow::bail!(e);
            }
        };
        let mut problems: Vec<String> = found.bad.iter().map(|b| b.reason.clone()).collect();
        if found.model != name {
            problems.push(format!(
                "{}: its model.json names model {:?}; a model's folder is named after the model",
                dir.display(),
                found.model
            ));
            let e = problems.join("; ");
            self.report(name, dir, problems);
            anyhow::bail!(e);
        }
        let Some(latest) = found.latest().cloned() else {
            problems.push(format!(
                "{}: no model version (no model.json in it or in a sub-folder)",
                dir.display()
            ));
            let e = problems.join("; ");
            self.report(name, dir, problems);
            self.show(dir, &found, None);
            anyhow::bail!(e);
        };
        self.report(name, dir, problems);
        let seen = Some((latest.dir.clone(), latest.fingerprint));
        let (served, refused) = {
            let mut watched = self.watched();
            let model = watched.models.entry(name.to_owned()).or_default();
            // Forget refusals of versions that are gone.
            model
                .refused
                .retain(|dir, _| found.versions.iter().any(|v| &v.dir == dir));
            let refused = model
                .refused
                .get(&latest.dir)
                .is_some_and(|(f, _)| *f == latest.fingerprint);
            (model.served == seen, refused)
        };
        self.show(dir, &found, (!served && !refused).then_some(&latest.dir));
        if served {
            return Ok(None);
        }
        if refused {
            anyhow::bail!("{} was refused", latest.dir.display());
        }
        let (settings, workers, version_dir) =
            (self.settings.clone(), self.workers, latest.dir.clone());
        let started = std::time::Instant::now();
        let expected = name.to_owned();
        let loaded = tokio::task::spawn_blocking(move || {
            let model = load_bundle(&settings, &version_dir, workers)?;
            // Its manifest was rewritten since the look at the folder: not this model any more.
            if model.manifest.name() != expected {
                anyhow::bail!(
                    "{}/model.json now names model {:?}, not {expected:?}",
                    version_dir.display(),
                    model.manifest.name()
                );
            }
            Ok(model)
        })
        .await?;
        let model = match loaded {
            Ok(model) => model,
            Err(e) => {
                self.state.metrics.count_load(name, LoadOutcome::Failed);
                tracing::error!(
                    model = %name,
                    model_version = %latest.version,
                    bundle_dir = %latest.dir.display(),
                    error.message = %format!("{e:#}"),
                    "model version refused; the version already serving keeps serving"
                );
                self.watched()
                    .models
                    .entry(name.to_owned())
                    .or_default()
                    .refused
                    .insert(latest.dir.clone(), (latest.fingerprint, format!("{e:#}")));
                self.show(dir, &found, None);
                return Err(e);
            }
        };
        let (ort_version, ort_build) = loader::runtime_description(&self.settings);
        let (version, sessions) = (model.manifest.version().to_string(), model.sessions());
        // Published before it is logged: whoever reads "model loaded" can predict at once.
        let replaced = self.state.publish(model);
        self.state.metrics.count_load(name, LoadOutcome::Loaded);
        self.watched()
            .models
            .entry(name.to_owned())
            .or_default()
            .served = seen;
        self.show(dir, &found, None);
        tracing::info!(
            model = %name,
            model_version = %version,
            replaced_version = replaced.as_ref().map(|r| r.model.manifest.version()),
            sessions,
            load_seconds = started.elapsed().as_secs_f64(),
            onnxruntime_version = %ort_version,
            onnxruntime_build = %ort_build,
            bundle_dir = %latest.dir.display(),
            "model loaded"
        );
        Ok(Some(version))
    }

    /// Updates `GET /models` from a scan of a model's folder; `loading` is the version being
    /// loaded.
    fn show(&self, dir: &Path, found: &ModelVersions, loading: Option<&PathBuf>) {
        let watched = self.watched();
        let model = watched.models.get(&found.model);
        let view = ModelView::new(dir, found, |v| {
            let at = Some((v.dir.clone(), v.fingerprint));
            match model.and_then(|m| m.refused.get(&v.dir)) {
                Some((f, why)) if *f == v.fingerprint => (VersionState::Failed, Some(why.clone())),
                _ if model.is_some_and(|m| m.served == at) => (VersionState::Ready, None),
                _ if loading == Some(&v.dir) => (VersionState::Loading, None),
                _ => (VersionState::Available, None),
            }
        });
        drop(watched);
        self.state.set_model_view(view);
    }

    /// Logs a model folder's problems when they differ from those logged last.
    fn report(&self, name: &str, dir: &Path, problems: Vec<String>) {
        let mut watched = self.watched();
        let model = watched.models.entry(name.to_owned()).or_default();
        if model.reported != problems {
            for problem in &problems {
                tracing::error!(
                    model = %name,
                    model_dir = %dir.display(),
                    error.message = %problem,
                    "model version unusable"
                );
            }
            model.reported = problems;
        }
    }

    /// Logs the repository's own problem when it differs from the one logged last.
    fn report_repository(&self, problems: Vec<String>) {
        let mut watched = self.watched();
        if watched.reported != problems {
            for problem in &problems {
                tracing::error!(
                    repository = %self.settings.repository.display(),
                    error.message = %problem,
                    "model repository entry unusable; the models serving keep serving"
                );
            }
            watched.reported = problems;
        }
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes an already loaded model (tests publish models with fake engines).
    pub fn publish(&self, model: crate::model::LoadedModel) {
        self.state.publish(model);
    }
}
