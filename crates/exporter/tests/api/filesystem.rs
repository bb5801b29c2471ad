use crate::helpers::{copy_of_bundled_model, spawn_app, spawn_app_with};
use exporter::configuration::MountPoint;
use std::path::Path;

fn statvfs(path: &Path) -> (f64, f64) {
    let s = rustix::fs::statvfs(path).expect("statvfs");
    (
        (s.f_blocks * s.f_frsize) as f64,
        (s.f_bavail * s.f_frsize) as f64,
    )
}

fn assert_within_one_percent(what: &str, exported: f64, expected: f64) {
    assert!(
        (exported - expected).abs() <= expected * 0.01,
        "{what}: exported {exported}, statvfs {expected}"
    );
}

#[tokio::test]
async fn root_filesystem_agrees_with_statvfs() {
    let app = spawn_app().await;

    let scrape = app.scrape().await;
    let (size, avail) = statvfs(Path::new("/"));

    assert_eq!(scrape.collector_success("filesystem"), 1.0);
    let root = [("mountpoint", "/")];
    assert_within_one_percent(
        "size",
        scrape.get("system_filesystem_size_bytes", &root),
        size,
    );
    assert_within_one_percent(
        "avail",
        scrape.get("system_filesystem_avail_bytes", &root),
        avail,
    );
}

/// A container watching the host root mounts it at /host/root and labels it `/`.
#[tokio::test]
async fn a_mount_point_can_be_reported_under_another_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let watched = dir.path().to_path_buf();
    let app = spawn_app_with(|s| {
        s.collectors.mountpoints = vec![MountPoint {
            path: watched,
            label: "/".into(),
        }];
    })
    .await;

    let scrape = app.scrape().await;
    let (size, _) = statvfs(dir.path());

    assert_within_one_percent(
        "size",
        scrape.get("system_filesystem_size_bytes", &[("mountpoint", "/")]),
        size,
    );
}

/// The model bundle's filesystem is the same as `/` here, so it must not be reported twice.
#[tokio::test]
async fn never_one_series_per_pseudo_filesystem_nor_duplicates() {
    let bundle = copy_of_bundled_model();
    let bundle_dir = bundle.path().to_path_buf();
    let app = spawn_app_with(|s| {
        s.collectors.model_bundles = vec![bundle_dir];
    })
    .await;

    let scrape = app.scrape().await;

    let same_device = {
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| std::fs::metadata(p).expect("stat").dev();
        dev(Path::new("/")) == dev(bundle.path())
    };
    let expected = if same_device { 1 } else { 2 };
    assert_eq!(scrape.count("system_filesystem_size_bytes"), expected);
    assert_eq!(scrape.count("system_filesystem_avail_bytes"), expected);
}
