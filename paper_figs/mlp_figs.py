"""Figs. 6, 7, 16 and 17: one-hidden-layer ReLU teacher and students on random data (sec. 5.2).

Two sweeps serve the four figures (and run once when the figures share a data folder, as
``softleak figs all`` arranges):
- ``mlp-grid``: alpha x rho at tau = 20 -- Fig. 7's phase diagram and accuracies, and (quick
  preset) Fig. 6's accuracy-vs-rho curves at two sample complexities;
- ``mlp-curves``: rho = 0.65 at the four n of Fig. 7C / 16 / 17, normal and within-class shuffled
  soft labels, with learning curves: the sudden joint jump of train and test accuracy, the shuffled
  control that never jumps, and the cross-entropy drop that goes with the jump.

The paper preset uses the paper's sizes (d = 1000, c = 100, p = 500; REFERENCE.md). The quick preset
divides d and p by 10 and n by 100 (``paper_figs.mlp_scale``: the alpha / p collapse of Fig. 19) and
keeps the paper's training settings (``mlp_scale.QUICK_PAPER_TRAINING``) (teacher 2,000 epochs at lr 1e-3, students 10,000 epochs at lr
1e-4): the two mechanisms -- weak leakage that falls while the student memorizes, and the jump to
identification -- are finite-training effects, so the training budget is kept as in the paper.

Theory drawn: parameter-counting estimates (``theory.capacity``, heuristic): the student set size
rho n = (#params - shift) / (c - 1) from which the teacher is determined, and the number of random
labels the teacher can memorize, #params / (2 ln c).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from softleak.compare.claims import SAME_ACCURACY, Claim, judge_present, summary_line, tol_binomial
from softleak.compare.reach import LEVEL
from softleak.compare.table import cell_means, seed_means
from softleak.paper_figs.common import clean, data_dir, linear_grid, save, write_data
from softleak.paper_figs.mlp_scale import PAPER, PAPER_N, MLPScale
from softleak.paper_figs.mlp_scale import QUICK_PAPER_TRAINING as QUICK
from softleak.simulate.data import train_per_class

CURVE_RHO = 0.65  # Figs. 7C, 16, 17
CURVE_N_PAPER = (15_000, 50_000, 100_000, 200_000)  # Figs. 16 / 17: n = 10^3 x {15, 50, 100, 200}
FIG6_N_PAPER = (25_000, 100_000)  # Fig. 6 (A) and (B)

# n = 3,000 (still memorized by the teacher; rho = 0.2 identifies there) is left out of the quick
# grid to keep Fig. 7's quick preset under 15 minutes; the teacher fails from n ~ 4,000.
QUICK_N = (500, 700, 1000, 1500, 2000)
QUICK_RHO = (0.2, 0.35, 0.5, 0.65, 0.8, 0.95)  # rho n / c >= 1 at the smallest n (5 per class)


def grid_sweep(scale: MLPScale, preset: str):
    if preset == "quick":
        # 3 seeds: the claims about differences (fig7.fall_before_jump, fig6's) are judged on >= 3
        return scale.spec(n=QUICK_N, rho=QUICK_RHO, seeds=3, curve_every=250)
    return scale.spec(n=PAPER_N, rho=linear_grid(0.05, 0.95, 10), seeds=5)


def curves_sweep(scale: MLPScale, preset: str):
    # the paper: 5 normal, 2 shuffled runs; quick: 3, the fewest a difference is judged on
    seeds = 3 if preset == "quick" else 5
    return scale.spec(
        n=tuple(scale.n(n) for n in CURVE_N_PAPER),
        rho=(CURVE_RHO,),
        shuffle="both",
        seeds=seeds,
        curve_every=100,
    )


def fig6_sweeps(preset: str) -> dict:
    """Quick: Fig. 6 reads two n of the shared grid. Paper: its own sweep, 10 runs at two n."""
    if preset == "quick":
        return {"mlp-grid": grid_sweep(QUICK, "quick")}
    spec = PAPER.spec(n=FIG6_N_PAPER, rho=linear_grid(0.05, 0.95, 10), seeds=10)
    return {"mlp-fig6": spec}


def presets(sweeps) -> dict:
    """Quick and paper ``Preset``s from ``sweeps(preset) -> {name: spec}``."""
    from softleak.paper_figs.registry import Preset

    return {
        "quick": Preset(
            sweeps("quick"),
            "2-core CPU: d = 100, c = 100, p = 50 (the paper's alpha / p at n / 100), paper "
            "training settings, 3 seeds; fp32 (bf16 passed the validation gate here but trains "
            "no faster at this width: 587 s against 590 s)",
        ),
        "paper": Preset(sweeps("paper"), "the paper's d = 1000, c = 100, p = 500 (GPU-sized)"),
    }


# ---------------------------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------------------------
def dip_and_jump(x: np.ndarray, test: np.ndarray) -> dict:
    """Along a curve of held-out accuracy: where it first reaches LEVEL (the jump), and how far it
    fell before that from its earlier maximum (the dip, from ``peak_at`` down to ``dip_at``; 0
    when it never fell).

    The jump is the first grid point with ``test >= LEVEL`` (``compare.crossings.crossing_index``
    upward with ``which="reach"``, float slack 1e-12), not interpolated.
    """
    x, test = np.asarray(x, dtype=float), np.asarray(test, dtype=float)
    j, peak, trough = fall_points(test)
    before = test[:j]
    reached = j < len(test)
    dip = float(test[peak] - test[trough]) if trough is not None else 0.0
    return {
        "jump_at": clean(x[j]) if reached else None,
        "before_jump_min": clean(before.min()) if before.size else None,
        "dip": clean(dip),
        "dip_at": clean(x[trough]) if trough is not None else None,
        "peak_at": clean(x[peak]) if trough is not None else None,
    }


def fall_points(test: np.ndarray) -> tuple[int, int | None, int | None]:
    """(jump, peak, trough) grid indices of a held-out accuracy curve: the jump as in
    ``dip_and_jump`` (``len(test)`` when it never reaches LEVEL), and the largest fall before it
    from its earlier maximum (peak) to its lowest point (trough); ``None, None`` with fewer than two
    points before the jump. A curve that never falls has peak == trough."""
    from softleak.compare.crossings import crossing_index

    test = np.asarray(test, dtype=float)
    hit = int(crossing_index(test, LEVEL, "up", which="reach", tol=1e-12))
    j = hit if hit >= 0 else len(test)
    before = test[:j]
    if before.size < 2:
        return j, None, None
    drops = np.maximum.accumulate(before) - before
    trough = int(np.argmax(drops))
    peak = int(np.argmax(before[: trough + 1]))
    return j, peak, trough


def counting_estimates(d: int, p: int, c: int) -> dict:
    """Parameter-counting estimates (theory.capacity; heuristic) as sample counts."""
    from softleak.theory.capacity import mlp_identifiability_rho_n, mlp_memorization_n

    ident = mlp_identifiability_rho_n(d, p, c)
    memo = mlp_memorization_n(d, p, c)
    return {
        "identify_rho_n": ident.value,
        "identify_formula": ident.formula,
        "memorize_n": memo.value,
        "memorize_formula": memo.formula,
        "provenance": ident.provenance,
    }


def scale_of(df: pd.DataFrame) -> tuple[int, int, int]:
    first = df.iloc[0]
    return int(first["d"]), int(str(first["p_student"]).split(",")[0]), int(first["c"])


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------
def make_fig6(tables: dict, out: Path, preset: str) -> dict:
    from softleak.compare.style import METRIC_COLORS, METRIC_LABELS, new_figure

    df = next(iter(tables.values()))
    d, p, c = scale_of(df)
    cells = cell_means(df)
    ns = sorted(cells["n"].unique())
    if preset == "quick" or len(ns) > 2:
        # Map the paper's n by parameter counting (n ~ #params ~ p (d + c)): n_paper / 55 here,
        # not the plain alpha / p rule's n_paper / 100, which ignores the c output weights.
        ratio = (p * (d + c)) / (PAPER.p * (PAPER.d + PAPER.c))
        picks = [min(ns, key=lambda v: abs(v - n * ratio)) for n in FIG6_N_PAPER]
        if len(set(picks)) < 2:  # few n (e.g. a shrunken test grid): the two extremes
            picks = [ns[0], ns[-1]]
    else:
        picks = ns
    fig, axes = new_figure(ncols=2, panel=(5.0, 3.8))
    panels = {}
    est = counting_estimates(d, p, c)
    for ax, n, tag in zip(axes, picks, "AB", strict=False):
        rows = cells[cells["n"] == n].sort_values("rho")
        for metric in ("student_train_acc", "student_test_acc"):
            ax.errorbar(
                rows["rho"],
                rows[metric],
                yerr=rows[f"{metric}_sem"].fillna(0),
                color=METRIC_COLORS[metric],
                marker="o",
                ms=4,
                capsize=2,
                label=METRIC_LABELS[metric],
            )
        ax.axhline(
            rows["teacher_train_acc"].mean(),
            color=METRIC_COLORS["teacher_train_acc"],
            ls="-",
            lw=1,
            label=METRIC_LABELS["teacher_train_acc"],
        )
        ax.axhline(
            rows["student_val_acc"].mean(), color="0.5", ls=":", label="student val (chance)"
        )
        rho_id = est["identify_rho_n"] / n
        if rho_id < 1:
            ax.axvline(
                rho_id, color="black", ls="--", lw=1, label="counting: rho n = #params/(c-1)"
            )
        ax.set_xlabel(r"$\rho$")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"({tag}) n = {int(n):,} (alpha = {n / (d * c):.3g})")
        panels[str(int(n))] = {
            "alpha": clean(n / (d * c)),
            "rho": [clean(v) for v in rows["rho"]],
            "student_train_acc": [clean(v) for v in rows["student_train_acc"]],
            "student_test_acc": [clean(v) for v in rows["student_test_acc"]],
            "student_test_acc_sem": [clean(v) for v in rows["student_test_acc_sem"]],
            "teacher_train_acc": clean(rows["teacher_train_acc"].mean()),
            "student_val_acc": clean(rows["student_val_acc"].mean()),
            **dip_and_jump(rows["rho"].to_numpy(), rows["student_test_acc"].to_numpy()),
        }
    axes[-1].legend(fontsize="x-small", frameon=False, loc="center right")
    fig.suptitle(f"ReLU MLP teacher and student: d = {d}, c = {c}, p = {p}")
    files = save(fig, out, "fig6")
    write_data(cells[cells["n"].isin(picks)], out, "fig6_data")
    lines = [f"{'n':>8s} {'alpha':>7s}  student test acc over rho (train acc)"]
    for n, e in panels.items():
        accs = " ".join(
            f"{r:g}:{_f(t, '.2f')}({_f(s, '.2f')})"
            for r, t, s in zip(e["rho"], e["student_test_acc"], e["student_train_acc"], strict=True)
        )
        lines.append(f"{n:>8s} {e['alpha']:7.3g}  {accs}")
        lines.append(
            f"{'':17s}jump to >= {LEVEL} at rho = {e['jump_at']}; largest fall before it "
            f"{_f(e['dip'], '.3f')} (at rho {e['dip_at']})"
        )
    claims = fig6_claims(df, cells, int(picks[0]), int(picks[-1]))
    lines.append(summary_line(claims))
    return {
        "panels": panels,
        "counting": est,
        "files": files,
        "text": "\n".join(lines),
        "claims": claims,
    }


def make_fig7(tables: dict, out: Path, preset: str) -> dict:
    from matplotlib.figure import Figure

    grid = tables["mlp-grid"]
    d, p, c = scale_of(grid)
    grid = grid[(~grid["shuffle"]) & (grid["ablation"] == "none")]
    est = counting_estimates(d, p, c)
    phases = _fig7_phases(grid, d, c, est)
    fig = Figure(figsize=(15.0, 11.5), layout="constrained")
    gs = fig.add_gridspec(3, 12)
    _fig7_phase_panel(fig, gs, phases)
    _fig7_metric_panels(fig, gs, phases)
    curve_axes = [fig.add_subplot(gs[2, 3 * k : 3 * k + 3]) for k in range(4)]
    dips = _fig7_dips(grid)
    curve_summary, lc = _fig7_curve_panels(curve_axes, tables, out)
    for ax in curve_axes:  # fewer curves than cells (a small grid): no empty frames
        if not ax.has_data():
            ax.set_axis_off()
    files = save(fig, out, "fig7")
    write_data(phases.to_frame(), out, "fig7_phases")
    claims = fig7_claims(grid, phases, lc)
    return {
        "phase_counts": phases.counts(),
        "by_rho": dips,
        "curves_rho_0.65": curve_summary,
        "counting": est,
        "files": files,
        "text": _fig7_text(phases, dips, curve_summary) + "\n" + summary_line(claims),
        "claims": claims,
    }


def _fig7_phases(grid: pd.DataFrame, d: int, c: int, est: dict):
    """Fig. 7A's phase diagram over (alpha, rho), with the parameter-counting lines as theory."""
    from softleak.compare import phase_diagram
    from softleak.compare.phases import TheoryLine

    phases = phase_diagram(grid, x="alpha", y="rho", theory=False)
    alphas = np.geomspace(phases.x.min(), phases.x.max(), 200)
    rho_id = est["identify_rho_n"] / (alphas * d * c)
    keep = rho_id <= 1
    lines = [
        TheoryLine(
            "identify_count",
            tuple(alphas[keep]),
            tuple(rho_id[keep]),
            r"counting (heuristic): $\rho n = \#$params$/(c-1)$",
        ),
        TheoryLine(
            "memorize_count",
            (est["memorize_n"] / (d * c),) * 2,
            (0.0, 1.0),
            r"counting (heuristic): $n = \#$params$/(2\ln c)$",
            ":",
        ),
    ]
    return dataclasses.replace(phases, theory_lines=tuple(lines))


