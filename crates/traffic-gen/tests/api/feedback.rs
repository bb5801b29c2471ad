//! Against the real API: labelled predictions reach `/feedback`, and live accuracy follows the
//! share of wrong labels sent.

use crate::helpers::{EXCLUSIVE, assert_totals_add_up, run_report, spawn_real_api};
use std::collections::BTreeMap;
use traffic_gen::plan::RequestKind;

/// 200 labelled predictions (`mislabel`) at 200 req/s with `extra` arguments, every one answered
/// 200.
async fn labelled_run(address: &str, extra: &[&str], seed: &str) -> traffic_gen::report::Report {
    let mut args = vec![
        "--target", address, "-s", "mislabel", "-r", "200", "-n", "200",
    ];
    args.extend_from_slice(&["--seed", seed]);
    args.extend_from_slice(extra);
    let r = run_report(&args).await;
    assert_totals_add_up(&r);
    assert_eq!((r.succeeded, r.errors), (200, 0));
    r
}

async fn scrape(address: &str) -> String {
    reqwest::get(format!("{address}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body")
}

fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{series} not in the scrape"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mislabel_sends_true_and_wrong_labels_that_the_api_counts() {
    let _turn = EXCLUSIVE.lock().await;
    let api = spawn_real_api().await;
    let r = run_report(&[
        "--target",
        &api.address,
        "-s",
        "mislabel",
        "-r",
        "200",
        "-n",
        "400",
        "--seed",
        "5",
        "-c",
        "16",
    ])
    .await;
    assert_totals_add_up(&r);
    let kinds: BTreeMap<RequestKind, u64> = r.kinds.iter().map(|k| (k.kind, k.completed)).collect();
    assert_eq!(
        kinds.keys().copied().collect::<Vec<_>>(),
        [RequestKind::Feedback, RequestKind::WrongFeedback]
    );
    for k in &r.kinds {
        assert_eq!(
            k.status_codes,
            BTreeMap::from([(200, k.completed)]),
            "{}",
            k.kind
        );
    }

    let text = scrape(&api.address).await;
    let correct = sample(
        &text,
        r#"inference_feedback_total{model="breast-cancer",outcome="correct"} "#,
    );
    let incorrect = sample(
        &text,
        r#"inference_feedback_total{model="breast-cancer",outcome="incorrect"} "#,
    );
    assert_eq!(
        correct + incorrect,
        400.0,
        "every labelled prediction reached /feedback once"
    );
    assert_eq!(
        sample(
            &text,
            r#"inference_feedback_unmatched_total{model="breast-cancer"} "#
        ),
        0.0
    );
    // The model is right on 109 of the 114 held-out rows: a true label is mostly "correct" and a
    // wrong one mostly "incorrect", so live accuracy is near the share of true labels.
    let true_share = kinds[&RequestKind::Feedback] as f64 / 400.0;
    let accuracy = correct / 400.0;
    assert!(
        (accuracy - true_share).abs() < 0.06,
        "live accuracy {accuracy} vs true-label share {true_share}"
    );
    assert!(
        accuracy < 0.95614 - 0.10,
        "{accuracy}: mislabel should take live accuracy under the alert threshold"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_sends_predictions_and_feedback_to_that_model_only() {
    let _turn = EXCLUSIVE.lock().await;
    let api = spawn_real_api().await;
    let wine = crate::helpers::repo_root().join("models/wine");
    let wine = wine.to_str().expect("utf-8 path");
    let r = labelled_run(&api.address, &["--model", "wine", "--bundle", wine], "6").await;
    let text = scrape(&api.address).await;
    let predicted: f64 = ["class_0", "class_1", "class_2"]
        .iter()
        .map(|c| {
            sample(
                &text,
                &format!(r#"inference_predictions_total{{model="wine",class="{c}"}} "#),
            )
        })
        .sum();
    assert_eq!(predicted, 200.0);
    // The wine model is right on every held-out row: exactly the true labels count as correct.
    let kinds: BTreeMap<RequestKind, u64> = r.kinds.iter().map(|k| (k.kind, k.completed)).collect();
    let correct = sample(
        &text,
        r#"inference_feedback_total{model="wine",outcome="correct"} "#,
    );
    assert_eq!(correct, kinds[&RequestKind::Feedback] as f64);
    assert_eq!(
        sample(
            &text,
            r#"inference_feedback_total{model="breast-cancer",outcome="correct"} "#
        ),
        0.0,
        "nothing went to the default model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_models_take_turns_and_each_gets_its_own_feedback() {
    let _turn = EXCLUSIVE.lock().await;
    let api = spawn_real_api().await;
    let models = crate::helpers::repo_root().join("models");
    let models = models.to_str().expect("utf-8 path");
    let both = ["--model", "breast-cancer,wine", "--models-dir", models];
    labelled_run(&api.address, &both, "7").await;
    let text = scrape(&api.address).await;
    let classes = [
        ("breast-cancer", &["malignant", "benign"][..]),
        ("wine", &["class_0", "class_1", "class_2"][..]),
    ];
    for (model, names) in classes {
        let predicted: f64 = names
            .iter()
            .map(|c| {
                sample(
                    &text,
                    &format!(r#"inference_predictions_total{{model="{model}",class="{c}"}} "#),
                )
            })
            .sum();
        let labelled: f64 = ["correct", "incorrect"]
            .iter()
            .map(|o| {
                sample(
                    &text,
                    &format!(r#"inference_feedback_total{{model="{model}",outcome="{o}"}} "#),
                )
            })
            .sum();
        // Requests alternate between the two models: 100 each, each labelled at its model.
        assert_eq!((predicted, labelled), (100.0, 100.0), "{model}");
        assert_eq!(
            sample(
                &text,
                &format!(r#"inference_feedback_unmatched_total{{model="{model}"}} "#)
            ),
            0.0
        );
    }
}
