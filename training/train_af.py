"""Train Vigil's AF model (issue 18) from window features the C++ detector exported.

Reads build/training/af-features/<record>.jsonl (one "af_feature.<name>" measurement per model
input per beat window, as `vigil replay --measurements` writes them) and the CinC 2017
REFERENCE.csv of the training records. Labels: a window is AF when its record is class A (the
CinC 2017 labels are per record; N, O and ~ are "not AF", as the challenge's AF-versus-rest
task scores them). Every record weighs the same, however many windows it has.

1. Cross-validation: 5 folds stratified by class and grouped by record (no record in two
   folds). Every window gets an out-of-fold probability; the stream's decision is then replayed
   per record as the detector makes it (exponential smoothing, open above the threshold, close
   below 0.8 x threshold after the 30-s hold, AF when the episodes cover at least half the
   record), and af_probability_min is the threshold with the best record-level F1 there.
2. The final model is trained on every record with the same settings and written as a
   `vigil-tree-ensemble 1` text file (operators/core/tree_ensemble.h), with test vectors that the
   C++ evaluator must reproduce (tests/unit/af_model_test.cpp).
"""

import argparse
import csv
import json
import math
import os
import sys
import time
from datetime import date

import lightgbm as lgb
import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

FEATURES = [
    "irregularity", "regular_fraction", "amplitude_cv", "p_wave_coherence", "p_wave_lock",
    "rr_entropy", "atrial_noise", "heart_rate_bpm", "successive_difference", "coverage",
    "irregularity_long", "successive_difference_long", "rr_entropy_long", "turning_point_ratio",
    "shannon_entropy",
]
# The detector's decision (atrial_fibrillation_detector.h defaults).
SMOOTHING = 0.3
RELEASE = 0.8
CLOSE_HOLD_S = 30.0
WINDOW_BEATS = 12
PARAMS = dict(
    objective="binary", learning_rate=0.05, n_estimators=150, num_leaves=8, max_depth=4,
    min_child_samples=200, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
    reg_lambda=1.0, random_state=17, deterministic=True, force_row_wise=True, n_jobs=2,
    verbose=-1,
)
# af_model_vetoes (on by default): a regular rhythm underneath or a recurring RR pattern scores 0
# (atrial_fibrillation_detector.cpp, PatternVeto, default limits).
P_WAVE_ABSENT_MAX, REGULAR_FRACTION_MAX, REGULAR_FRACTION_MAX_NO_P, ENTROPY_MIN = 0.2, 0.35, 0.7, -1.8
THRESHOLDS = [round(0.2 + 0.025 * k, 3) for k in range(29)]  # 0.2 .. 0.9


def read_reference(path):
    with open(path) as f:
        return {row[0]: row[1] for row in csv.reader(f) if row and row[0] != "record"}


def record_seconds(hea):
    with open(hea) as f:
        first = f.readline().split()
    return int(first[3]) / float(first[2].split("/")[0])


def read_windows(path):
    """Windows of one record, in time order: (t, [feature values])."""
    windows = {}
    with open(path) as f:
        for line in f:
            if '"measurement"' not in line:
                continue
            m = json.loads(line)
            name = m["name"]
            if not name.startswith("af_feature."):
                continue
            v = m["value"]
            windows.setdefault(m["t"], {})[name[len("af_feature."):]] = math.nan if v is None else v
    out = []
    for t in sorted(windows):
        w = windows[t]
        if len(w) != len(FEATURES):
            raise SystemExit(f"{path}: window at {t} s has {sorted(w)}, expected {FEATURES}")
        out.append((t, [w[k] for k in FEATURES]))
    return out


def record_is_af(times, probabilities, heart_rates, duration_s, threshold):
    """The detector's episode logic on one record; True when AF covers >= half of it."""
    release = threshold * RELEASE
    smoothed = None
    open_ = False
    start = closing_since = closing_end = last_irregular = 0.0
    covered = 0.0
    for t, p, hr in zip(times, probabilities, heart_rates):
        smoothed = p if smoothed is None else smoothed + SMOOTHING * (p - smoothed)
        if smoothed > release:
            last_irregular = t
        if not open_ and smoothed > threshold:
            open_ = True
            closing_since = None
            start = max(0.0, t - WINDOW_BEATS * 60.0 / max(hr, 1.0))
        elif open_ and closing_since is not None and smoothed > threshold:
            closing_since = None
        elif open_ and closing_since is None and smoothed <= release:
            closing_since, closing_end = t, last_irregular
        if open_ and closing_since is not None and t - closing_since >= CLOSE_HOLD_S:
            covered += max(0.0, closing_end - start)
            open_ = False
            closing_since = None
    if open_:
        covered += max(0.0, (closing_end if closing_since is not None else last_irregular) - start)
    return covered >= 0.5 * duration_s


