"""Figs. 6, 7, 16 and 17: one-hidden-layer ReLU teacher and students on random data (sec. 5.2).

Two sweeps serve the four figures (and run once when the figures share a data folder, as
``softleak figs all`` arranges):
- ``mlp-grid``: alpha x rho at tau = 20 -- Fig. 7's phase diagram and accuracies, and (quick
  preset) Fig. 6's accuracy-vs-rho curves at two sample complexities;
- ``mlp-curves``: rho = 0.65 at the four n of Fig. 7C / 16 / 17, normal and within-class shuffled
  soft labels, with learning curves: the sudden joint jump of train and test accuracy, the shuffled
  control that never jumps, and the cross-entropy drop that goes with the jump.

The paper preset uses the paper's sizes (d = 1000, c = 100, p = 500; docs/reference.md). The quick preset
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
from pathlib import Path

import numpy as np
import pandas as pd

from softleak.compare.claims import summary_line
from softleak.compare.table import cell_means
from softleak.paper_figs.common import clean, data_dir, linear_grid, save, write_data
from softleak.paper_figs.mlp_claims import fig6_claims, fig7_claims
from softleak.paper_figs.mlp_curve_claims import fig16_claims, fig17_claims
from softleak.paper_figs.mlp_measures import (
    LEVEL,
    counting_estimates,
    dip_and_jump,
    fmt_num,
    fmt_value,
    gap_before_onset,
    scale_of,
    steepest_drop,
)
from softleak.paper_figs.mlp_scale import PAPER, PAPER_N, MLPScale
from softleak.paper_figs.mlp_scale import QUICK_PAPER_TRAINING as QUICK

CURVE_RHO = 0.65  # Figs. 7C, 16, 17
CURVE_N_PAPER = (15_000, 50_000, 100_000, 200_000)  # Figs. 16 / 17: n = 10^3 x {15, 50, 100, 200}
FIG6_N_PAPER = (25_000, 100_000)  # Fig. 6 (A) and (B)

# n = 3,000 (still memorized by the teacher; rho = 0.2 identifies there) is left out of the quick
# grid to keep Fig. 7's quick preset under 15 minutes; the teacher fails from n ~ 4,000. n = 500
# (5 per class) was dropped: there int(rho n/c) gives 1, 1, 2, 3, 4, 4 rows per class, so rho 0.35
# and 0.95 silently repeated 0.2 and 0.8; 700 is the smallest n where the six rhos are six
# training sets (``simulate.realized`` refuses the collapse).
QUICK_N = (700, 1000, 1500, 2000)
QUICK_RHO = (0.2, 0.35, 0.5, 0.65, 0.8, 0.95)  # distinct int(rho n/c) >= 1 from n = 700 up


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
# figures
# ---------------------------------------------------------------------------------------------
def make_fig6(tables: dict, out: Path, preset: str) -> dict:
    from softleak.compare.style import new_figure

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
        panels[str(int(n))] = _fig6_panel(ax, rows, n, tag, d, c, est)
    axes[-1].legend(fontsize="x-small", frameon=False, loc="center right")
    fig.suptitle(f"ReLU MLP teacher and student: d = {d}, c = {c}, p = {p}")
    files = save(fig, out, "fig6")
    write_data(cells[cells["n"].isin(picks)], out, "fig6_data")
    lines = [f"{'n':>8s} {'alpha':>7s}  student test acc over rho (train acc)"]
    for n, e in panels.items():
        accs = " ".join(
            f"{r:g}:{fmt_num(t, '.2f')}({fmt_num(s, '.2f')})"
            for r, t, s in zip(e["rho"], e["student_test_acc"], e["student_train_acc"], strict=True)
        )
        lines.append(f"{n:>8s} {e['alpha']:7.3g}  {accs}")
        lines.append(
            f"{'':17s}jump to >= {LEVEL} at rho = {e['jump_at']}; largest fall before it "
            f"{fmt_num(e['dip'], '.3f')} (at rho {e['dip_at']})"
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


def _fig6_panel(ax, rows: pd.DataFrame, n, tag: str, d: int, c: int, est: dict) -> dict:
    """One panel of Fig. 6 (student accuracies over rho at one n) and its summary entry."""
    from softleak.compare.style import METRIC_COLORS, METRIC_LABELS

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
    ax.axhline(rows["student_val_acc"].mean(), color="0.5", ls=":", label="student val (chance)")
    rho_id = est["identify_rho_n"] / n
    if rho_id < 1:
        ax.axvline(rho_id, color="black", ls="--", lw=1, label="counting: rho n = #params/(c-1)")
    ax.set_xlabel(r"$\rho$")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"({tag}) n = {int(n):,} (alpha = {n / (d * c):.3g})")
    return {
        "alpha": clean(n / (d * c)),
        "rho": [clean(v) for v in rows["rho"]],
        "student_train_acc": [clean(v) for v in rows["student_train_acc"]],
        "student_test_acc": [clean(v) for v in rows["student_test_acc"]],
        "student_test_acc_sem": [clean(v) for v in rows["student_test_acc_sem"]],
        "teacher_train_acc": clean(rows["teacher_train_acc"].mean()),
        "student_val_acc": clean(rows["student_val_acc"].mean()),
        **dip_and_jump(rows["rho"].to_numpy(), rows["student_test_acc"].to_numpy()),
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
            f"{rho:>6s} {fmt_value(e['jump_at']):>11s} {fmt_num(e['dip'], '.3f'):>12s} {fmt_value(e['dip_at']):>9s}"
        )
    for n, e in curve_summary.items():
        text.append(
            f"n = {n}: test acc {fmt_num(e['start'], '.2f')} -> {fmt_num(e['end'], '.2f')}, 10-90% of the rise "
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
            f"{fmt_num(entry[mt]['start'], '.3f'):>11s} -> {fmt_num(entry[mt]['end'], '.3f'):<9s}"
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
