"""How a results table run on the device is compared with the same run on the CPU: float64 metric
by metric (``compare_float64``), float32 by outcome (``compare_outcomes``: the same phase, and
accuracies within the seed spread)."""

from __future__ import annotations

FLOAT64_RTOL = 1e-6  # float64 device vs CPU: every metric, relative ...
FLOAT64_ATOL = 1e-9  # ... plus this absolute slack (metrics near 0)
SEED_SPREAD_K = 2.0  # float32 by outcome: mean difference within K x the std over seeds ...
ACC_FLOOR = 0.05  # ... plus this floor (few seeds, small test sets)
MEMORIZED = 0.99  # a teacher memorizes its set when its train accuracy reaches this

METRIC_WORDS = ("acc", "_ce", "mse", "loss", "entropy")
SEED_COLUMNS = ("seed", "student_seed", "data_seed", "teacher_seed", "model_seed", "split_seed")


def _columns(table) -> tuple[list[str], list[str]]:
    """(key columns, metric columns) of a results table; wall times are neither."""
    keys, metrics = [], []
    for col in table.columns:
        if "wall" in col or col in ("run_id",):
            continue
        numeric = table[col].dtype.kind in "fc"
        if numeric and any(w in col for w in METRIC_WORDS):
            metrics.append(col)
        elif table[col].map(lambda v: isinstance(v, str | int | float | bool)).all():
            keys.append(col)
    return keys, metrics


def _aligned(a, b):
    keys, metrics = _columns(a)
    a = a.sort_values(keys, kind="stable").reset_index(drop=True)
    b = b.sort_values(keys, kind="stable").reset_index(drop=True)
    return a, b, keys, metrics


def compare_float64(a, b) -> tuple[bool, str]:
    """Every metric of table ``b`` (device) within ``FLOAT64_RTOL`` of table ``a`` (CPU)."""
    import numpy as np

    if len(a) != len(b):
        return False, f"{len(a)} CPU rows vs {len(b)} device rows"
    a, b, keys, metrics = _aligned(a, b)
    for k in keys:
        if not a[k].equals(b[k]):
            return False, f"column {k} differs between the CPU and the device"
    worst, where = 0.0, ""
    for m in metrics:
        x, y = a[m].to_numpy(float), b[m].to_numpy(float)
        both_nan = np.isnan(x) & np.isnan(y)
        err = np.where(both_nan, 0.0, np.abs(x - y) / (FLOAT64_ATOL + FLOAT64_RTOL * np.abs(x)))
        if np.isnan(err).any():
            return False, f"{m}: NaN on one side only"
        if err.max() > worst:
            worst, where = float(err.max()), m
    detail = (
        f"{len(a)} rows x {len(metrics)} metrics; worst {where or '-'} at "
        f"{worst:.2g} x the tolerance (rtol {FLOAT64_RTOL:g}, atol {FLOAT64_ATOL:g})"
    )
    return worst <= 1.0, detail


def compare_outcomes(a, b, ignore: tuple[str, ...] = ()) -> tuple[bool, str]:
    """By outcome: per setting (every key but the seeds and ``ignore``), the same phase
    (teachers memorize or not) and every accuracy's mean over seeds within the seed spread."""
    a, b, keys, metrics = _aligned(a, b)
    setting = [
        k for k in keys if k not in SEED_COLUMNS and not k.endswith("_seed") and k not in ignore
    ]
    accs = [m for m in metrics if "acc" in m]
    label_a, label_b = _labels(a, setting), _labels(b, setting)
    if set(label_a) != set(label_b):
        return False, "the CPU and the device ran different settings"
    problems, worst, memorized = [], 0.0, []
    for key in sorted(set(label_a)):
        rows_a, rows_b = a[label_a == key], b[label_b == key]
        if "teacher_train_acc" in accs:
            pa = rows_a["teacher_train_acc"].mean() >= MEMORIZED
            pb = rows_b["teacher_train_acc"].mean() >= MEMORIZED
            memorized.append(pa)
            if pa != pb:
                problems.append(f"phase differs at {key}")
        for m in accs:
            xa, xb = rows_a[m].dropna(), rows_b[m].dropna()
            if xa.empty and xb.empty:
                continue
            if xa.empty or xb.empty:
                problems.append(f"{m} missing on one side at {key}")
                continue
            spread = max(_std(xa), _std(xb))
            gap = abs(float(xa.mean()) - float(xb.mean()))
            tol = SEED_SPREAD_K * spread + ACC_FLOOR
            worst = max(worst, gap / tol)
            if gap > tol:
                problems.append(f"{m} {gap:.3f} apart (> {tol:.3f}) at {key}")
    detail = (
        f"{len(set(label_a))} settings, {len(accs)} accuracies; teachers memorized in "
        f"{sum(memorized)} of {len(memorized)} settings; worst gap {worst:.2f} x its tolerance "
        f"({SEED_SPREAD_K:g} std over seeds + {ACC_FLOOR:g})"
    )
    if problems:
        return False, detail + "; " + "; ".join(problems[:3])
    return True, detail


def _labels(table, columns):
    """One text label per row naming its setting (NaN-safe, unlike a groupby on float keys)."""
    if not columns:
        return table.index.map(lambda _: "all")
    parts = [table[c].map(lambda v, c=c: f"{c}={v}") for c in columns if c not in ("experiment",)]
    label = parts[0]
    for part in parts[1:]:
        label = label + "," + part
    return label


def _std(x) -> float:
    return float(x.std(ddof=1)) if len(x) > 1 else 0.0