def _fig7_phase_panel(fig, gs, phases) -> None:
    """(A): the phase diagram in the first row, its legend in the cell beside it."""
    ax_phase = fig.add_subplot(gs[0, 0:7])
    phases.plot(ax=ax_phase, legend=True)
    ax_phase.set_title("(A) phases", fontsize="medium")
    # The diagram's outside legend defeats constrained layout: move it into its own cell.
    legend = ax_phase.get_legend()
    handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
    legend.remove()
    ax_legend = fig.add_subplot(gs[0, 7:12])
    ax_legend.axis("off")
    ax_legend.legend(handles, labels, loc="center left", fontsize="small", frameon=False)


def _fig7_metric_panels(fig, gs, phases) -> None:
    """(B.1-3): teacher train, student train and student test accuracy over the grid."""
    for k, (metric, title) in enumerate(
        (
            ("teacher_train_acc", r"(B.1) ${\rm acc}^T_*$"),
            ("student_train_acc", r"(B.2) ${\rm acc}^S_{\rm train}$"),
            ("student_test_acc", r"(B.3) ${\rm acc}^S_{\rm test}$"),
        )
    ):
        ax = fig.add_subplot(gs[1, 4 * k : 4 * k + 4])
        phases.plot_metric(metric, ax=ax, colorbar=metric == "student_test_acc", label="accuracy")
        ax.set_title(title, fontsize="medium")


