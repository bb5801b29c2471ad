use crate::helpers::{bundled_model, copy_of_bundled_model, spawn_app, spawn_app_with};
use filetime::FileTime;

#[tokio::test]
async fn the_bundled_model_is_reported_from_its_manifest() {
    let app = spawn_app().await;

    let scrape = app.scrape().await;

    assert_eq!(scrape.collector_success("model_artifacts"), 1.0);
    let model = [("model", "breast-cancer")];
    // trained_at "2026-11-21T00:00:00Z" in models/breast-cancer/model.json
    assert_eq!(
        scrape.get("model_trained_timestamp_seconds", &model),
        1_795_219_200.0
    );
    // No max_age_days in the bundled manifest: 30 days.
    assert_eq!(scrape.get("model_max_age_seconds", &model), 2_592_000.0);
    assert_eq!(
        scrape.get(
            "model_info",
            &[("model", "breast-cancer"), ("version", "1.0.0")]
        ),
        1.0
    );
    let onnx = [("model", "breast-cancer"), ("artifact", "model.onnx")];
    let size = std::fs::metadata(crate::helpers::bundled_model().join("model.onnx"))
        .expect("model.onnx")
        .len();
    assert_eq!(scrape.get("model_artifact_size_bytes", &onnx), size as f64);
    let files = std::fs::read_dir(crate::helpers::bundled_model())
        .expect("bundle")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file() && !e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(
        scrape.count("model_artifact_modified_timestamp_seconds"),
        files
    );
}

#[tokio::test]
async fn touching_a_file_moves_its_timestamp_to_exactly_that_time() {
    let bundle = copy_of_bundled_model();
    let dir = bundle.path().to_path_buf();
    let app = spawn_app_with(|s| s.collectors.model_bundles = vec![dir]).await;
    let onnx = [("model", "breast-cancer"), ("artifact", "model.onnx")];
    let before = app
        .scrape()
        .await
        .get("model_artifact_modified_timestamp_seconds", &onnx);

    let when = FileTime::from_unix_time(1_700_000_000, 250_000_000);
    filetime::set_file_mtime(bundle.path().join("model.onnx"), when).expect("set mtime");
    let after = app.scrape().await;

    assert_ne!(before, 1_700_000_000.25);
    assert_eq!(
        after.get("model_artifact_modified_timestamp_seconds", &onnx),
        1_700_000_000.25
    );
}

#[tokio::test]
async fn a_replaced_file_shows_at_the_next_scrape() {
    let bundle = copy_of_bundled_model();
    let dir = bundle.path().to_path_buf();
    let app = spawn_app_with(|s| s.collectors.model_bundles = vec![dir]).await;
    let csv = [("model", "breast-cancer"), ("artifact", "samples.csv")];
    assert!(app.scrape().await.get("model_artifact_size_bytes", &csv) > 1000.0);

    let staged = bundle.path().join(".samples.csv.new");
    std::fs::write(&staged, "a,b\n1,2\n").expect("write");
    std::fs::rename(&staged, bundle.path().join("samples.csv")).expect("rename");
    let scrape = app.scrape().await;

    assert_eq!(scrape.get("model_artifact_size_bytes", &csv), 8.0);
}