def pattern_veto(x):
    """Windows the served detector scores 0 whatever the model says."""
    coherence = x[:, FEATURES.index("p_wave_coherence")]
    no_p = ~np.isnan(coherence) & (coherence < P_WAVE_ABSENT_MAX)
    regular = x[:, FEATURES.index("regular_fraction")] > np.where(
        no_p, REGULAR_FRACTION_MAX_NO_P, REGULAR_FRACTION_MAX)
    entropy = x[:, FEATURES.index("rr_entropy")]
    return regular | (~np.isnan(entropy) & (entropy < ENTROPY_MIN))


def f1_of(truth, called):
    tp = sum(1 for a, b in zip(truth, called) if a and b)
    fp = sum(1 for a, b in zip(truth, called) if not a and b)
    fn = sum(1 for a, b in zip(truth, called) if a and not b)
    se = tp / (tp + fn) if tp + fn else 0.0
    ppv = tp / (tp + fp) if tp + fp else 0.0
    return (2 * tp / (2 * tp + fp + fn) if tp else 0.0), se, ppv


def decide(records, windows, probabilities, threshold):
    truth, called = [], []
    for name, label, duration in records:
        idx = windows[name]
        if len(idx) == 0:
            called.append(False)
        else:
            called.append(record_is_af(T[idx], probabilities[idx], X[idx, FEATURES.index("heart_rate_bpm")],
                                       duration, threshold))
        truth.append(label == "A")
    return f1_of(truth, called)