def _fig7_dips(grid: pd.DataFrame) -> dict:
    """Per rho: the jump of the student's test accuracy along alpha and the fall before it."""
    cells = cell_means(grid)
    dips = {}
    for rho, rows in cells.groupby("rho"):
        rows = rows.sort_values("alpha")
        dips[f"{rho:g}"] = dip_and_jump(
            rows["alpha"].to_numpy(), rows["student_test_acc"].to_numpy()
        )
    return dips


def _fig7_curve_panels(curve_axes: list, tables: dict, out: Path) -> tuple[dict, object]:
    """(C): the learning curves at rho = 0.65 per n (when the ``mlp-curves`` sweep is there);
    returns their jump summary and the ``LearningCurves`` (empty and None without curves)."""
    from softleak.compare.curves import learning_curves, read_curves

    if "mlp-curves" not in tables:
        return {}, None
    res = tables["mlp-curves"]
    curves = read_curves(data_dir(tables, "mlp-curves", out))
    if curves.empty:
        return {}, None
    lc = learning_curves(res[~res["shuffle"]], curves, by=("n",))
    final = lc.final.set_index("n")
    for ax, (n,) in zip(curve_axes, sorted(lc.groups()), strict=False):
        lc.plot(ax, group=(n,), log_x=False)
        ax.axhline(final.loc[n, "teacher_train_acc"], color="#228833", lw=1, ls="-")
        ax.axhline(final.loc[n, "student_val_acc"], color="0.5", lw=1, ls=":")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"(C) n = {int(n):,}, rho = {CURVE_RHO}", fontsize="medium")
    curve_axes[0].legend(fontsize="xx-small", frameon=False)
    return _jump_summary(lc), lc


def _fig7_text(phases, dips: dict, curve_summary: dict) -> str:
    """Fig. 7's printed summary: phase counts, the jump per rho, the rise per n."""
    text = [f"phases (cells): {phases.counts()}"]
    text.append(f"{'rho':>6s} {'jump alpha':>11s} {'fall before':>12s} {'at alpha':>9s}")
    for rho, e in dips.items():
        text.append(
            f"{rho:>6s} {fmt_value(e['jump_at']):>11s} {_f(e['dip'], '.3f'):>12s} {fmt_value(e['dip_at']):>9s}"
        )
    for n, e in curve_summary.items():
        text.append(
            f"n = {n}: test acc {_f(e['start'], '.2f')} -> {_f(e['end'], '.2f')}, 10-90% of the rise "
            "between "
            f"epochs {fmt_value(e['epoch_10'])} and {fmt_value(e['epoch_90'])}"
        )
    return "\n".join(text)


def make_fig16(tables: dict, out: Path, preset: str) -> dict:
    """Learning curves of normal vs within-class shuffled students (accuracies)."""
    summary, lc, _ = _curves_figure(
        tables,
        out,
        name="fig16",
        metrics=("student_train_acc", "student_test_acc"),
        ylabel="accuracy",
    )
    summary["claims"] = fig16_claims(tables["mlp-curves"], lc)
    summary["text"] += "\n" + summary_line(summary["claims"])
    return summary


def make_fig17(tables: dict, out: Path, preset: str) -> dict:
    """Cross-entropy on D_train^S and D_test^S along training (the same runs)."""
    from softleak.compare.curves import learning_curves

    summary, lc, curves = _curves_figure(
        tables, out, name="fig17", metrics=("train_ce", "test_ce"), ylabel="cross-entropy"
    )
    res = tables["mlp-curves"]
    acc = learning_curves(res, curves, by=("n", "shuffle"), metrics=("student_test_acc",))
    summary["claims"] = fig17_claims(res, lc, acc)
    summary["text"] += "\n" + summary_line(summary["claims"])
    return summary


