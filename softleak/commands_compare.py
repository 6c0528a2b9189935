"""``softleak compare ...``: thresholds, phase diagrams, overlays and finite-size scaling.

Reads sweep directories written by ``softleak simulate`` (``results.parquet`` + ``config.json``).
``compare``, pandas and matplotlib are imported inside the handlers, so parsing stays cheap. Bad
input (missing folder or table, missing columns, a table that spans a condition the command needs
fixed) is one line on stderr and exit code 2, with nothing written. Figures are written
atomically (temporary file in the target folder, then renamed).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from softleak.args import nonnegative_int, positive_float
from softleak.errors import UsageError

_FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def _cutoff(text: str) -> float:
    """An accuracy cut-off in (0, 1] (1.0 is the multinomial sweeps' exact rule)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0.0 < value <= 1.0):
        raise argparse.ArgumentTypeError(f"expected a cut-off in (0, 1], got {text!r}")
    return value


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0.0 < value < 1.0):
        raise argparse.ArgumentTypeError(f"expected a level strictly between 0 and 1, got {text!r}")
    return value


def _where(text: str) -> tuple[str, Any]:
    """``column=value``; the value is read as a bool, a number, or kept as text."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected COLUMN=VALUE, got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    if not key:
        raise argparse.ArgumentTypeError(f"expected COLUMN=VALUE, got {text!r}")
    value: Any = raw
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        try:
            value = float(raw)
        except ValueError:
            value = raw
    return key, value


def _figure_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in _FIGURE_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"the output figure must end in {', '.join(_FIGURE_SUFFIXES)}, got {text!r}"
        )
    return path


#: The one-line help of ``softleak compare`` (the top-level --help lists it).
HELP = "thresholds, phase diagrams, finite-size scaling and theory overlays of a sweep"


def register(groups: Any) -> None:
    """Add the ``compare`` group and its commands to the top-level subparsers."""
    group = groups.add_parser(
        "compare",
        help=HELP,
        description=(
            "Analyse sweep directories written by 'softleak simulate' (results.parquet + "
            "config.json): measured thresholds with bootstrap intervals against the closed-form "
            "predictions, phase diagrams, finite-size scaling and accuracy curves with theory."
        ),
    )
    sub = group.add_subparsers(dest="command", metavar="{thresholds,phase,overlay,fss}")
    sub.required = True
    _add_thresholds(sub)
    _add_phase(sub)
    _add_overlay(sub)
    _add_fss(sub)


def _add_thresholds(sub: Any) -> None:
    """``compare thresholds``: measured thresholds with intervals, and the predictions."""
    p = sub.add_parser(
        "thresholds",
        help="measured thresholds with confidence intervals, and the theory's predictions",
        description=(
            "Locate alpha_label^T, alpha_label^S, alpha_id^S and alpha_label^{S-shuffle} on the "
            "seed-mean accuracy curves (linear interpolation at the cut-off; also the reference "
            "code's midpoint rule), with percentile bootstrap intervals over seeds, and compare "
            "with theory (alpha_id = 1/rho or 1/(rho c), the capacity alpha_label^T)."
        ),
    )
    p.add_argument("dir", help="sweep directory (holds results.parquet)")
    _common_threshold_args(p)
    p.add_argument("--json", action="store_true", help="print the JSON report instead of a table")
    p.set_defaults(handler=_thresholds)


def _add_phase(sub: Any) -> None:
    """``compare phase``: the phase diagram over two of alpha, rho, tau."""
    p = sub.add_parser(
        "phase",
        help="phase diagram (full recovery, weak leakage, ...) over (alpha, rho) or (alpha, tau)",
        description=(
            "Classify each grid cell from seed-mean accuracies (cut-offs 0.99 and 1/c + 0.05) "
            "and draw the diagram with the theory lines alpha_id and alpha_label^T."
        ),
    )
    p.add_argument("dir", help="sweep directory (holds results.parquet)")
    p.add_argument("--out", required=True, type=_figure_path, help="figure file (.png/.pdf/.svg)")
    p.add_argument("--x", default="alpha", choices=("alpha", "rho", "tau"), help="x axis")
    p.add_argument("--y", default="rho", choices=("alpha", "rho", "tau"), help="y axis")
    p.add_argument("--cutoff", type=_cutoff, default=0.99, help="fit cut-off (default 0.99)")
    p.add_argument(
        "--weak-cutoff", type=_cutoff, default=None, help="weak-leakage cut-off (default 1/c+0.05)"
    )
    p.add_argument(
        "--mse-cutoff",
        type=positive_float,
        default=None,
        help="decide 'student matches teacher' by test MSE <= this (paper: 0.1) instead of "
        "match-teacher accuracy",
    )
    p.add_argument("--shuffle", action="store_true", help="use the shuffled-control runs")
    p.add_argument("--hatch", action="store_true", help="hatch the teacher-fails phases")
    p.add_argument(
        "--contours",
        action="store_true",
        help="logistic-pinv over (alpha, rho): draw the predicted held-out accuracy of the weak "
        "phase (the max-margin teacher's theory) as contour lines",
    )
    _where_arg(p)
    p.set_defaults(handler=_phase)


def _add_overlay(sub: Any) -> None:
    """``compare overlay``: accuracy curves vs alpha with theory on top."""
    p = sub.add_parser(
        "overlay",
        help="accuracy curves vs alpha with theory drawn on top, and the gaps as numbers",
        description=(
            "Seed-mean teacher train, student train and student test accuracy (+- SEM) vs alpha, "
            "with Cover's P(n, d), alpha_label^T and alpha_id(rho) in black, and for "
            "logistic-pinv the predicted held-out accuracy of the weak phase (the max-margin "
            "teacher's theory; the exact 1/2 of --teacher minnorm); prints measured - predicted "
            "thresholds and how many (alpha, rho) cells agree with the curve."
        ),
    )
    p.add_argument("dir", help="sweep directory (holds results.parquet)")
    p.add_argument("--out", required=True, type=_figure_path, help="figure file (.png/.pdf/.svg)")
    p.add_argument(
        "--rho",
        type=float,
        action="append",
        default=None,
        help="rho panel(s) to draw (repeatable; default: up to 4 spread over the sweep)",
    )
    _common_threshold_args(p)
    _where_arg(p)
    p.add_argument("--json", action="store_true", help="print the gaps as JSON")
    p.set_defaults(handler=_overlay)


def _add_fss(sub: Any) -> None:
    """``compare fss``: finite-size scaling over several d, and a curve collapse."""
    p = sub.add_parser(
        "fss",
        help="finite-size scaling of a threshold over several d, and a curve collapse",
        description=(
            "Measure a threshold at every d found in the sweep directories, fit alpha(d) = "
            "alpha_inf + a d^(-1/nu) and collapse the underlying accuracy curves "
            "(Houdayer-Hartmann quality)."
        ),
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="sweep directories (one or several d)")
    p.add_argument("--out", required=True, type=_figure_path, help="figure file (.png/.pdf/.svg)")
    p.add_argument(
        "--rule",
        default="alpha_label_T",
        choices=("alpha_label_T", "alpha_label_S", "alpha_id_S", "alpha_label_S_shuffle"),
        help="threshold to scale (default alpha_label_T)",
    )
    p.add_argument("--nu", type=positive_float, default=None, help="fix the exponent nu")
    _common_threshold_args(p)
    _where_arg(p)
    p.add_argument("--json", action="store_true", help="print fits and thresholds as JSON")
    p.set_defaults(handler=_fss)


def _common_threshold_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cutoff", type=_cutoff, default=0.99, help="accuracy cut-off (default 0.99)")
    p.add_argument(
        "--n-boot", type=nonnegative_int, default=1000, help="bootstrap resamples (default 1000)"
    )
    p.add_argument("--level", type=_level, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="bootstrap seed (default 0)")


def _where_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--where",
        type=_where,
        action="append",
        default=None,
        metavar="COLUMN=VALUE",
        help="keep rows with COLUMN == VALUE (repeatable), e.g. --where tau=10",
    )


# The metric columns the thresholds read (teacher and student train accuracy, held-out accuracy).
METRICS = ("teacher_train_acc", "student_train_acc", "student_test_acc")


def _load(path: str):
    from softleak.compare.table import load_sweep

    try:
        return load_sweep(path)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _save(fig: Any, path: Path) -> Path:
    from softleak.compare.style import save_figure

    try:
        return save_figure(fig, path)
    except OSError as err:
        raise UsageError(f"cannot write {str(path)!r}: {err.strerror or err}") from None


def _agg() -> None:
    import matplotlib

    matplotlib.use("Agg")


def _thresholds(args: argparse.Namespace) -> int:
    from softleak.compare.table import require_columns
    from softleak.compare.thresholds import find_thresholds, format_table

    df, _ = _load(args.dir)
    try:
        require_columns(df, METRICS, f"{args.dir}/results.parquet")
        table = find_thresholds(
            df, cutoff=args.cutoff, n_boot=args.n_boot, seed=args.seed, level=args.level
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.json:
        report = {**table.report(), "complete": df.attrs.get("complete") is not False}
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(format_table(table))
    return 0


def _phase(args: argparse.Namespace) -> int:
    if args.x == args.y:
        raise UsageError(f"--x and --y must differ, both are {args.x!r}")
    _agg()
    from softleak.compare.phases import phase_diagram
    from softleak.compare.style import new_figure

    df, _ = _load(args.dir)
    try:
        diagram = phase_diagram(
            df,
            x=args.x,
            y=args.y,
            where=dict(args.where or []),
            shuffle=args.shuffle,
            cutoff=args.cutoff,
            weak_cutoff=args.weak_cutoff,
            mse_cutoff=args.mse_cutoff,
            contours=args.contours,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    fig, (ax,) = new_figure(panel=(7.0, 4.0))
    diagram.plot(ax=ax, hatch=args.hatch)
    path = _save(fig, args.out)
    counts = ", ".join(f"{k}: {v}" for k, v in diagram.counts().items())
    print(f"wrote {path} ({counts})")
    return 0


def _overlay(args: argparse.Namespace) -> int:
    _agg()
    from softleak.compare.overlay import overlay
    from softleak.compare.style import new_figure

    df, _ = _load(args.dir)
    try:
        result = overlay(
            df,
            where=dict(args.where or []),
            cutoff=args.cutoff,
            n_boot=args.n_boot,
            seed=args.seed,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    rhos = result.rhos
    if args.rho:
        missing = [r for r in args.rho if not any(math.isclose(r, q, rel_tol=1e-6) for q in rhos)]
        if missing:
            shown = ", ".join(f"{q:g}" for q in rhos[:10])
            raise UsageError(f"no runs at rho={missing[0]:g}; the sweep has rho in {{{shown}}}")
        panels = list(args.rho)
    elif len(rhos) <= 4:
        panels = rhos or [math.nan]
    else:
        idx = sorted({round(i * (len(rhos) - 1) / 3) for i in range(4)})
        panels = [rhos[i] for i in idx]
    fig, axes = new_figure(ncols=len(panels), panel=(5.2, 3.8))
    for k, (ax, rho) in enumerate(zip(axes, panels, strict=True)):
        result.plot(ax=ax, rho=None if math.isnan(rho) else rho, legend=k == len(panels) - 1)
    path = _save(fig, args.out)
    gaps = result.gaps
    if args.json:
        from softleak.compare.table import jsonable

        print(json.dumps(jsonable(gaps.to_dict(orient="records")), indent=2, allow_nan=False))
    else:
        print(f"wrote {path}")
        if gaps.empty:
            print("no theory prediction for this experiment")
        else:
            cols = ["name", "rho", "measured", "ci_low", "ci_high", "predicted", "gap"]
            print(gaps[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if result.leakage is not None:
            print(result.leakage.summary())
    return 0


def _fss(args: argparse.Namespace) -> int:
    _agg()
    from softleak.compare.fss import fit_thresholds_by_d
    from softleak.compare.table import jsonable
    from softleak.compare.thresholds import RULES

    frames, df, by_d = _fss_thresholds(args)
    fits = fit_thresholds_by_d(by_d, nu=args.nu, level=args.level)
    rule = RULES[args.rule]
    coll = _fss_collapse(df, by_d, fits, rule)
    path = _save(_fss_figure(by_d, fits, coll, rule), args.out)
    report = {
        "rule": args.rule,
        "thresholds": by_d.to_dict(orient="records"),
        "fits": [{"condition": cond, **fit.to_dict()} for cond, fit in fits],
        "collapse": None if coll is None else coll.to_dict(),
        "figure": str(path),
        "complete": all(f.attrs.get("complete") is not False for f in frames),
    }
    if args.json:
        print(json.dumps(jsonable(report), indent=2, allow_nan=False))
    else:
        _print_fss(path, fits, coll)
    return 0


def _fss_thresholds(args: argparse.Namespace):
    """The sweeps' tables, their concatenated (``--where``-selected) rows and the rule's
    thresholds per d; a usage error unless the rule is found at two or more d."""
    import pandas as pd

    from softleak.compare.fss import thresholds_by_d
    from softleak.compare.table import select

    frames = [_load(path).frame for path in args.dirs]
    try:
        df = select(pd.concat(frames, ignore_index=True), dict(args.where or []))
        by_d = thresholds_by_d(
            df,
            rules=[args.rule],
            cutoff=args.cutoff,
            n_boot=args.n_boot,
            seed=args.seed,
            level=args.level,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    if by_d.empty or by_d["d"].nunique() < 2:
        raise UsageError(
            f"finite-size scaling needs {args.rule} at two or more d; found d in "
            f"{sorted(set(df['d'].tolist()))}"
        )
    return frames, df, by_d


def _fss_collapse(df, by_d, fits, rule):
    """Collapse the rule's accuracy curves across d when the sweep has one condition (else, or
    when the collapse fails, None)."""
    import numpy as np

    from softleak.compare.fss import collapse
    from softleak.compare.table import seed_matrix

    conditions = by_d.drop_duplicates([c for c in ("rho", "tau", "c") if c in by_d.columns])
    if len(conditions) != 1:
        return None
    rows = df if rule.shuffle is None else df[df["shuffle"] == rule.shuffle]
    curves = {}
    for d, group in rows.groupby("d"):
        x, _, m = seed_matrix(group, rule.metric)
        if x.size >= 2:
            curves[float(d)] = (x, np.nanmean(m, axis=1))
    start = fits[0][1] if fits else None
    try:
        return collapse(
            curves,
            alpha_c0=start.alpha_inf if start else float(by_d["value"].median()),
            nu0=start.nu if start and math.isfinite(start.nu) else 2.0,
        )
    except ValueError:
        return None


def _fss_figure(by_d, fits, coll, rule):
    """The scaling fits (or the bare thresholds when there are none) and, beside them, the
    collapse."""
    from softleak.compare.style import new_figure, sequence_colors

    fig, axes = new_figure(ncols=2 if coll is not None else 1, panel=(5.0, 3.8))
    colors = sequence_colors(max(len(fits), 1))
    for (cond, fit), color in zip(fits, colors, strict=False):
        label = cond.get("name", "")
        if cond.get("rho") is not None:
            label += f", rho={cond['rho']:g}"
        if cond.get("tau") is not None:
            label += f", tau={cond['tau']:g}"
        fit.plot(ax=axes[0], color=color, label=label)
    if not fits:
        axes[0].errorbar(by_d["d"], by_d["value"], yerr=by_d["err"], fmt="o")
        axes[0].set_xscale("log")
        axes[0].set_xlabel("d")
        axes[0].set_title("too few sizes for a scaling fit", fontsize="small")
    if coll is not None:
        coll.plot(ax=axes[1], ylabel=rule.metric.replace("_", " "))
    return fig


def _print_fss(path: Path, fits, coll) -> None:
    """The plain-text report of ``compare fss``."""
    print(f"wrote {path}")
    for cond, fit in fits:
        print(
            f"{cond}: alpha_inf = {fit.alpha_inf:.4g} "
            f"[{fit.ci_low:.4g}, {fit.ci_high:.4g}], nu = {fit.nu:.3g}"
        )
    if coll is not None:
        print(
            f"collapse: alpha_c = {coll.alpha_c:.4g} +- {coll.alpha_c_err:.2g}, "
            f"nu = {coll.nu:.3g} +- {coll.nu_err:.2g}"
            + ("" if coll.success else " (no finite-size scaling found)")
        )
