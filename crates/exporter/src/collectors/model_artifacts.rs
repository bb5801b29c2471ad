//! `model_artifacts`: when each file of each model's bundles was last modified, how large it is,
//! and what the manifests (`model.json`) say about the model. Each configured folder is a model
//! folder (`model_bundle::repository`), and so is every folder of each configured repository,
//! listed again at every scrape. Every version of every model is reported (`model_version_*`);
//! the newest one, which the API serves, also as the model's own series (`model_*{model}`), the
//! ones the rules and ModelStale read. Read at scrape time (a few `stat` calls and small JSON
//! files per version), so a replaced file or a new version shows at the next scrape.
//!
//! A version that cannot be read completely exports nothing at all: no stale and no partial
//! values. It is an error of the collector; the others are still reported, and the newest
//! readable one is the served one.

use super::{
    CollectError, Collector, CollectorName, Labels, ModelArtifactLabels, ModelInfoLabels,
    ModelLabels, Samples, VersionArtifactLabels,
};
use model_bundle::repository::{VersionDir, model_folders, model_versions};
use prometheus_client::registry::Unit;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) struct ModelArtifactsCollector {
    /// Repositories: each of their folders is a model folder, listed at every scrape.
    repositories: Vec<PathBuf>,
    /// Model folders outside any repository.
    bundles: Vec<PathBuf>,
    max_file_bytes: u64,
}

impl ModelArtifactsCollector {
    /// `max_file_bytes`: the largest manifest it reads (`collectors.max_file_bytes`).
    pub(crate) fn new(bundles: Vec<PathBuf>, max_file_bytes: u64) -> Self {
        Self {
            repositories: Vec::new(),
            bundles,
            max_file_bytes,
        }
    }

    /// Also reports every model folder of these repositories.
    pub(crate) fn with_repositories(self, repositories: Vec<PathBuf>) -> Self {
        Self {
            repositories,
            ..self
        }
    }
}

/// Seconds since the Unix epoch, with sub-second precision (negative before 1970).
fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// One regular file of a version's folder.
struct BundleFile {
    name: String,
    size: u64,
    /// Modification time, in seconds since the Unix epoch.
    modified: f64,
}