def _curves_figure(tables, out, *, name, metrics, ylabel) -> tuple[dict, object, pd.DataFrame]:
    """The figure of normal vs shuffled learning curves of ``metrics``; returns its summary, the
    ``LearningCurves`` and the curves table read."""
    from softleak.compare.curves import learning_curves, read_curves
    from softleak.compare.style import new_figure

    res = tables["mlp-curves"]
    curves = read_curves(data_dir(tables, "mlp-curves", out))
    lc = learning_curves(res, curves, by=("n", "shuffle"), metrics=metrics)
    ns = sorted({g[0] for g in lc.groups()})
    fig, axes = new_figure(ncols=len(ns), panel=(3.6, 3.2))
    axes = np.atleast_1d(axes)
    shuffled_colors = {
        "student_train_acc": "#EE6677",
        "student_test_acc": "#AA3377",
        "train_ce": "#EE6677",
        "test_ce": "#AA3377",
    }
    normal_colors = {"train_ce": "#CC79A7", "test_ce": "#0072B2"}
    for ax, n in zip(axes, ns, strict=True):
        for shuffle in (False, True):
            if (n, shuffle) not in lc.groups():
                continue
            lc.plot(
                ax,
                group=(n, shuffle),
                metrics=metrics,
                colors=shuffled_colors if shuffle else normal_colors,
                label="shuffled " if shuffle else "",
                linestyle="--" if shuffle else "-",
                log_x=False,
            )
        ax.set_title(f"n = {int(n):,}, rho = {CURVE_RHO}", fontsize="medium")
        ax.set_ylabel(ylabel)
        if ylabel == "accuracy":
            ax.set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize="xx-small", frameon=False)
    files = save(fig, out, name)
    write_data(lc.frame, out, f"{name}_curves")
    summary: dict = {}
    lines = [f"{'n':>7s} {'shuffle':>8s} " + " ".join(f"{m + ' start->end':>24s}" for m in metrics)]
    for n, shuffle in sorted(lc.groups()):
        entry = {}
        for metric in metrics:
            m = lc.mean((n, shuffle), metric)
            entry[metric] = {"start": clean(m["mean"].iloc[0]), "end": clean(m["mean"].iloc[-1])}
        if "student_test_acc" in metrics:
            jumps = lc.jumps("student_test_acc")
            row = jumps[(jumps["n"] == n) & (jumps["shuffle"] == shuffle)]
            if not row.empty:
                entry["jump_epoch_50"] = clean(row["epoch_50"].iloc[0])
        else:
            m = lc.mean((n, shuffle), metrics[0])
            # the same rule as fig17's claim (the middle of the steepest step; None without one)
            entry["steepest_train_ce_drop_epoch"] = clean(
                steepest_drop(m["epoch"].to_numpy(), m["mean"].to_numpy())
            )
        summary[f"n{int(n)}_{'shuffled' if shuffle else 'normal'}"] = entry
        cols = " ".join(
            f"{_f(entry[mt]['start'], '.3f'):>11s} -> {_f(entry[mt]['end'], '.3f'):<9s}"
            for mt in metrics
        )
        lines.append(f"{int(n):>7d} {str(bool(shuffle)):>8s} {cols}")
    if "student_test_acc" in metrics:
        summary["same_before_jump"] = _same_before_jump(lc)
        for n, gap in summary["same_before_jump"].items():
            lines.append(
                f"n = {n}: largest |normal - shuffled| test acc before the jump {fmt_value(gap)}"
            )
    return {"runs": summary, "files": files, "text": "\n".join(lines)}, lc, curves


def gap_before_onset(lc, metric: str = "student_test_acc") -> dict[int, float]:
    """Per n: the largest |normal - shuffled| mean ``metric`` before the normal student's held-out
    rise reaches 10% of its height (its whole run where it does not rise); n without both curves
    or without a common record are left out."""
    onset = _normal(lc.jumps("student_test_acc")).set_index("n")["epoch_10"]
    out = {}
    for n in sorted({g[0] for g in lc.groups()}):
        if (n, False) not in lc.groups() or (n, True) not in lc.groups():
            continue
        a = lc.mean((n, False), metric).set_index("epoch")["mean"]
        b = lc.mean((n, True), metric).set_index("epoch")["mean"]
        both = pd.concat([a, b], axis=1, keys=["a", "b"]).dropna()
        start = onset.get(n, math.nan)
        if math.isfinite(start):
            both = both[both.index <= start]
        if not both.empty:
            out[int(n)] = float((both["a"] - both["b"]).abs().max())
    return out


def _same_before_jump(lc) -> dict:
    """Per n (the summary's keys): :func:`gap_before_onset` of the held-out accuracy (the paper:
    'before the student generalizes to the teacher function, it obtains the same accuracy as the
    shuffled student')."""
    return {str(n): clean(v) for n, v in gap_before_onset(lc).items()}


def _jump_summary(lc) -> dict:
    out = {}
    for rec in lc.jumps("student_test_acc").to_dict("records"):
        out[str(int(rec["n"]))] = {
            k: clean(rec[k]) for k in ("start", "end", "peak", "epoch_10", "epoch_50", "epoch_90")
        }
    return out


# ---------------------------------------------------------------------------------------------
# claims (judged by ``compare.claims``; this section only measures)
# ---------------------------------------------------------------------------------------------
#: The paper's n of the third panel of Figs. 7C / 16 / 17 (C.3), where the student identifies the
#: teacher after a jump in training time.
C3_N_PAPER = 100_000
#: Seeds of the paper's runs: Fig. 6 (10 runs), Figs. 7 and 16-17 (5).
PAPER_SEEDS_FIG6 = 10
PAPER_SEEDS = 5

FIG6_CLAIMS = (
    Claim(
        "fig6.a_memorizes",
        "At the lower sample complexity (Fig. 6A, n = 25,000) the student memorizes its own "
        "training set perfectly at every rho (sec. 5.2).",
        paper=1.0,
    ),
    Claim(
        "fig6.a_test_rises_with_rho",
        "At the lower sample complexity the student's held-out accuracy increases monotonically "
        "with rho, as for the logistic regression of Fig. 4D (sec. 5.2, Fig. 6A).",
    ),
    Claim(
        "fig6.leaks_above_chance",
        "In all cases shown some information leaks: the student's held-out accuracy exceeds its "
        "accuracy on data the teacher never saw, acc_val^S (Fig. 6 caption).",
    ),
    Claim(
        "fig6.b_falls_with_rho",
        "At the higher sample complexity (Fig. 6B, n = 100,000) the held-out accuracy first "
        "slowly drops with rho while the teacher stays perfect (sec. 5.2).",
    ),
    Claim(
        "fig6.b_below_a",
        "In that phase the held-out accuracy is lower than at the same rho at the lower sample "
        "complexity (sec. 5.2, Fig. 6A vs 6B).",
    ),
    Claim(
        "fig6.b_jumps_to_full",
        "After the drop, student train and held-out accuracy both jump to 100% (sec. 5.2, "
        "Fig. 6B).",
        paper=1.0,
    ),
)

