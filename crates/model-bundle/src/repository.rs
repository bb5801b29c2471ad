//! A model's folder and its versions, as the API serves them and the exporter reports them.
//!
//! A repository holds one folder per model, named after it ([`model_folders`]). A model folder
//! holds its versions. A version is a bundle (`model.json`, `model.onnx`,
//! `samples.csv`): either the model folder itself (the layout of a single bundle, e.g.
//! `models/breast-cancer/model.json`) or one of its sub-folders named after the version its
//! manifest declares (`models/breast-cancer/1.0.1/model.json`). The newest version, by
//! [`compare_versions`], is the one served.
//!
//! A sub-folder without a `model.json` is not a version (yet). Each version is read on its own: one that cannot be read, or whose manifest disagrees with
//! its place (another model's name, a folder named after another version), is reported with its
//! reason and the others stay usable.

use crate::manifest::Identity;
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One version of a model, found in its folder.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionDir {
    /// The manifest's `version`.
    pub version: String,
    /// The bundle's folder.
    pub dir: PathBuf,
    pub identity: Identity,
    /// The sha256 of `model.onnx` the manifest declares (checked when the version is loaded).
    pub sha256: Option<String>,
    /// The manifest's and the model file's size and modification time, to notice a change.
    pub fingerprint: Fingerprint,
}

/// A folder that looked like a version but cannot be one, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct BadVersion {
    pub dir: PathBuf,
    pub reason: String,
}

/// What a model folder holds: its readable versions, newest first, and the rest with reasons.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelVersions {
    /// The model's name.
    pub model: String,
    pub versions: Vec<VersionDir>,
    pub bad: Vec<BadVersion>,
}

impl ModelVersions {
    /// The version to serve: the newest readable one.
    pub fn latest(&self) -> Option<&VersionDir> {
        self.versions.first()
    }
}

/// Size and modification time of a bundle's `model.json` and `model.onnx` (`None` if absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint([Option<(u64, SystemTime)>; 2]);

impl Fingerprint {
    fn of(dir: &Path) -> Self {
        let stat = |file: &str| {
            std::fs::metadata(dir.join(file))
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        };
        Self([stat(crate::MANIFEST_FILE), stat(crate::MODEL_FILE)])
    }
}

/// Lists the versions of the model in `model_dir`. Fails only when the folder itself cannot be
/// listed. The model's name, which every version's manifest must carry, is the name in the
/// folder's own manifest when the folder is itself a bundle, else the folder's name.
/// `max_manifest_bytes`: the largest `model.json` it reads.
pub fn model_versions(model_dir: &Path, max_manifest_bytes: u64) -> Result<ModelVersions, String> {
    let listing = std::fs::read_dir(model_dir)
        .map_err(|e| format!("cannot list model folder {}: {e}", model_dir.display()))?;
    let mut found = ModelVersions::default();
    // (folder, the name it must carry): the model folder itself, then its sub-folders.
    let mut candidates: Vec<(PathBuf, Option<String>)> = Vec::new();
    if model_dir.join(crate::MANIFEST_FILE).exists() {
        candidates.push((model_dir.to_path_buf(), None));
    }
    let mut entries: Vec<_> = listing.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue; // hidden: a version being written before it is renamed into place
        }
        let path = entry.path();
        // `metadata` follows symlinks: a linked version works, a symlink loop is an error.
        match std::fs::metadata(&path) {
            // A version folder: one with a manifest (one still without is not a version yet).
            Ok(meta) if meta.is_dir() => {
                if std::fs::symlink_metadata(path.join(crate::MANIFEST_FILE)).is_ok() {
                    candidates.push((path, Some(name)));
                }
            }
            Ok(_) => {} // the bundle's own files
            Err(e) => found.bad.push(BadVersion {
                reason: format!("cannot read {}: {e}", path.display()),
                dir: path,
            }),
        }
    }
    let own = candidates
        .first()
        .filter(|(_, folder)| folder.is_none())
        .and_then(|(dir, _)| {
            read_small_file(&dir.join(crate::MANIFEST_FILE), max_manifest_bytes).ok()
        })
        .and_then(|text| Identity::parse(&text).ok());
    found.model = match own {
        Some(identity) => identity.name,
        None => model_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned(),
    };
    for (dir, folder) in candidates {
        match read_version(&dir, &found.model, folder.as_deref(), max_manifest_bytes) {
            Ok(v) => found.versions.push(v),
            Err(reason) => found.bad.push(BadVersion { dir, reason }),
        }
    }
    found
        .versions
        .sort_by(|a, b| compare_versions(&b.version, &a.version));
    let mut seen: Vec<&str> = Vec::new();
    let mut duplicates = Vec::new();
    for (i, v) in found.versions.iter().enumerate() {
        if seen.contains(&v.version.as_str()) {
            duplicates.push(i);
        }
        seen.push(&v.version);
    }
    for i in duplicates.into_iter().rev() {
        let v = found.versions.remove(i);
        found.bad.push(BadVersion {
            reason: format!(
                "{}: version {:?} is already in {}",
                v.dir.join(crate::MANIFEST_FILE).display(),
                v.version,
                model_dir.display()
            ),
            dir: v.dir,
        });
    }
    Ok(found)
}