/// The regular files of a version's folder, sorted by name, all or none. Hidden files (editors'
/// swap files, half-written temporary copies) and sub-folders (newer versions) are skipped.
fn bundle_files(dir: &Path) -> Result<Vec<BundleFile>, String> {
    let mut files = Vec::new();
    let listing =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in listing {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // `metadata` follows symlinks, so a bundle of links (Kubernetes ConfigMaps) works.
        let meta = std::fs::metadata(entry.path())
            .map_err(|e| format!("cannot stat {}: {e}", entry.path().display()))?;
        if meta.is_file() {
            let modified = meta
                .modified()
                .map_err(|e| format!("no modification time for {}: {e}", entry.path().display()))?;
            files.push(BundleFile {
                name,
                size: meta.len(),
                modified: unix_seconds(modified),
            });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The (name, help) of a family.
type FamilyName = (&'static str, &'static str);

/// Each file's modification time (family `modified`) and size (family `size`), labelled by
/// `labels` from the file's name.
fn file_samples<L: Into<Labels>>(
    out: &mut Samples,
    files: &[BundleFile],
    (modified, size): (FamilyName, FamilyName),
    labels: impl Fn(&str) -> L,
) {
    for file in files {
        out.gauge(
            modified.0,
            modified.1,
            Some(Unit::Seconds),
            labels(&file.name),
            file.modified,
        );
    }
    for file in files {
        out.gauge(
            size.0,
            size.1,
            Some(Unit::Bytes),
            labels(&file.name),
            file.size as f64,
        );
    }
}

/// `model_version_*{model, version}`: what every version in the repository holds.
fn version_samples(version: &VersionDir, files: &[BundleFile]) -> Result<Samples, String> {
    let mut out = Samples::default();
    let (model, version_name) = (&version.identity.name, &version.version);
    let families = (
        (
            "model_version_artifact_modified_timestamp",
            "Last modification time of a file of each version of a model, in seconds since the Unix epoch",
        ),
        (
            "model_version_artifact_size",
            "Size of a file of each version of a model",
        ),
    );
    file_samples(&mut out, files, families, |artifact| {
        VersionArtifactLabels {
            model: model.clone(),
            version: version_name.clone(),
            artifact: artifact.to_owned(),
        }
    });
    out.gauge(
        "model_version_trained_timestamp",
        "When each version of a model was trained (manifest `trained_at`), in seconds since the Unix epoch",
        Some(Unit::Seconds),
        ModelInfoLabels {
            model: model.clone(),
            version: version_name.clone(),
        },
        version.identity.trained_at_unix()?,
    );
    Ok(out)
}

/// `model_*{model}`: the version the API serves (the newest), the one ModelStale judges.
fn served_samples(version: &VersionDir, files: &[BundleFile]) -> Result<Samples, String> {
    let mut out = Samples::default();
    let manifest = &version.identity;
    let model = &manifest.name;
    let families = (
        (
            "model_artifact_modified_timestamp",
            "Last modification time of a file of a model bundle, in seconds since the Unix epoch",
        ),
        ("model_artifact_size", "Size of a file of a model bundle"),
    );
    file_samples(&mut out, files, families, |artifact| ModelArtifactLabels {
        model: model.clone(),
        artifact: artifact.to_owned(),
    });
    out.gauge(
        "model_trained_timestamp",
        "When the model was trained (manifest `trained_at`), in seconds since the Unix epoch",
        Some(Unit::Seconds),
        ModelLabels {
            model: model.clone(),
        },
        manifest.trained_at_unix()?,
    );
    out.gauge(
        "model_max_age",
        "How old the model may get before ModelStale fires (manifest `max_age_days`, 30 days unless set)",
        Some(Unit::Seconds),
        ModelLabels {
            model: model.clone(),
        },
        manifest.max_age_seconds(),
    );
    out.info(
        "model",
        "The deployed model and its version (manifest `name`, `version`)",
        ModelInfoLabels {
            model: model.clone(),
            version: manifest.version.clone(),
        },
    );
    Ok(out)
}

impl Collector for ModelArtifactsCollector {
    fn name(&self) -> CollectorName {
        CollectorName::ModelArtifacts
    }

    fn collect(&self, out: &mut Samples) -> Result<(), CollectError> {
        let mut errors = Vec::new();
        let mut models: Vec<String> = Vec::new();
        let mut folders = Vec::new();
        for repository in &self.repositories {
            match model_folders(repository) {
                Ok((found, problems)) => {
                    folders.extend(found.into_iter().map(|(_, dir)| dir));
                    errors.extend(problems);
                }
                Err(e) => errors.push(e),
            }
        }
        folders.extend(self.bundles.iter().cloned());
        for dir in &folders {
            let found = match model_versions(dir, self.max_file_bytes) {
                Ok(found) => found,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            errors.extend(found.bad.iter().map(|b| b.reason.clone()));
            let Some(newest) = found.versions.first() else {
                if found.bad.is_empty() {
                    errors.push(format!(
                        "{}: no model version (no model.json in it or in a sub-folder)",
                        dir.display()
                    ));
                }
                continue;
            };
            // Every version of a folder names the same model (`model_versions`); two folders
            // must not.
            let model = &newest.identity.name;
            if models.contains(model) {
                errors.push(format!(
                    "{}: model name {model:?} is already used by another bundle",
                    newest.dir.join(model_bundle::MANIFEST_FILE).display(),
                ));
                continue;
            }
            models.push(model.clone());
            // Each version is reported completely or not at all: no stale or partial values.
            for (i, version) in found.versions.iter().enumerate() {
                let read = bundle_files(&version.dir).and_then(|files| {
                    let mut samples = if i == 0 {
                        served_samples(version, &files)?
                    } else {
                        Samples::default()
                    };
                    samples.append(version_samples(version, &files)?);
                    Ok(samples)
                });
                match read {
                    Ok(samples) => out.append(samples),
                    Err(e) => errors.push(e),
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CollectError::new(errors.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model_bundle::Identity;

    const MANIFEST_FIXTURE: &str = r#"{
        "format_version": 1,
        "name": "breast-cancer",
        "version": "1.0.0",
        "trained_at": "2026-11-21T00:00:00Z",
        "features": ["mean radius"]
    }"#;

    #[test]
    fn parses_the_manifest_fields_it_needs() {
        let m = Identity::parse(MANIFEST_FIXTURE).expect("valid manifest");
        assert_eq!(m.name, "breast-cancer");
        assert_eq!(m.version, "1.0.0");
        assert_eq!(m.trained_at_unix(), Ok(1_795_219_200.0));
    }

    fn model(name: &str) -> ModelLabels {
        ModelLabels { model: name.into() }
    }

    fn bundle(manifest: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("model.json"), manifest).expect("write");
        std::fs::write(dir.path().join("model.onnx"), b"0123456789").expect("write");
        std::fs::write(dir.path().join(".model.onnx.swp"), b"x").expect("write");
        std::fs::create_dir(dir.path().join("subdir")).expect("mkdir");
        dir
    }

    #[test]
    fn reports_each_regular_file_and_the_manifest() {
        let dir = bundle(MANIFEST_FIXTURE);
        let collector = ModelArtifactsCollector::new(vec![dir.path().to_path_buf()], 1 << 20);
        let mut out = Samples::default();
        collector.collect(&mut out).expect("readable bundle");
        let labels = |a: &str| ModelArtifactLabels {
            model: "breast-cancer".into(),
            artifact: a.into(),
        };
        assert_eq!(
            out.value("model_artifact_size", labels("model.onnx")),
            Some(10.0)
        );
        assert!(
            out.value("model_artifact_size", labels("model.json"))
                .is_some()
        );
        assert_eq!(
            out.families()[1].samples.len(),
            2,
            "hidden files and dirs skipped"
        );
        assert_eq!(
            out.value("model_trained_timestamp", model("breast-cancer")),
            Some(1_795_219_200.0)
        );
        let info = ModelInfoLabels {
            model: "breast-cancer".into(),
            version: "1.0.0".into(),
        };
        assert_eq!(out.value("model", info), Some(1.0));
    }

    #[test]
    fn a_broken_bundle_exports_nothing_and_the_good_one_everything() {
        let good = bundle(MANIFEST_FIXTURE);
        let broken = bundle(r#"{"name":"other","version":"1","trained_at":"never"}"#);
        let duplicate = bundle(MANIFEST_FIXTURE);
        let collector = ModelArtifactsCollector::new(
            vec![
                good.path().to_path_buf(),
                broken.path().to_path_buf(),
                duplicate.path().to_path_buf(),
            ],
            1 << 20,
        );
        let mut out = Samples::default();
        let err = collector.collect(&mut out).expect_err("broken bundle");
        assert!(
            err.0.contains("never") && err.0.contains("already used"),
            "{err}"
        );
        assert_eq!(out.value("model_trained_timestamp", model("other")), None);
        assert_eq!(out.families()[0].samples.len(), 2, "only the good bundle");
    }

    #[test]
    fn the_newest_version_of_a_model_folder_is_reported() {
        let dir = bundle(MANIFEST_FIXTURE);
        let newer = dir.path().join("1.0.1");
        std::fs::create_dir(&newer).expect("mkdir");
        let manifest = MANIFEST_FIXTURE
            .replace("1.0.0", "1.0.1")
            .replace("2026-11-21", "2026-12-01");
        std::fs::write(newer.join("model.json"), manifest).expect("write");
        std::fs::write(newer.join("model.onnx"), b"01234").expect("write");
        let collector = ModelArtifactsCollector::new(vec![dir.path().to_path_buf()], 1 << 20);
        let mut out = Samples::default();
        collector.collect(&mut out).expect("readable versions");
        assert_eq!(
            out.value("model_trained_timestamp", model("breast-cancer")),
            Some(1_795_219_200.0 + 10.0 * 86_400.0)
        );
        let info = |version: &str| ModelInfoLabels {
            model: "breast-cancer".into(),
            version: version.into(),
        };
        assert_eq!(out.value("model", info("1.0.1")), Some(1.0));
        assert_eq!(out.value("model", info("1.0.0")), None);
        let onnx = ModelArtifactLabels {
            model: "breast-cancer".into(),
            artifact: "model.onnx".into(),
        };
        assert_eq!(out.value("model_artifact_size", onnx), Some(5.0));

        // Every version, each with its own files and training time.
        let version_onnx = |version: &str| VersionArtifactLabels {
            model: "breast-cancer".into(),
            version: version.into(),
            artifact: "model.onnx".into(),
        };
        assert_eq!(
            out.value("model_version_artifact_size", version_onnx("1.0.0")),
            Some(10.0)
        );
        assert_eq!(
            out.value("model_version_artifact_size", version_onnx("1.0.1")),
            Some(5.0)
        );
        assert_eq!(
            out.value("model_version_trained_timestamp", info("1.0.0")),
            Some(1_795_219_200.0)
        );
        assert_eq!(
            out.value("model_version_trained_timestamp", info("1.0.1")),
            Some(1_795_219_200.0 + 10.0 * 86_400.0)
        );
        let older_files: Vec<_> = out
            .families()
            .iter()
            .find(|f| f.name == "model_version_artifact_modified_timestamp")
            .expect("family")
            .samples
            .iter()
            .filter(|(l, _)| matches!(l, Labels::VersionArtifact(v) if v.version == "1.0.0"))
            .collect();
        assert_eq!(older_files.len(), 2, "1.0.0's files, not 1.0.1's folder");

        // A broken newer version: an error, and the newest readable one is still reported.
        let broken = dir.path().join("1.0.2");
        std::fs::create_dir(&broken).expect("mkdir");
        std::fs::write(broken.join("model.json"), "{").expect("write");
        let mut out = Samples::default();
        let err = collector.collect(&mut out).expect_err("a broken version");
        assert!(err.0.contains("1.0.2/model.json"), "{err}");
        assert_eq!(out.value("model", info("1.0.1")), Some(1.0));
        assert_eq!(
            out.value("model_version_trained_timestamp", info("1.0.0")),
            Some(1_795_219_200.0)
        );
        assert_eq!(
            out.value("model_version_trained_timestamp", info("1.0.2")),
            None
        );
    }

    #[test]
    fn a_manifest_over_the_limit_or_not_a_regular_file_is_refused_unread() {
        let big = bundle(MANIFEST_FIXTURE);
        let mut out = Samples::default();
        let err = ModelArtifactsCollector::new(vec![big.path().to_path_buf()], 16)
            .collect(&mut out)
            .expect_err("over the limit");
        assert!(err.0.contains("over the limit of 16"), "{err}");

        // A manifest that is a link to /dev/zero (never ends) or a FIFO (blocks on open).
        let zero = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/dev/zero", zero.path().join(model_bundle::MANIFEST_FILE))
            .expect("symlink");
        let fifo = tempfile::tempdir().expect("tempdir");
        let made = std::process::Command::new("mkfifo")
            .arg(fifo.path().join(model_bundle::MANIFEST_FILE))
            .status()
            .expect("mkfifo");
        assert!(made.success());
        for dir in [&zero, &fifo] {
            let started = std::time::Instant::now();
            let err = ModelArtifactsCollector::new(vec![dir.path().to_path_buf()], 1 << 20)
                .collect(&mut out)
                .expect_err("not a regular file");
            assert!(err.0.contains("not a regular file"), "{err}");
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
        }
        assert!(out.families().is_empty(), "{out:?}");
    }
}