FIG7_CLAIMS = (
    Claim(
        "fig7.regimes_teacher_memorizes",
        "Where the teacher memorizes, Fig. 7A shows weak leakage with memorization of "
        "D_train^S (blue), weak leakage without it (light blue) and full recovery (green) "
        "(sec. 5.2).",
        paper=["weak leakage", "weak leakage without memorization", "full recovery"],
    ),
    Claim(
        "fig7.regimes_teacher_fails",
        "Where the teacher cannot memorize, Fig. 7A shows students that fit the teacher "
        "nonetheless (orange) and students that do not (red) (Fig. 7 caption).",
        paper=["teacher fails, student matches", "neither"],
    ),
    Claim(
        "fig7.memorization_fails_before_identification",
        "Memorization fails before teacher identification succeeds, alpha_label^S < "
        "alpha_id^S: along alpha the student stops fitting D_train^S before its held-out "
        "accuracy reaches 100% (sec. 5.2).",
    ),
    Claim(
        "fig7.fall_before_jump",
        "The held-out accuracy acc_test^S decreases with the sample complexity alpha before it "
        "increases to 100% (sec. 5.2, Fig. 7B).",
    ),
    Claim(
        "fig7.joint_jump_in_time",
        "At rho = 0.65, train and held-out accuracy jump to 100% together as functions of the "
        "student's training time, at t ~ 100 in the paper (sec. 5.2, Fig. 7C.3).",
        paper="t ~ 100",
    ),
)

FIG16_CLAIMS = (
    Claim(
        "fig16.shuffled_never_jumps",
        "The student trained on within-class shuffled soft labels never jumps: its held-out "
        "accuracy stays at chance at every n (app. D.3, Fig. 16, red).",
    ),
    Claim(
        "fig16.normal_beats_shuffled",
        "Where the normal student identifies the teacher, its held-out accuracy exceeds that of "
        "the shuffled control on the same teacher (app. D.3, Fig. 16).",
    ),
    Claim(
        "fig16.same_train_acc_before_jump",
        "Before the student generalizes to the teacher function its training accuracy is that of "
        "the shuffled student (it first memorizes), up to the third panel, n = 100,000 "
        "(app. D.3; sec. 5.2).",
    ),
)

FIG17_CLAIMS = (
    Claim(
        "fig17.ce_drops_at_jump",
        "The cross-entropy on D_train^S and D_test^S drops at the moment the accuracy jumps "
        "(app. D.3, Fig. 17; sec. 5.2).",
    ),
    Claim(
        "fig17.ce_below_shuffled",
        "The loss drops significantly: where the student identifies the teacher its final "
        "training cross-entropy lies below that of the within-class shuffled control "
        "(app. D.3, Figs. 16-17).",
    ),
)


def seed_values(df: pd.DataFrame, index: Sequence[str], metric: str) -> pd.DataFrame:
    """Per-seed means of ``metric`` of the unshuffled, unablated runs: index ``index``, one column
    per seed (teacher replicate)."""
    rows = df[(~df["shuffle"].astype(bool)) & (df["ablation"] == "none")]
    return seed_means(rows, index, metric, wide=True)


def loo_falls(per_seed: pd.DataFrame, group: str) -> dict:
    """Leave-one-seed-out falls of the held-out accuracy before its jump, one per seed.

    ``per_seed``: index (group, x) sorted along x within each group, one column per seed. For seed
    s and each group, the largest fall before the jump is located on the mean of the *other* seeds
    (``fall_points``: its earlier peak and its trough); s's fall is its own accuracy at the trough
    minus at the peak. Locating the points without s's noise keeps the read unbiased (located on
    the mean of all seeds, pure noise would show a fall on average). Per seed: the mean over
    the groups where the others' mean falls (NaN where none does); {} with fewer than 2 seeds.
    """
    seeds = list(per_seed.columns)
    if len(seeds) < 2:
        return {}
    out = {}
    for s in seeds:
        others = per_seed.drop(columns=s).mean(axis=1)
        falls = []
        for g in per_seed.index.get_level_values(group).unique():
            rest = others.xs(g, level=group).dropna()
            _, peak, trough = fall_points(rest.to_numpy())
            if trough is None or peak == trough:
                continue
            own = per_seed[s].xs(g, level=group).reindex(rest.index).to_numpy(dtype=float)
            falls.append(own[trough] - own[peak])  # NaN where seed s lacks a point
        falls = [v for v in falls if np.isfinite(v)]
        out[s] = float(np.mean(falls)) if falls else math.nan
    return out


def held_out_size(n: int, rho: float, c: int) -> int:
    """|D_test^S|: per class n/c minus the int(rho n/c) training samples (``student_split``)."""
    per_class = n // c
    return c * (per_class - train_per_class(per_class, rho))


def n_matching(ns, n_paper: float, d: int, p: int, c: int) -> int:
    """Of the grid's n, the one nearest the paper's ``n_paper`` at equal alpha / p (Fig. 19's
    collapse, the rule of ``mlp_scale``)."""
    target = n_paper / (PAPER.d * PAPER.c * PAPER.p) * (d * c * p)
    return min(ns, key=lambda v: abs(math.log(v / target)))


