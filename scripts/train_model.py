#!/usr/bin/env python3
"""Train a bundled model and write models/<model>/ (model.onnx, model.json, samples.csv).

Two models, each from a data set scikit-learn ships (no download): `breast-cancer` (the default
model: 30 features, 2 classes) and `wine` (13 features, 3 classes). Reproducible: a stratified 80/20 split with
seed 42, pinned library versions (scripts/requirements-train.txt) and a fixed trained-at timestamp, so
running it again gives the same bytes. Usage:

    python3 -m venv .venv-train && .venv-train/bin/pip install -r scripts/requirements-train.txt
    .venv-train/bin/python scripts/train_model.py [--model breast-cancer|wine] [--out models/<model>]
        [--trained-at 2026-11-21T00:00:00Z] [--version 1.0.0] [--max-age-days DAYS]

Retraining (ModelStale): `--trained-at now --version 1.0.1` writes the same model with today's
training time as a new version, in the version sub-folder models/breast-cancer/1.0.1/ (unless --out
says otherwise); everything else stays reproducible. A folder that does not exist yet is written
under a hidden name first and renamed into place once complete, so a running API, which serves the
newest version in the model's folder, never sees half a bundle. `--max-age-days` sets how old
the model may get before ModelStale fires (the manifest's `max_age_days`; 30 days when absent).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

SEED = 42
DATASETS = {"breast-cancer": load_breast_cancer, "wine": load_wine}
VERSION = "1.0.0"
# When this bundle was trained. Fixed so the bundle reproduces exactly; pass --trained-at to retrain "now".
TRAINED_AT = "2026-11-21T00:00:00Z"
N_BINS = 10


def quantile_bins(column: np.ndarray) -> tuple[list[float], list[float]]:
    """Ten bins cut at the training deciles.

    `edges` holds each bin's inclusive upper edge (the 10%, 20%, ..., 90% quantiles and the maximum):
    bin i takes x with edges[i-1] < x <= edges[i]; values below the first edge fall in bin 0 and values
    above the last edge in the last bin. `fractions` is the share of training rows in each bin, computed
    with the same rule, so it reflects ties (a feature with many zeros has empty bins).
    """
    edges = np.quantile(column, np.linspace(0.1, 1.0, N_BINS)).tolist()
    idx = np.searchsorted(np.asarray(edges), column, side="left")
    idx = np.minimum(idx, N_BINS - 1)
    counts = np.bincount(idx, minlength=N_BINS)
    fractions = (counts / len(column)).tolist()
    return [float(e) for e in edges], [float(f) for f in fractions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=DATASETS, default="breast-cancer", help="which model to train")
    parser.add_argument("--out", default=None,
                        help=f"default: models/<model> for version {VERSION}, else models/<model>/<version>")
    parser.add_argument("--trained-at", default=TRAINED_AT, help="RFC 3339 time, or `now`")
    parser.add_argument("--version", default=VERSION)
    parser.add_argument("--max-age-days", type=float, default=None,
                        help="how old the model may get before ModelStale fires (default: 30, not written)")
    args = parser.parse_args()
    if args.trained_at == "now":
        args.trained_at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        dt.datetime.fromisoformat(args.trained_at.replace("Z", "+00:00"))  # refuse a malformed time early
    if args.max_age_days is not None and not 0 < args.max_age_days <= 36500:
        parser.error("--max-age-days must be more than 0 and at most 36500")
    model_name = args.model
    model_dir = Path(__file__).resolve().parent.parent / "models" / model_name
    final = Path(args.out) if args.out else model_dir if args.version == VERSION else model_dir / args.version
    # A new folder appears complete or not at all: written under a hidden name, then renamed.
    out = final if final.exists() else final.parent / f".{final.name}.tmp"
    out.mkdir(parents=True, exist_ok=True)

    data = DATASETS[model_name]()
    features = [str(f) for f in data.feature_names]
    classes = [str(c) for c in data.target_names]  # breast-cancer: ["malignant", "benign"]
    binary = len(classes) == 2
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, random_state=SEED, stratify=data.target
    )

    clf = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=SEED)
    pipe = Pipeline([("scaler", StandardScaler()), ("clf", clf)])
    pipe.fit(x_train, y_train)

    onx = convert_sklearn(
        pipe,
        initial_types=[("input", FloatTensorType([None, len(features)]))],
        options={id(clf): {"zipmap": False}},
    )
    onx.graph.name = model_name  # skl2onnx names the graph with a random uuid; fix it for reproducibility
    model_bytes = onx.SerializeToString()
    (out / "model.onnx").write_bytes(model_bytes)

    # Validation scores come from ONNX Runtime on float32 input: exactly what the API serves.
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    labels, probs = sess.run(["label", "probabilities"], {"input": x_test.astype(np.float32)})
    # Several classes: precision, recall and f1 averaged over the classes, ROC AUC one-vs-rest.
    average = "binary" if binary else "macro"
    scores = {
        "accuracy": accuracy_score(y_test, labels),
        "precision": precision_score(y_test, labels, average=average),
        "recall": recall_score(y_test, labels, average=average),
        "f1": f1_score(y_test, labels, average=average),
        "roc_auc": roc_auc_score(y_test, probs[:, 1]) if binary else roc_auc_score(y_test, probs, multi_class="ovr"),
    }

    stats = []
    for j, name in enumerate(features):
        col = x_train[:, j]
        edges, fractions = quantile_bins(col)
        stats.append(
            {
                "name": name,
                "mean": float(col.mean()),
                "std": float(col.std()),
                "min": float(col.min()),
                "max": float(col.max()),
                "bin_edges": edges,
                "bin_fractions": fractions,
            }
        )

    manifest = {
        "format_version": 1,
        "name": model_name,
        "version": args.version,
        "trained_at": args.trained_at,
        **({"max_age_days": args.max_age_days} if args.max_age_days is not None else {}),
        "task": "binary-classification" if binary else "multiclass-classification",
        "framework": "scikit-learn Pipeline(StandardScaler, RandomForestClassifier) -> skl2onnx",
        "input": {"name": "input", "dtype": "float32", "shape": [None, len(features)]},
        "outputs": {"label": "label", "probabilities": "probabilities"},
        "features": features,
        "classes": classes,
        **({"positive_class": classes[1]} if binary else {}),
        "validation": {
            "split": "stratified 20% hold-out, seed 42",
            "rows": int(len(y_test)),
            "scores": {k: round(float(v), 6) for k, v in scores.items()},
        },
        "training": {"rows": int(len(y_train)), "feature_stats": stats},
        "artifacts": {"model.onnx": {"sha256": hashlib.sha256(model_bytes).hexdigest(), "bytes": len(model_bytes)}},
    }
    (out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")

    with (out / "samples.csv").open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(features + ["label"])
        for row, y in zip(x_test, y_test):
            w.writerow([repr(float(v)) for v in row] + [classes[int(y)]])

    if out != final:
        out.rename(final)
    print(f"wrote {final}: accuracy={scores['accuracy']:.4f} roc_auc={scores['roc_auc']:.4f} sha256={manifest['artifacts']['model.onnx']['sha256']}")


if __name__ == "__main__":
    main()