/// Reads one version's manifest and checks it belongs where it is.
fn read_version(
    dir: &Path,
    model: &str,
    folder: Option<&str>,
    max_manifest_bytes: u64,
) -> Result<VersionDir, String> {
    let manifest = dir.join(crate::MANIFEST_FILE);
    let text = read_small_file(&manifest, max_manifest_bytes)?;
    let identity = Identity::parse(&text).map_err(|e| format!("{}: {e}", manifest.display()))?;
    if identity.name != model {
        return Err(format!(
            "{}: names model {:?}, but it is in the folder of model {model:?}",
            manifest.display(),
            identity.name
        ));
    }
    if let Some(folder) = folder
        && folder != identity.version
    {
        return Err(format!(
            "{}: says version {:?}, but its folder is named {folder:?} (name it after the version)",
            manifest.display(),
            identity.version
        ));
    }
    #[derive(serde::Deserialize)]
    struct Declared {
        sha256: String,
    }
    #[derive(serde::Deserialize)]
    struct Artifacts {
        #[serde(default)]
        artifacts: std::collections::BTreeMap<String, Declared>,
    }
    let sha256 = serde_json::from_str::<Artifacts>(&text)
        .ok()
        .and_then(|a| a.artifacts.get(crate::MODEL_FILE).map(|d| d.sha256.clone()));
    Ok(VersionDir {
        sha256,
        version: identity.version.clone(),
        dir: dir.to_path_buf(),
        fingerprint: Fingerprint::of(dir),
        identity,
    })
}

/// The model folders of a repository (every sub-folder not hidden, by name), and the entries
/// that cannot be read (a symlink loop) with the reason.
pub type Folders = (Vec<(String, PathBuf)>, Vec<String>);

pub fn model_folders(repository: &Path) -> Result<Folders, String> {
    let listing = std::fs::read_dir(repository).map_err(|e| {
        format!(
            "cannot list the model repository {}: {e}",
            repository.display()
        )
    })?;
    let (mut folders, mut problems) = (Vec::new(), Vec::new());
    for entry in listing.filter_map(Result::ok) {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // `metadata` follows symlinks: a linked model folder works, a symlink loop is an error.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => folders.push((name, path)),
            Ok(_) => {}
            Err(e) => problems.push(format!("cannot read {}: {e}", path.display())),
        }
    }
    folders.sort();
    problems.sort();
    Ok((folders, problems))
}

/// Orders version strings as people number them: parts separated by `.`, `-` or `_`, numeric
/// parts by value (`1.0.10` after `1.0.9`), other parts as text and before numbers; a version
/// that is the start of another comes first (`1.0` before `1.0.0`, `1.0.9` before `1.0.9-rc1`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parts = |s: &str| -> Vec<String> {
        s.split(['.', '-', '_'])
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Greater,
            (Err(_), Ok(_)) => Ordering::Less,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    pa.len().cmp(&pb.len()).then_with(|| a.cmp(b))
}