def fig6_claims(df: pd.DataFrame, cells: pd.DataFrame, n_a: int, n_b: int) -> list[dict]:
    """Fig. 6's claims from the grid runs ``df``, their cell means and the two panels' n."""
    from softleak.compare.claims import (
        judge_bound,
        judge_monotone,
        judge_paired,
        judge_sign,
        untested,
    )

    c_mem, c_rise, c_leak, c_fall, c_below, c_jump = FIG6_CLAIMS
    c = int(df["c"].iloc[0])
    epochs = int(df["student_epochs"].iloc[0])
    a = cells[cells["n"] == n_a].sort_values("rho")
    b = cells[cells["n"] == n_b].sort_values("rho")
    training = (
        f"students train {epochs:,} epochs at this preset; the paper preset (d = 1000, n = "
        "25,000 and 100,000) tests it"
    )
    out = [
        judge_bound(
            c_mem,
            a["student_train_acc"].min(),
            at_least=LEVEL,
            what=f"min over rho of acc_train^S at n = {n_a:,}",
            why_not=training,
        )
    ]
    # Tolerance: two binomial standard errors of the noisiest cell's seed-mean held-out accuracy
    # (|D_test^S| samples per seed): steps smaller than that are noise, not a fall.
    acc = a["student_test_acc"].to_numpy(dtype=float)
    size = np.array([held_out_size(n_a, r, c) for r in a["rho"]]) * a["n_seeds"].to_numpy()
    tol = tol_binomial(acc, size, k=2)
    out.append(
        judge_monotone(
            c_rise,
            acc,
            increasing=True,
            tol=tol,
            what=f"acc_test^S over rho at n = {n_a:,} (tolerance: two binomial standard errors "
            "of the noisiest cell)",
            why_not=training,
        )
    )
    both = cells[cells["n"].isin([n_a, n_b])]
    out.append(
        judge_paired(
            c_leak,
            both["student_test_acc"] - both["student_val_acc"],
            sign=1,
            what="acc_test^S - acc_val^S across the (n, rho) cells of both panels",
            why_not="the preset's two panels hold fewer than 5 cells; the quick preset tests it",
        )
    )
    if n_a == n_b:
        why = "the grid has one n: panel B needs a second, larger n (the quick preset has it)"
        out.append(untested(c_fall, why, criterion="mean fall of acc_test^S over rho < 0"))
        out.append(untested(c_below, why, criterion="mean acc_test^S(B) - acc_test^S(A) < 0"))
        out.append(untested(c_jump, why, criterion=f"acc^S at the largest rho >= {LEVEL:g}"))
        return out
    test = seed_values(df, ("n", "rho"), "student_test_acc")
    falls = loo_falls(test.loc[[n_b]], "n")
    out.append(
        judge_sign(
            c_fall,
            falls.values(),
            sign=-1,
            what=f"leave-one-seed-out fall of acc_test^S before its jump along rho at n = "
            f"{n_b:,} (own value at the others' trough minus at their earlier peak)",
            note=f"teacher train acc {b['teacher_train_acc'].mean():.3f} at n = {n_b:,}",
            why_not="the fall is small against the seeds' noise at this scale; the paper preset "
            f"(d = 1000, {PAPER_SEEDS_FIG6} seeds) tests it",
        )
    )
    # The phase of the drop: rho where the student at n_B no longer fits its set (train < LEVEL).
    phase = b.loc[b["student_train_acc"] < LEVEL, "rho"].to_numpy()
    if phase.size == 0:
        out.append(
            untested(
                c_below,
                f"the student fits its set at every rho at n = {n_b:,} (no phase to compare); "
                "the quick preset (n = 2,000) has one",
                criterion="mean over that phase's rho of acc_test^S(B) - acc_test^S(A) < 0",
            )
        )
    else:
        diff = test.loc[n_b].loc[phase] - test.loc[n_a].reindex(phase)
        out.append(
            judge_sign(
                c_below,
                diff.mean(axis=0).to_numpy(),
                sign=-1,
                what=f"acc_test^S(n = {n_b:,}) - acc_test^S(n = {n_a:,}) averaged over the rho "
                f"where the student at n = {n_b:,} no longer fits its set "
                f"({', '.join(f'{r:g}' for r in phase)}), per seed",
                why_not=f"{training} (the drop is a finite-training effect)",
            )
        )
    top = b.iloc[-1]
    out.append(
        judge_bound(
            c_jump,
            min(top["student_train_acc"], top["student_test_acc"]),
            at_least=LEVEL,
            what=f"min(acc_train^S, acc_test^S) at the largest rho ({top['rho']:g}) at n = {n_b:,}",
            note=f"jump to >= {LEVEL:g} along rho at "
            f"{dip_and_jump(b['rho'].to_numpy(), b['student_test_acc'].to_numpy())['jump_at']}",
            why_not=training,
        )
    )
    return out


def fig7_claims(grid: pd.DataFrame, phases, lc) -> list[dict]:
    """Fig. 7's claims from the unshuffled grid runs, its phase diagram and (when the
    ``mlp-curves`` sweep is there) the learning curves at rho = 0.65 (``lc``, else None)."""
    from softleak.compare.claims import judge_bound, judge_sign, untested
    from softleak.compare.crossings import threshold_crossing
    from softleak.compare.phases import FULL, MATCH, NEITHER, WEAK, WEAK_NO_MEM

    c_mem, c_fail, c_order, c_fall, c_time = FIG7_CLAIMS
    counts = phases.counts()
    ns = sorted(grid["n"].unique())
    grid_text = f"n {ns[0]:,}-{ns[-1]:,}"
    out = []
    wanted = (WEAK, WEAK_NO_MEM, FULL)
    out.append(
        judge_present(
            c_mem,
            counts,
            wanted,
            note=f"cells: {counts}",
            why_not=f"the preset's grid ({grid_text}) does not reach every regime; the quick "
            "preset (n 500-2,000, rho 0.2-0.95) spans them",
        )
    )
    fails = (phases.metrics["teacher_train_acc"] < LEVEL).sum()
    wanted = (MATCH, NEITHER)
    criterion = f"number of the {len(wanted)} regimes with a cell on the grid >= {len(wanted)}"
    if not fails:
        out.append(
            untested(
                c_fail,
                f"the teacher memorizes at every n of this grid ({grid_text}); the paper preset "
                "(n to 250,000, past the teacher's capacity) tests it",
                criterion=criterion,
            )
        )
    else:
        out.append(
            judge_present(
                c_fail,
                counts,
                wanted,
                note=f"{int(fails)} cell(s) where the teacher fails",
                why_not="few cells past the teacher's capacity on this grid; the paper preset "
                "(n to 250,000) spans them",
            )
        )
    # Per rho, on the seed-mean grid where the teacher memorizes: alpha_label^S (the student no
    # longer fits its set) and alpha_id^S (it identifies the teacher), by the threshold rule
    # (compare.crossings.threshold_crossing; never crossing on the grid counts as past its end).
    cells = cell_means(grid).sort_values(["rho", "alpha"])
    cells = cells[cells["teacher_train_acc"] >= LEVEL]
    order = {}
    for rho, rows in cells.groupby("rho"):
        alpha = rows["alpha"].to_numpy(dtype=float)
        stop, ident = (
            threshold_crossing(alpha, rows[metric].to_numpy(dtype=float), LEVEL, direction)
            for metric, direction in (("student_train_acc", "down"), ("student_test_acc", "up"))
        )
        if ident.censored == "below" or stop.censored == ident.censored == "above":
            continue  # identifies from the first alpha, or neither happens: nothing to order
        order[f"{rho:g}"] = bool(_past_end(stop) < _past_end(ident))
    if not order:
        out.append(
            untested(
                c_order,
                "at no rho of this grid does the student stop fitting its set or identify the "
                "teacher where the teacher memorizes; the quick preset tests it",
                criterion="fraction of rho where the student stops fitting D_train^S at a "
                f"smaller alpha than acc_test^S reaches {LEVEL:g}: >= 1",
            )
        )
    else:
        out.append(
            judge_bound(
                c_order,
                sum(order.values()) / len(order),
                at_least=1.0,
                what="fraction of rho (where either happens while the teacher memorizes) at "
                "which the student "
                f"stops fitting D_train^S (train < {LEVEL:g}) at a smaller alpha than "
                f"acc_test^S reaches {LEVEL:g}",
                note="per rho: " + ", ".join(f"{r}: {v}" for r, v in order.items()),
                why_not="between two grid points of alpha the student can go from memorizing "
                "to identifying; the paper preset's 21 n resolve the band",
            )
        )
    test = seed_values(grid, ("rho", "alpha"), "student_test_acc")
    falls = loo_falls(test, "rho")
    out.append(
        judge_sign(
            c_fall,
            falls.values(),
            sign=-1,
            what="leave-one-seed-out fall of acc_test^S before its jump along alpha (own value "
            "at the other seeds' trough minus at their earlier peak, averaged over rho)",
            why_not="the fall is small against the seeds' noise at this scale (d = 100, p = 50); "
            "the paper preset (d = 1000) tests it",
        )
    )
    out.append(_joint_jump_claim(c_time, lc))
    return out


