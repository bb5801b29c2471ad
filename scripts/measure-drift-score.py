#!/usr/bin/env python3
"""Choose the drift score the DataDriftDetected alert uses, by measurement.

Simulates many 1,000-row drift windows the way the API fills them (rows binned into the manifest's
10 training quantile bins, PSI per feature with shares floored at 1e-4) for:
  normal  - the 114 held-out rows resampled (what steady demo traffic sends)
  mixed   - like normal, but 2% of rows drifted (the traffic generator's `mixed` demo default)
  half    - every row shifted by +0.5 training std (the issue's reference point)
  drift   - every row shifted by +1 training std (the traffic generator's `drift` scenario)
and prints candidate per-model scores (max, mean, median PSI over the 30 features).
Pure standard library:  python3 scripts/measure-drift-score.py [--windows 200] [--rows 1000]
"""
import argparse, bisect, csv, json, math, random, statistics, struct
from pathlib import Path

root = Path(__file__).resolve().parent.parent
bundle = root / "models" / "breast-cancer"
EPS = 1e-4


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=200)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    m = json.loads((bundle / "model.json").read_text())
    stats = m["training"]["feature_stats"]
    edges = [[f32(e) for e in s["bin_edges"]] for s in stats]
    expected = [s["bin_fractions"] for s in stats]
    with open(bundle / "samples.csv") as f:
        rows = [[float(v) for v in r[:-1]] for r in list(csv.reader(f))[1:]]

    def shifted(row, k):
        return [x + k * s["std"] for x, s in zip(row, stats)]

    def psi_per_feature(window):
        out = []
        for j in range(len(stats)):
            counts = [0] * len(edges[j])
            for r in window:
                counts[min(bisect.bisect_left(edges[j], f32(r[j])), len(edges[j]) - 1)] += 1
            n = len(window)
            out.append(sum((max(c / n, EPS) - max(e, EPS)) * math.log(max(c / n, EPS) / max(e, EPS))
                           for c, e in zip(counts, expected[j])))
        return out

    rng = random.Random(args.seed)
    kinds = {
        "normal": lambda: rng.choice(rows),
        "mixed": lambda: shifted(rng.choice(rows), 1.0) if rng.random() < 0.02 else rng.choice(rows),
        "half": lambda: shifted(rng.choice(rows), 0.5),
        "drift": lambda: shifted(rng.choice(rows), 1.0),
    }
    print(f"# {args.windows} windows of {args.rows} rows each; score statistics over windows")
    print(f"{'traffic':<8} {'score':<12} {'mean':>8} {'p99':>8} {'max':>8}")
    for name, draw in kinds.items():
        scores = {"max PSI": [], "mean PSI": [], "median PSI": []}
        windows = args.windows if name in ("normal", "mixed") else max(20, args.windows // 10)
        for _ in range(windows):
            p = psi_per_feature([draw() for _ in range(args.rows)])
            scores["max PSI"].append(max(p))
            scores["mean PSI"].append(statistics.fmean(p))
            scores["median PSI"].append(statistics.median(p))
        for score, v in scores.items():
            v.sort()
            print(f"{name:<8} {score:<12} {statistics.fmean(v):8.3f} {v[int(0.99 * (len(v) - 1))]:8.3f} {v[-1]:8.3f}")


if __name__ == "__main__":
    main()