#[tokio::test]
async fn a_manifests_max_age_days_is_exported_from_the_next_scrape_on() {
    let bundle = copy_of_bundled_model();
    let dir = bundle.path().to_path_buf();
    let app = spawn_app_with(|s| s.collectors.model_bundles = vec![dir]).await;
    let model = [("model", "breast-cancer")];
    assert_eq!(
        app.scrape().await.get("model_max_age_seconds", &model),
        2_592_000.0
    );

    let path = bundle.path().join("model.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("manifest")).expect("json");
    manifest["max_age_days"] = serde_json::json!(7);
    std::fs::write(&path, manifest.to_string()).expect("write");
    let scrape = app.scrape().await;

    assert_eq!(scrape.get("model_max_age_seconds", &model), 604_800.0);
    assert_eq!(scrape.collector_success("model_artifacts"), 1.0);

    manifest["max_age_days"] = serde_json::json!(0);
    std::fs::write(&path, manifest.to_string()).expect("write");
    let scrape = app.scrape().await;

    assert_eq!(scrape.collector_success("model_artifacts"), 0.0);
    assert_eq!(scrape.count("model_max_age_seconds"), 0);
}

#[tokio::test]
async fn deleting_the_bundle_fails_only_this_collector_and_drops_its_series() {
    let bundle = copy_of_bundled_model();
    let dir = bundle.path().to_path_buf();
    let app = spawn_app_with(|s| s.collectors.model_bundles = vec![dir]).await;
    assert_eq!(app.scrape().await.collector_success("model_artifacts"), 1.0);

    bundle.close().expect("bundle deleted");
    let scrape = app.scrape().await;

    assert_eq!(scrape.collector_success("model_artifacts"), 0.0);
    for name in [
        "model_artifact_modified_timestamp_seconds",
        "model_artifact_size_bytes",
        "model_trained_timestamp_seconds",
        "model_max_age_seconds",
        "model_info",
    ] {
        assert_eq!(scrape.count(name), 0, "{name} should be gone");
    }
    for collector in ["memory", "filesystem", "cpu"] {
        assert_eq!(scrape.collector_success(collector), 1.0, "{collector}");
    }
    assert!(scrape.get("system_memory_total_bytes", &[]) > 0.0);
    assert!(scrape.get("system_filesystem_size_bytes", &[("mountpoint", "/")]) > 0.0);
    assert!(scrape.get("system_load1", &[]) >= 0.0);
}

#[tokio::test]
async fn an_unreadable_manifest_exports_nothing_stale() {
    let bundle = copy_of_bundled_model();
    let dir = bundle.path().to_path_buf();
    let app = spawn_app_with(|s| s.collectors.model_bundles = vec![dir]).await;
    assert_eq!(app.scrape().await.count("model_artifact_size_bytes"), 3);

    std::fs::write(bundle.path().join("model.json"), "{ not json").expect("write");
    let scrape = app.scrape().await;

    assert_eq!(scrape.collector_success("model_artifacts"), 0.0);
    assert_eq!(scrape.count("model_artifact_size_bytes"), 0);
    assert_eq!(scrape.count("model_info"), 0);
}

/// A `model.json` that is a FIFO (blocks whoever opens it), a link to `/dev/zero` (never ends)
/// or 100 MB: the model_artifacts collector fails at once without reading it, the other
/// collectors and `/health` keep answering, also under 50 concurrent scrapes.
#[tokio::test]
async fn hostile_manifests_fail_their_collector_and_nothing_else() {
    let fifo = |p: &std::path::Path| {
        let made = std::process::Command::new("mkfifo").arg(p).status();
        assert!(made.expect("mkfifo").success());
    };
    let dev_zero = |p: &std::path::Path| std::os::unix::fs::symlink("/dev/zero", p).expect("link");
    let huge = |p: &std::path::Path| {
        let f = std::fs::File::create(p).expect("create");
        f.set_len(100 * 1024 * 1024).expect("100 MB");
    };
    type Make<'a> = &'a dyn Fn(&std::path::Path);
    let makers: [(&str, Make); 3] = [("fifo", &fifo), ("/dev/zero", &dev_zero), ("100 MB", &huge)];
    for (what, make) in makers {
        let bundle = copy_of_bundled_model();
        let manifest = bundle.path().join("model.json");
        std::fs::remove_file(&manifest).expect("rm model.json");
        make(&manifest);
        let app = spawn_app_with(|s| s.collectors.model_bundles = vec![bundle.path().into()]).await;

        let started = std::time::Instant::now();
        let scrapes = futures_util::future::join_all((0..50).map(|_| app.scrape())).await;
        let scraped = started.elapsed();
        let started = std::time::Instant::now();
        let health = app.get("/health").await;
        let health_took = started.elapsed();

        assert!(
            scraped < std::time::Duration::from_secs(5),
            "{what}: 50 scrapes took {scraped:?}"
        );
        assert_eq!(health.status().as_u16(), 200, "{what}");
        assert!(
            health_took < std::time::Duration::from_millis(100),
            "{what}: /health took {health_took:?}"
        );
        for scrape in &scrapes {
            assert_eq!(scrape.collector_success("model_artifacts"), 0.0, "{what}");
            for other in ["cpu", "memory", "filesystem"] {
                assert_eq!(scrape.collector_success(other), 1.0, "{what}: {other}");
            }
            assert_eq!(scrape.count("model_trained_timestamp_seconds"), 0, "{what}");
        }
    }
}

/// Copies the bundle in `from` into `to`.
fn copy_bundle(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for file in ["model.json", "model.onnx", "samples.csv"] {
        std::fs::copy(from.join(file), to.join(file)).expect("copy");
    }
}

#[tokio::test]
async fn every_model_of_a_repository_is_reported_and_added_or_removed_ones_show_at_once() {
    let repository = tempfile::tempdir().expect("tempdir");
    let root = repository.path().to_path_buf();
    copy_bundle(&bundled_model(), &root.join("breast-cancer"));
    let models = root.clone();
    let app = spawn_app_with(move |s| {
        s.collectors.model_bundles = Vec::new();
        s.collectors.model_repositories = vec![models];
    })
    .await;
    let scrape = app.scrape().await;
    assert_eq!(scrape.collector_success("model_artifacts"), 1.0);
    assert_eq!(scrape.count("model_info"), 1);

    // A second model, written the safe way (hidden, then renamed), shows at the next scrape.
    let wine = bundled_model().join("../wine");
    copy_bundle(&wine, &root.join(".wine.tmp"));
    assert_eq!(app.scrape().await.count("model_info"), 1, "hidden: not yet");
    std::fs::rename(root.join(".wine.tmp"), root.join("wine")).expect("rename");
    let scrape = app.scrape().await;
    assert_eq!(scrape.collector_success("model_artifacts"), 1.0);
    assert_eq!(scrape.count("model_info"), 2);
    assert_eq!(
        scrape.get("model_info", &[("model", "wine"), ("version", "1.0.0")]),
        1.0
    );
    assert!(scrape.get("model_max_age_seconds", &[("model", "wine")]) > 0.0);

    // A new version of wine: both versions are reported, the new one as the one served.
    let newer = root.join("wine").join("1.0.1");
    copy_bundle(&wine, &newer);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(newer.join("model.json")).expect("read"))
            .expect("json");
    manifest["version"] = "1.0.1".into();
    manifest["trained_at"] = "2026-12-01T00:00:00Z".into();
    std::fs::write(newer.join("model.json"), manifest.to_string()).expect("write");
    let scrape = app.scrape().await;
    assert_eq!(scrape.collector_success("model_artifacts"), 1.0);
    assert_eq!(scrape.count("model_info"), 2);
    assert_eq!(
        scrape.get("model_info", &[("model", "wine"), ("version", "1.0.1")]),
        1.0
    );
    assert_eq!(
        scrape.get("model_trained_timestamp_seconds", &[("model", "wine")]),
        1_796_083_200.0
    );
    assert_eq!(scrape.count("model_version_trained_timestamp_seconds"), 3);
    let onnx_bytes = std::fs::metadata(wine.join("model.onnx"))
        .expect("stat")
        .len() as f64;
    for version in ["1.0.0", "1.0.1"] {
        let labels = [("model", "wine"), ("version", version)];
        assert!(scrape.get("model_version_trained_timestamp_seconds", &labels) > 0.0);
        let onnx = [labels[0], labels[1], ("artifact", "model.onnx")];
        assert_eq!(
            scrape.get("model_version_artifact_size_bytes", &onnx),
            onnx_bytes
        );
    }

    // Removed: its series go, and nothing fails.
    std::fs::remove_dir_all(root.join("wine")).expect("remove");
    let scrape = app.scrape().await;
    assert_eq!(scrape.collector_success("model_artifacts"), 1.0);
    assert_eq!(scrape.count("model_info"), 1);
}