/// Reads a small text file: a regular file of at most `max` bytes, else an error. Never opens
/// anything else (a FIFO would block, `/dev/zero` would never end) and never reads past `max`.
pub fn read_small_file(path: &Path, max: u64) -> Result<String, String> {
    let bytes = read_bounded(path, max, &format!("the limit of {max} bytes"))?;
    String::from_utf8(bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Reads a regular file of at most `max` bytes, else an error naming `limit` (the setting the
/// bound comes from). Never opens anything but a regular file, never reads past `max`.
pub fn read_bounded(path: &Path, max: u64, limit: &str) -> Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > max {
        return Err(format!(
            "{} is {} bytes, over {limit}",
            path.display(),
            meta.len()
        ));
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, max + 1), &mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{} grew past {limit} while being read",
            path.display()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str, version: &str) -> String {
        format!(
            r#"{{"name": "{name}", "version": "{version}", "trained_at": "2026-11-21T00:00:00Z"}}"#
        )
    }

    fn write(dir: &Path, text: &str) {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join("model.json"), text).expect("write");
    }

    #[test]
    fn versions_sort_numerically_part_by_part() {
        let mut v = vec![
            "1.0.10",
            "1.0.9",
            "2",
            "1.0.0",
            "1.0",
            "1.0.9-rc1",
            "10.0.0",
        ];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            vec![
                "1.0",
                "1.0.0",
                "1.0.9",
                "1.0.9-rc1",
                "1.0.10",
                "2",
                "10.0.0"
            ]
        );
    }

    #[test]
    fn the_folder_itself_and_its_version_folders_are_versions_newest_first() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        write(&root, &manifest("m", "1.0.0"));
        write(&root.join("1.0.10"), &manifest("m", "1.0.10"));
        write(&root.join("1.0.9"), &manifest("m", "1.0.9"));
        write(&root.join(".1.0.11.tmp"), &manifest("m", "1.0.11"));
        let found = model_versions(&root, 4096).expect("listed");
        let names: Vec<&str> = found.versions.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(names, vec!["1.0.10", "1.0.9", "1.0.0"]);
        assert_eq!(
            found.latest().map(|v| v.dir.clone()),
            Some(root.join("1.0.10"))
        );
        assert!(found.bad.is_empty(), "{:?}", found.bad);
    }

    #[test]
    fn misplaced_or_unreadable_versions_are_reported_and_the_rest_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("m"); // no bundle of its own: the folder's name is the model's
        write(&root.join("1.0.0"), &manifest("m", "1.0.0"));
        write(&root.join("2.0.0"), &manifest("other", "2.0.0"));
        write(&root.join("3.0.0"), &manifest("m", "3.0.1"));
        write(&root.join("4.0.0"), "{not json");
        std::fs::create_dir_all(root.join("5.0.0")).expect("mkdir");
        write(&root.join("big"), &"x".repeat(5000));
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join("loop"), root.join("loop")).expect("symlink");
        let found = model_versions(&root, 4096).expect("listed");
        assert_eq!(found.model, "m");
        assert_eq!(found.versions.len(), 1);
        assert_eq!(found.versions[0].version, "1.0.0");
        let reasons: Vec<&str> = found.bad.iter().map(|b| b.reason.as_str()).collect();
        let has = |needle: &str| reasons.iter().any(|r| r.contains(needle));
        assert!(has("names model \"other\""), "{reasons:?}");
        assert!(has("its folder is named \"3.0.0\""), "{reasons:?}");
        assert!(has("4.0.0/model.json"), "{reasons:?}");
        assert!(
            !has("5.0.0"),
            "a folder without a manifest is no version: {reasons:?}"
        );
        assert!(has("over the limit of 4096"), "{reasons:?}");
        #[cfg(unix)]
        assert!(has("symbolic links"), "{reasons:?}");
    }

    #[test]
    fn a_repository_lists_its_model_folders_and_the_entries_it_cannot_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        for dir in ["wine", "breast-cancer", ".incoming"] {
            std::fs::create_dir(root.join(dir)).expect("mkdir");
        }
        std::fs::write(root.join("README"), "not a model").expect("write");
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join("loop"), root.join("loop")).expect("symlink");
        let (folders, problems) = model_folders(root).expect("listed");
        let names: Vec<&str> = folders.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["breast-cancer", "wine"]);
        assert_eq!(folders[1].1, root.join("wine"));
        #[cfg(unix)]
        assert!(
            problems.len() == 1
                && problems[0].contains("loop")
                && problems[0].contains("symbolic links"),
            "{problems:?}"
        );
        let e = model_folders(&root.join("missing")).expect_err("no repository");
        assert!(e.starts_with("cannot list the model repository"), "{e}");
    }

    #[test]
    fn a_missing_folder_is_one_error() {
        let e = model_versions(Path::new("/nonexistent/models/m"), 4096).expect_err("no folder");
        assert!(
            e.contains("cannot list model folder /nonexistent/models/m"),
            "{e}"
        );
    }
}
