"""Validation of the weak-leakage theory (``theory.leakage``) with finite-size scaling (issue 25).

Usage::

    python -m benchmarks.leakage_validation [--root DIR] [--teachers svm,minnorm,adam,adam-raw]
        [--d 200,400,800,1600] [--seeds 64,48,32,24] [--alpha ...] [--rho 0.3,0.5,0.8]
        [--tag NAME] [--report-only] [--record FILE]

Runs logistic-pinv sweeps (``simulate.run``; each (teacher, d) is one run directory under ROOT, so
an interrupted run resumes where it stopped) and compares the held-out member accuracy of the
pseudo-inverse students with the prediction, cell by cell (``compare.leakage``):

- ``svm``: the exact hard-margin max-margin teacher on raw Gaussian inputs (the theory's setting);
  seeds whose labels are not separable are left out of the comparison and counted;
- ``minnorm``: the square-loss minimum-norm teacher (the exact control: 1/2 for alpha < 1);
- ``adam`` / ``adam-raw``: the paper's teacher (full-batch Adam, lr 1e-3, 10,000 epochs) on
  standardized (the reference's default) / raw inputs, nested data (one data set per seed), against
  the max-margin prediction: the implicit-bias gap.

The report (printed, and written to ``--record``, default
``benchmarks/records/leakage_validation.json``) reads every run directory under ROOT: the cells
(measured +- SE, predicted, difference, z, within max(0.01, 2 SE)), per d the fraction of goal cells
(rho alpha <= 0.95, alpha <= 1.8) within tolerance and the mean |difference|, the per-cell fit
diff(d) = diff_inf + c/d, Gardner's kappa and n_SV/d against the teachers' measured ones, the
non-separable seeds, and the wall time of each run directory (accumulated over invocations).
Run it with one thread (``OMP_NUM_THREADS=1``) and ``nice``; a sweep's units are independent.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("leakage_validation")

ALPHAS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.8, 1.9)
RHOS = (0.3, 0.5, 0.8)
DS = (200, 400, 800, 1600)
SEEDS = (64, 48, 32, 24)
#: teacher name -> (teacher_kind, standardize, nested_data)
TEACHERS = {
    "svm": ("svm", None, False),
    "minnorm": ("minnorm", None, False),
    "adam": ("logistic", None, True),
    "adam-raw": ("logistic", False, True),
}
RECORD = Path(__file__).parent / "records" / "leakage_validation.json"
TIMINGS = "timings.json"


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def spec_for(teacher: str, d: int, seeds: int, alphas, rhos):
    from softleak.simulate import SweepSpec

    kind, standardize, nested = TEACHERS[teacher]
    return SweepSpec(
        "logistic-pinv",
        d=(d,),
        alpha=tuple(alphas),
        rho=tuple(rhos),
        seeds=seeds,
        teacher_kind=kind,
        standardize=standardize,
        nested_data=nested,
        n_val=100,  # chance-level by construction: not part of the comparison
    )


def run(args: argparse.Namespace) -> None:
    """Run (resume) every (teacher, d) sweep, timing each call into ROOT/timings.json."""
    from softleak.simulate import run as run_spec

    seeds = args.seeds if len(args.seeds) == len(args.d) else args.seeds * len(args.d)
    timings = _read_timings(args.root)
    for teacher in args.teachers:
        alphas = args.alpha
        if teacher == "minnorm":  # the control: interpolating teachers, and one past alpha = 1
            alphas = tuple(a for a in alphas if a < 1.0) + (1.25,)
        for d, s in zip(args.d, seeds, strict=True):
            name = f"{teacher}-d{d}{'-' + args.tag if args.tag else ''}"
            spec = spec_for(teacher, d, s, alphas, args.rho)
            t0 = time.perf_counter()
            log.info("%s: %d seeds x %d alpha ... (load %.2f)", name, s, len(alphas), _load())
            table = run_spec(spec, args.root / name, threads=1, progress=False)
            wall = time.perf_counter() - t0
            entry = timings.setdefault(name, {"wall_s": 0.0, "calls": 0})
            entry["wall_s"] += wall
            entry["calls"] += 1
            entry["teachers"] = int(table.groupby(["alpha", "seed"]).ngroups)
            _write_timings(args.root, timings)
            log.info("%s: done in %.1f s (%d rows)", name, wall, len(table))


def _load() -> float:
    return os.getloadavg()[0]


def _read_timings(root: Path) -> dict:
    path = root / TIMINGS
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_timings(root: Path, timings: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / (TIMINGS + ".tmp")
    tmp.write_text(json.dumps(timings, indent=1))
    tmp.replace(root / TIMINGS)


def load_all(root: Path) -> pd.DataFrame:
    """Every run directory's table under ``root``, each row tagged with its folder (``sweep``)
    and its teacher name (``teacher_name``: svm, minnorm, adam, adam-raw)."""
    from softleak.compare import load_sweep

    frames = []
    for folder in sorted(p for p in root.iterdir() if (p / "config.json").is_file()):
        df, _ = load_sweep(folder)
        name = folder.name.split("-d")[0]
        frames.append(df.assign(sweep=folder.name, teacher_name=name))
    if not frames:
        raise SystemExit(f"no run directory under {root}")
    return pd.concat(frames, ignore_index=True)


def teacher_geometry(df: pd.DataFrame) -> pd.DataFrame:
    """Per (d, alpha) of the svm sweeps: measured kappa and n_SV/d (mean +- SE over separable
    seeds) against Gardner's, and the non-separable seeds."""
    from softleak.theory.leakage import gardner_kappa, support_density

    svm = df[df["teacher_name"] == "svm"]
    rows = []
    for (d, alpha), g in svm.groupby(["d", "alpha"]):
        seeds = g.groupby("seed").first()
        ok = seeds[seeds["teacher_status"] == "ok"]
        row = {
            "d": int(d),
            "alpha": float(alpha),
            "seeds": len(seeds),
            "not_separable": int((seeds["teacher_status"] == "not_separable").sum()),
            "kkt_failed": int((seeds["teacher_status"] == "kkt_failed").sum()),
            "max_kkt": float(ok["teacher_kkt"].max()) if len(ok) else None,
        }
        for col, theory in (
            ("teacher_kappa", gardner_kappa(alpha) if alpha < 2 else np.nan),
            ("teacher_support", support_density(alpha) if alpha < 2 else np.nan),
        ):
            vals = ok[col].to_numpy(float)
            row[col] = float(vals.mean()) if len(vals) else None
            row[col + "_se"] = (
                float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else None
            )
            row[col + "_theory"] = float(theory)
        rows.append(row)
    return pd.DataFrame(rows)