def tree_lines(tree):
    """One LightGBM tree (dump_model) as Vigil split/leaf lines, pre-order ids."""
    nodes = []

    def visit(node):
        my_id = len(nodes)
        nodes.append(None)
        if "leaf_value" in node:
            nodes[my_id] = f"leaf {my_id} {float(node['leaf_value'])!r}"
            return my_id
        if node["decision_type"] != "<=":
            raise SystemExit(f"unsupported decision type {node['decision_type']}")
        threshold = float(node["threshold"])
        missing = node.get("missing_type", "None")
        if missing == "NaN":
            nan_left = bool(node["default_left"])
        elif missing == "None":  # LightGBM reads NaN as 0 for such a split
            nan_left = 0.0 <= threshold
        else:
            raise SystemExit(f"unsupported missing type {missing} (zero_as_missing is off)")
        left = visit(node["left_child"])
        right = visit(node["right_child"])
        nodes[my_id] = (f"split {my_id} {node['split_feature']} {threshold!r} {left} {right} "
                        f"{int(nan_left)} {float(node['internal_value'])!r}")
        return my_id

    visit(tree["tree_structure"])
    return nodes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features")
    ap.add_argument("--reference")
    ap.add_argument("--model")
    ap.add_argument("--vectors")
    ap.add_argument("--placeholder", help="write a model of one empty tree over FEATURES here")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--param", action="append", default=[],
                    help="experiments: a LightGBM setting key=value replacing the default")
    args = ap.parse_args()
    for item in args.param:
        key, value = item.split("=", 1)
        PARAMS[key] = type(PARAMS[key])(value) if key in PARAMS else float(value)

    if args.placeholder:
        with open(args.placeholder, "w") as f:
            f.write("vigil-tree-ensemble 1\nname ecg.af\nversion placeholder\nfeatures " +
                    " ".join(FEATURES) + "\nbase 0\ntree 0 1\nleaf 0 0\nend\n")
        return
    reference = read_reference(args.reference)
    data_dir = os.path.dirname(args.reference)
    global X, T
    rows, times, groups, labels, weights = [], [], [], [], []
    records = []
    windows = {}
    for name in sorted(reference):
        path = os.path.join(args.features, name + ".jsonl")
        if not os.path.exists(path):
            raise SystemExit(f"{path} missing: export the features first (training/train_af.sh)")
        w = read_windows(path)
        start = len(rows)
        for t, v in w:
            rows.append(v)
            times.append(t)
            groups.append(len(records))
            labels.append(1 if reference[name] == "A" else 0)
            weights.append(1.0 / len(w))
        windows[name] = np.arange(start, len(rows))
        records.append((name, reference[name], record_seconds(os.path.join(data_dir, name + ".hea"))))
    X = np.array(rows, dtype=float)
    T = np.array(times)
    y = np.array(labels)
    g = np.array(groups)
    sw = np.array(weights)
    rec_y = np.array([1 if lab == "A" else 0 for _, lab, _ in records])
    print(f"{len(records)} records ({int(rec_y.sum())} AF), {len(X)} windows, "
          f"{sum(1 for n in windows if len(windows[n]) == 0)} records without a window")

    # 1. Cross-validation by record.
    oof = np.zeros(len(X))
    t0 = time.time()
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=17)
    for train, test in folds.split(X, y, g):
        model = lgb.LGBMClassifier(**PARAMS)
        model.fit(X[train], y[train], sample_weight=sw[train])
        oof[test] = model.predict_proba(X[test])[:, 1]
    cv_seconds = time.time() - t0
    oof = np.where(pattern_veto(X), 0.0, oof)
    table = [(th, *decide(records, windows, oof, th)) for th in THRESHOLDS]
    best = max(table, key=lambda r: (round(r[1], 4), r[0]))
    print("cross-validated (5 folds by record), record-level AF versus rest, with the pattern "
          "vetoes the detector applies by default:")
    print("  threshold   F1     Se     +P")
    for th, f1, se, ppv in table:
        mark = "  <- af_probability_min" if th == best[0] else ""
        print(f"  {th:9.3f}  {f1:.3f}  {se:.3f}  {ppv:.3f}{mark}")
    print(f"  cross-validation took {cv_seconds:.1f} s")

    # 2. The final model on every record.
    t0 = time.time()
    model = lgb.LGBMClassifier(**PARAMS)
    model.fit(X, y, sample_weight=sw)
    train_seconds = time.time() - t0
    dump = model.booster_.dump_model()
    if dump["feature_names"] != [f"Column_{k}" for k in range(len(FEATURES))]:
        raise SystemExit(f"unexpected feature names {dump['feature_names']}")
    in_sample = decide(records, windows,
                       np.where(pattern_veto(X), 0.0, model.predict_proba(X)[:, 1]), best[0])
    print(f"final model: {len(dump['tree_info'])} trees, trained in {train_seconds:.1f} s; "
          f"in-sample F1 {in_sample[0]:.3f} at {best[0]} (cross-validated {best[1]:.3f})")
    gain = model.booster_.feature_importance(importance_type="gain")
    print("feature importance (gain share): " + ", ".join(
        f"{FEATURES[k]} {gain[k] / gain.sum():.2f}" for k in np.argsort(-gain)))
    if args.no_write:
        return

    lines = [
        "vigil-tree-ensemble 1",
        "# Atrial fibrillation versus rest per beat window: written by training/train_af.sh, do",
        "# not edit. Inputs are the AF detector's window features (operators/ecg/af_model.h).",
        f"# Trained on {len(records)} CinC 2017 training records (../shared/data/cinc2017-train,",
        f"# {int(rec_y.sum())} AF), {len(X)} windows, every record weighted equally. LightGBM "
        f"{lgb.__version__}: " + ", ".join(f"{k}={v}" for k, v in PARAMS.items()
                                              if k not in ("verbose", "n_jobs")),
        f"# Cross-validated record F1 {best[1]:.3f} (Se {best[2]:.3f}, +P {best[3]:.3f}) at "
        f"af_probability_min {best[0]}; in-sample {in_sample[0]:.3f}.",
        "name ecg.af",
        f"version {date.today().isoformat()}.1",
        "features " + " ".join(FEATURES),
        "base 0",
        f"operating_point {best[0]}",
    ]
    for k, tree in enumerate(dump["tree_info"]):
        nodes = tree_lines(tree)
        lines.append(f"tree {k} {len(nodes)}")
        lines.extend(nodes)
    lines.append("end")
    with open(args.model, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.model}: {os.path.getsize(args.model)} bytes; af_probability_min {best[0]}")

    # Test vectors: windows the C++ evaluator must score as LightGBM does.
    rng = np.random.default_rng(17)
    pick = rng.choice(len(X), size=200, replace=False)
    margins = model.booster_.predict(X[pick], raw_score=True)
    with open(args.vectors, "w") as f:
        f.write(",".join(FEATURES + ["margin"]) + "\n")
        for i, m in zip(pick, margins):
            f.write(",".join("nan" if math.isnan(v) else repr(float(v)) for v in X[i]) +
                    f",{float(m)!r}\n")
    print(f"wrote {args.vectors}: 200 windows with LightGBM's margins")


if __name__ == "__main__":
    sys.exit(main())