def _past_end(found) -> float:
    """A ``compare.crossings.Crossing`` as a position: its value, -inf before the grid, +inf
    past it."""
    if found.censored is None:
        return found.value
    return -math.inf if found.censored == "below" else math.inf


def _identifying(lc) -> list:
    """The n whose normal (unshuffled) student's mean held-out accuracy ends at or above LEVEL
    after a located rise."""
    jumps = _normal(lc.jumps("student_test_acc"))
    hit = jumps[(jumps["end"] >= LEVEL) & jumps["epoch_10"].notna()]
    return sorted(hit["n"].unique())


def _normal(frame: pd.DataFrame) -> pd.DataFrame:
    """The unshuffled rows of a table (all of them without a ``shuffle`` column)."""
    if "shuffle" not in frame.columns:
        return frame
    return frame[~frame["shuffle"].astype(bool)]


def outside(epoch: float, lo: float, hi: float) -> float:
    """How many epochs ``epoch`` lies outside [lo, hi] (0 inside)."""
    return float(max(0.0, lo - epoch, epoch - hi))


def record_step(lc) -> float:
    """The spacing of the curves' records (epochs)."""
    epochs = np.unique(lc.frame["epoch"].to_numpy(dtype=float))
    return float(np.diff(epochs).min()) if epochs.size > 1 else math.nan


def _joint_jump_claim(claim, lc) -> dict:
    """Fig. 7C: where the student identifies the teacher, the midpoint of the rise of its train
    accuracy lies inside the 10%-90% window of the rise of its held-out accuracy."""
    from softleak.compare.claims import judge_bound, untested

    criterion = (
        "epochs by which acc_train^S's 50% rise lies outside acc_test^S's 10%-90% rise window, "
        "at most one curve record"
    )
    if lc is None:
        return untested(claim, "no learning curves in this run", criterion=criterion)
    ns = _identifying(lc)
    if not ns:
        return untested(
            claim,
            f"at no n of this preset does the student's mean held-out accuracy reach {LEVEL:g} "
            "after a rise; the quick preset (n = 1,000 and 2,000) tests it",
            criterion=criterion,
        )
    test = _normal(lc.jumps("student_test_acc")).set_index("n")
    train = _normal(lc.jumps("student_train_acc")).set_index("n")
    gaps, notes = {}, []
    for n in ns:
        t, s = test.loc[n], train.loc[n]
        # A train accuracy that does not rise (it was fitted from the start) counts as outside by
        # the whole run.
        gaps[int(n)] = (
            outside(s["epoch_50"], t["epoch_10"], t["epoch_90"])
            if np.isfinite(s["epoch_50"])
            else float(lc.frame["epoch"].max())
        )
        notes.append(
            f"n = {int(n):,}: test rises 10-90% over epochs {t['epoch_10']:.0f}-"
            f"{t['epoch_90']:.0f}, train 50% at {s['epoch_50']:.0f}"
        )
    step = record_step(lc)
    # Tolerance: one record of the curves (epochs between two recorded points).
    return judge_bound(
        claim,
        max(gaps.values()),
        at_most=step,
        what="epochs by which acc_train^S's 50% rise lies outside acc_test^S's 10%-90% rise "
        f"window (worst of n = {', '.join(f'{n:,}' for n in gaps)}; tolerance: one curve "
        f"record, {step:g} epochs)",
        note="; ".join(notes) + " (the paper's t ~ 100 has no stated unit: not compared)",
        why_not="the student memorizes its set before its held-out accuracy jumps (finite "
        "training at this scale); the paper preset (d = 1000) tests it",
    )


def _final(res: pd.DataFrame, metric: str) -> pd.DataFrame:
    """End-of-training ``metric`` per (n, seed) (index) and shuffle (columns False / True): each
    seed's normal and shuffled students learn from the same teacher."""
    rows = res[res["ablation"] == "none"] if "ablation" in res.columns else res
    table = seed_means(rows, ["n", "shuffle"], metric)[metric].unstack("shuffle")
    return table.reindex(columns=[False, True])