def report(args: argparse.Namespace) -> dict:
    from softleak.compare.leakage import curve_agreement

    df = load_all(args.root)
    # One comparison per teacher name (adam and adam-raw are both "logistic" teachers).
    out: dict = {"root": str(args.root), "teachers": {}}
    for name, part in df.groupby("teacher_name"):
        agreement = curve_agreement(part.drop(columns=["sweep", "teacher_name"]))
        out["teachers"][name] = agreement.to_dict()
        print(f"\n== {name}: held-out accuracy, measured vs theory ==")
        print(agreement.format())
        by_d = agreement.by_d()
        if not by_d.empty:
            print("\nper d (goal cells):")
            print(by_d.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        fits = agreement.scaling()
        if not fits.empty:
            print("\nper cell: diff(d) = diff_inf + c/d (weighted by 1/SE^2):")
            print(fits.to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
        out["teachers"][name]["goal_by_d"] = [agreement.goal(d) for d in agreement.ds]
        for goal in out["teachers"][name]["goal_by_d"]:
            print(
                f"goal at d = {goal['d']}: {goal['within']} of {goal['cells']} goal cells within "
                f"max(0.01, 2 SE) ({goal['fraction']:.0%}; goal {goal['goal']:.0%}: "
                f"{'met' if goal['met'] else 'NOT met'})"
            )
    if (df["teacher_name"] == "svm").any():
        geo = teacher_geometry(df)
        out["svm_teachers"] = geo.to_dict(orient="records")
        print("\n== svm teachers: Gardner's kappa and n_SV/d, non-separable seeds ==")
        print(geo.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    out["timings"] = _read_timings(args.root)
    out["load_average_now"] = _load()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=Path("runs/leakage_validation"))
    p.add_argument("--teachers", type=lambda t: tuple(t.split(",")), default=("svm",))
    p.add_argument("--d", type=_ints, default=DS)
    p.add_argument("--seeds", type=_ints, default=SEEDS, help="per d, or one for all")
    p.add_argument("--alpha", type=_floats, default=ALPHAS)
    p.add_argument("--rho", type=_floats, default=RHOS)
    p.add_argument("--tag", default="", help="folder suffix (another grid at the same d)")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--record", type=Path, default=RECORD)
    args = p.parse_args(argv)
    unknown = set(args.teachers) - set(TEACHERS)
    if unknown:
        p.error(f"unknown teacher(s) {sorted(unknown)}; choose from {sorted(TEACHERS)}")
    if len(args.seeds) not in (1, len(args.d)):
        p.error("--seeds: one value, or one per --d")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.report_only:
        run(args)
    record = report(args)
    args.record.parent.mkdir(parents=True, exist_ok=True)
    args.record.write_text(json.dumps(record, indent=1, default=float))
    print(f"\nwrote {args.record}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