def identity_shuffle_ns(res: pd.DataFrame) -> list:
    """The n whose student set holds at most one sample per class (the within-class shuffle
    permutes nothing there)."""
    rho, c = float(res["rho"].iloc[0]), int(res["c"].iloc[0])
    return [n for n in sorted(res["n"].unique()) if train_per_class(int(n) // c, rho) <= 1]


def fig16_claims(res: pd.DataFrame, lc) -> list[dict]:
    """Fig. 16's claims from the ``mlp-curves`` runs (normal and shuffled) and their accuracy
    learning curves (``lc``, grouped by n and shuffle)."""
    from softleak.compare.claims import judge_bound, judge_close, judge_sign, untested
    from softleak.compare.phases import default_weak_cutoff

    c_never, c_beats, c_same = FIG16_CLAIMS
    c = int(res["c"].iloc[0])
    d, p = scale_of(res)[:2]
    same = identity_shuffle_ns(res)
    skip = (
        f"n = {', '.join(f'{int(n):,}' for n in same)} left out: one training sample per class, "
        "so the shuffle is the identity"
        if same
        else ""
    )
    final = _final(res, "student_test_acc")
    means = final.groupby(level="n").mean()
    shuffled = means.loc[[n for n in means.index if n not in same], True].dropna()
    cut = default_weak_cutoff(c)
    if shuffled.empty:
        out = [
            untested(
                c_never,
                "every n of this preset has one training sample per class (an identity "
                "shuffle); the quick preset (n >= 500) tests it",
                criterion=f"max over n of the shuffled acc_test^S <= {cut:g}",
            )
        ]
    else:
        out = [
            judge_bound(
                c_never,
                shuffled.max(),
                at_most=cut,
                what="max over n of the shuffled student's final acc_test^S (bound: chance + "
                "0.05, the phase diagram's no-leakage cut-off)",
                note=skip,
                why_not="the shuffled student still carries its class's soft-label statistics; "
                "the paper preset (d = 1000) tests it",
            )
        ]
    ns = _identifying(lc)
    criterion = "mean final acc_test^S normal - shuffled > 0 over seeds"
    if not ns:
        out.append(
            untested(
                c_beats,
                f"the normal student does not reach {LEVEL:g} held-out accuracy at any n of "
                "this preset; the quick preset (n = 1,000, 2,000) tests it",
                criterion=criterion,
            )
        )
    else:
        diff = (final[False] - final[True]).unstack("seed").loc[ns].mean(axis=0)
        out.append(
            judge_sign(
                c_beats,
                diff.to_numpy(),
                sign=1,
                what="final acc_test^S normal - shuffled on the same teacher, averaged over n = "
                + ", ".join(f"{int(n):,}" for n in ns),
                why_not="the normal student's jump is not reached by every seed at this preset",
            )
        )
    # The normal and shuffled mean training accuracy before the normal student's test rise (its
    # 10% epoch; the whole run where it does not rise), at every n up to the third panel's.
    n3 = n_matching(sorted(res["n"].unique()), C3_N_PAPER, d, p, c)
    gaps = {
        n: gap
        for n, gap in gap_before_onset(lc, "student_train_acc").items()
        if n <= n3 and n not in same
    }
    # Tolerance: 0.05 of accuracy, what we read as "the same" on the paper's 0-1 accuracy axis (a
    # choice; the paper gives no number).
    what = (
        "largest |normal - shuffled| mean acc_train^S before the normal student's held-out rise, "
        f"over n <= {int(n3):,} (tolerance: 0.05)"
    )
    if not gaps:
        out.append(
            untested(
                c_same,
                "no n up to the third panel's with a non-identity shuffle at this preset; the "
                "quick preset tests it",
                criterion=f"{what} within 0.05 of 0",
            )
        )
    else:
        out.append(
            judge_close(
                c_same,
                max(gaps.values()),
                0.0,
                SAME_ACCURACY,
                what=what,
                note="per n: "
                + ", ".join(f"{n:,}: {g:.3f}" for n, g in gaps.items())
                + (f"; {skip}" if skip else ""),
                why_not="the shuffled student memorizes its permuted soft labels more slowly "
                "than the normal one fits its own at this scale (finite training); the paper "
                "preset (d = 1000) tests it",
            )
        )
    return out


def steepest_drop(epochs: np.ndarray, values: np.ndarray) -> float:
    """The middle of the step between records where a curve falls most (NaN without a fall)."""
    epochs, values = np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)
    if values.size < 2:
        return math.nan
    drops = -np.diff(values)
    k = int(np.nanargmax(drops)) if np.isfinite(drops).any() else -1
    if k < 0 or drops[k] <= 0:
        return math.nan
    return float((epochs[k] + epochs[k + 1]) / 2)


def fig17_claims(res: pd.DataFrame, lc, acc) -> list[dict]:
    """Fig. 17's claims from the ``mlp-curves`` runs, their cross-entropy curves (``lc``) and
    accuracy curves (``acc``), both grouped by n and shuffle."""
    from softleak.compare.claims import judge_bound, judge_sign, untested

    c_drop, c_below = FIG17_CLAIMS
    ns = _identifying(acc)
    none = (
        f"the normal student does not reach {LEVEL:g} held-out accuracy at any n of this "
        "preset; the quick preset (n = 1,000, 2,000) tests it"
    )
    criterion = (
        "epochs by which the steepest drop of train and test CE lies outside acc_test^S's "
        "10%-90% rise window, at most one curve record"
    )
    if not ns:
        out = [untested(c_drop, none, criterion=criterion)]
    else:
        window = _normal(acc.jumps("student_test_acc")).set_index("n")
        gaps, notes = {}, []
        for n in ns:
            lo, hi = window.loc[n, "epoch_10"], window.loc[n, "epoch_90"]
            for metric in ("train_ce", "test_ce"):
                m = lc.mean((n, False), metric)
                at = steepest_drop(m["epoch"], m["mean"])
                # A CE that never falls counts as outside by the whole run.
                gaps[(int(n), metric)] = (
                    outside(at, lo, hi) if np.isfinite(at) else float(m["epoch"].max())
                )
                notes.append(f"n = {int(n):,} {metric}: steepest drop at epoch {at:.0f}")
            notes[-2] += f" (test acc rises over epochs {lo:.0f}-{hi:.0f})"
        step = record_step(lc)
        # Tolerance: one record of the curves (epochs between two recorded points).
        out = [
            judge_bound(
                c_drop,
                max(gaps.values()),
                at_most=step,
                what="epochs by which the steepest drop of the mean train and test CE lies "
                "outside acc_test^S's 10%-90% rise window (worst of both, n = "
                f"{', '.join(f'{int(n):,}' for n in ns)}; tolerance: one curve record, "
                f"{step:g} epochs)",
                note="; ".join(notes),
                why_not="the CE falls most early in training, while the student fits its set, "
                "at this scale; the paper preset (d = 1000) tests it",
            )
        ]
    criterion = "mean final train CE normal - shuffled < 0 over seeds"
    if not ns:
        out.append(untested(c_below, none, criterion=criterion))
        return out
    final = _final(res, "train_ce")
    diff = (final[False] - final[True]).unstack("seed").loc[ns].mean(axis=0)
    out.append(
        judge_sign(
            c_below,
            diff.to_numpy(),
            sign=-1,
            what="final train CE normal - shuffled on the same teacher, averaged over n = "
            + ", ".join(f"{int(n):,}" for n in ns),
            why_not="the shuffled control's CE falls as far at this preset (finite training)",
        )
    )
    return out


def _f(value, spec: str) -> str:
    """Format a number that may be None/NaN (then "-")."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def fmt_value(value) -> str:
    """A number as ``:g``, or "-" for None and NaN (the MLP and class figures' text cells)."""
    return (
        "-"
        if value is None or (isinstance(value, float) and not math.isfinite(value))
        else f"{value:g}"
    )
