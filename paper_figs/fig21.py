"""Fig. 21: held-out accuracy against the student's width p_S in the weak-leakage phase, per rho.

ReLU MLPs, p_T = 500, n_per_class = 250 (n = 25,000), d = 1000, c = 100, tau = 20, p_S in {100,
200, 250, 300, 400, 500, 600, 750, 1000, 2000}, rho varied, 5 repeats with SEM (appendix D.4.2).
The paper: the student does not match the teacher here but still beats chance on the held-out
memorized data (acc_test^S > acc_val^S); a smaller student is best for every rho, and the accuracy
falls with p_S non-linearly (at rho = 0.3, p_S = 250 is as good as p_S = 1000). The reference line
is the validation accuracy (fresh random data: chance) of the p_S = p_T students.

Theory (black, parameter counting, ``theory.capacity.mlp_widest_identifiable``): the dashed lines
mark, per rho, the widest student whose free parameters its rho n (c - 1) soft-label equations can
still pin down; the dotted line p_S = p_T, the narrowest student that can represent the teacher.

Quick preset: d = 100, p_T = 50, p_S in {10, 25, 50, 100} (paper / 10), 3 repeats. The quick
scale maps n_per_class = 250 to 2.5 per class, too few for the reference's floor split
int(rho n/c) (rho < 0.4 would train on nothing), so the quick preset uses n = 500 (5 per class;
alpha / p_T = 1e-3, the paper's n_per_class = 500), still in the weak-leakage phase (measured at
p = 50: held-out accuracy 0.07 / 0.27 / 0.40 at rho 0.35 / 0.65 / 0.9), with rho in {0.2, 0.4,
0.6, 0.8}, which the split realises exactly (1-4 of 5 per class). The paper does not list its rho
values; the paper preset uses {0.1, 0.3, 0.5, 0.7, 0.9} (0.3 is named in the text).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from softleak.compare.claims import Claim, summary_line, tol_binomial
from softleak.paper_figs import widths as W
from softleak.paper_figs.common import clean, save, write_data
from softleak.paper_figs.mlp_measures import held_out_size
from softleak.paper_figs.mlp_scale import PAPER, QUICK, MLPScale
from softleak.paper_figs.registry import Preset, Recipe
from softleak.simulate.data import train_per_class
from softleak.theory.capacity import mlp_widest_identifiable

P_TEACHER = 500  # paper units
PAPER_STUDENTS = (100, 200, 250, 300, 400, 500, 600, 750, 1000, 2000)
PAPER_RHO = (0.1, 0.3, 0.5, 0.7, 0.9)
PAPER_NPC = 250  # samples per class
QUICK_STUDENTS = (100, 250, 500, 1000)  # paper units; quick runs p / 10
QUICK_RHO = (0.2, 0.4, 0.6, 0.8)
QUICK_NPC = 5


def _sweeps(scale, students, rho, npc, seeds) -> dict:
    pt = scale.width(P_TEACHER)
    return {
        f"fig21-pS{scale.width(p)}": W.width_spec(
            scale,
            p_teacher=pt,
            p_student=scale.width(p),
            n=(npc * scale.c,),
            rho=rho,
            seeds=seeds,
        )
        for p in students
    }


SCALES = {"quick": QUICK, "paper": PAPER}

#: The paper's example of the non-linear fall (app. D.4.2): at rho = 0.3, p_S = 250 students are
#: as good as p_S = 1000 students (paper units).
PAPER_PLATEAU_RHO = 0.3
PAPER_PLATEAU_WIDTHS = (250, 1000)

CLAIMS = (
    Claim(
        "fig21.weak_leakage_phase",
        "At p_T = 500 and n_per_class = 250 the student does not match the teacher: its "
        "held-out accuracy stays below 100% for every rho and p_S (app. D.4.2, Fig. 21).",
    ),
    Claim(
        "fig21.leaks_above_val",
        "Still the student finds a non-trivial held-out accuracy on the memorized teacher data, "
        "acc_test^S > acc_val^S (app. D.4.2, Fig. 21).",
    ),
    Claim(
        "fig21.smallest_best",
        "Lowering the capacity of the student is optimal: the smallest p_S gives the highest "
        "held-out accuracy at every rho (app. D.4.2, Fig. 21).",
        paper="smaller students are best for every rho",
    ),
    Claim(
        "fig21.falls_with_width",
        "For larger p_S the held-out accuracy decreases (app. D.4.2, Fig. 21).",
    ),
    Claim(
        "fig21.plateau_at_rho_0_3",
        "The decrease is not linear in p_S: at rho = 0.3, students with p_S = 250 are as good "
        "as students with p_S = 1000 (app. D.4.2, Fig. 21).",
        paper={"rho": PAPER_PLATEAU_RHO, "p_S": list(PAPER_PLATEAU_WIDTHS)},
    ),
)


def plateau_rho(rhos, per_class: int) -> float | None:
    """The grid rho whose floor split (``W.effective_rho``) trains on what rho = 0.3 would (the
    nearest nominal rho among those; at 5 per class 0.3 trains on 1, as 0.2 does), None when no
    grid rho splits that way."""
    target = W.effective_rho(per_class, PAPER_PLATEAU_RHO)
    same = [r for r in rhos if math.isclose(W.effective_rho(per_class, r), target)]
    return min(same, key=lambda r: abs(r - PAPER_PLATEAU_RHO)) if same else None


def fig21_claims(df: pd.DataFrame, scale: MLPScale, n: int, epochs: int) -> list[dict]:
    """Fig. 21's claims from the runs at teacher set size ``n`` (``W.widths_table``): cells
    (rho, p_S) of seed means, seed-level differences where a claim is about one seed's
    students against another's (the p_S sweeps share their teachers and splits per seed)."""
    from softleak.compare.claims import judge_bound, judge_paired, judge_sign, untested
    from softleak.compare.table import seed_means

    c_phase, c_leak, c_best, c_falls, c_plateau = CLAIMS
    c, d = int(df["c"].iloc[0]), int(df["d"].iloc[0])
    per_class = n // c
    rows = df[df["n"] == n].assign(rho=df["rho"].astype(float).round(6))
    test, val = (
        seed_means(rows, ["rho", "p_S"], metric, wide=True)
        for metric in ("student_test_acc", "student_val_acc")
    )
    seeds = int(test.notna().sum(axis=1).min()) if len(test) else 0
    widths = sorted(int(p) for p in test.index.get_level_values("p_S").unique())
    rhos = sorted(float(r) for r in test.index.get_level_values("rho").unique())
    why_not = (
        f"{seeds} repeat(s) at d = {d}, {per_class} samples per class, students trained "
        f"{epochs:,} epochs; the paper preset (d = 1000, n_per_class = 250, p_S 100-2000, "
        "5 repeats) tests it"
    )
    cells = test.mean(axis=1)
    out = [
        judge_bound(
            c_phase,
            cells.max(),
            at_most=W.LEVEL,
            what="max over (rho, p_S) of the seed-mean acc_test^S",
            why_not=f"the student identifies the teacher at some (rho, p_S) at this preset; "
            f"{why_not}",
        ),
        judge_paired(
            c_leak,
            (test - val).mean(axis=1),
            sign=1,
            what="seed-mean acc_test^S - acc_val^S (the same students on fresh random data) "
            "across the (rho, p_S) cells",
            why_not=why_not,
        ),
    ]
    if len(widths) < 2:
        why = f"one student width in this run; {why_not}"
        out.append(untested(c_best, why, criterion="acc_test^S(smallest p_S) - max over wider"))
        out.append(untested(c_falls, why, criterion="acc_test^S(narrower) - acc_test^S(wider)"))
    else:
        smallest = test.xs(widths[0], level="p_S")
        wider = test.drop(index=widths[0], level="p_S").groupby(level="rho").max()
        # Per seed: the smallest student's margin over the best wider one, at its worst rho.
        margin = (smallest - wider.reindex(smallest.index)).min(axis=0)
        out.append(
            judge_sign(
                c_best,
                margin.to_numpy(dtype=float),
                sign=1,
                what=f"per seed, min over rho of acc_test^S(p_S = {widths[0]}) minus the best "
                "wider student's",
                why_not=why_not,
            )
        )
        table = cells.unstack("p_S")
        diffs = pd.concat([table[a] - table[b] for a, b in zip(widths, widths[1:], strict=False)])
        out.append(
            judge_paired(
                c_falls,
                diffs,
                sign=1,
                what="seed-mean acc_test^S(p_S) - acc_test^S(next wider p_S) across the cells "
                "(rho, adjacent widths)",
                why_not=why_not,
            )
        )
    out.append(_plateau_claim(c_plateau, test, scale, rhos, per_class, c, seeds, why_not))
    return out


def _plateau_claim(claim, test, scale, rhos, per_class, c, seeds, why_not) -> dict:
    from softleak.compare.claims import MIN_SEEDS, judge_close, untested

    narrow, wide = (scale.width(p) for p in PAPER_PLATEAU_WIDTHS)
    rho = plateau_rho(rhos, per_class)
    criterion = (
        f"mean acc_test^S(p_S = {narrow}) - acc_test^S(p_S = {wide}) within two binomial "
        "standard errors of 0"
    )
    widths = set(test.index.get_level_values("p_S"))
    if rho is None or not {narrow, wide} <= widths:
        return untested(
            claim,
            f"this grid lacks rho ~ {PAPER_PLATEAU_RHO:g} or p_S in {{{narrow}, {wide}}}; "
            f"{why_not}",
            criterion=criterion,
        )
    diff = (test.loc[(rho, narrow)] - test.loc[(rho, wide)]).dropna()
    where = (
        f"at rho = {rho:g} (it trains on {train_per_class(per_class, rho)} of {per_class} per class, as "
        f"rho = {PAPER_PLATEAU_RHO:g} does)"
    )
    if diff.size < MIN_SEEDS:
        return untested(
            claim,
            f"{diff.size} seed(s) {where}: a difference is judged on >= {MIN_SEEDS}; {why_not}",
            measured={"mean": float(diff.mean()) if diff.size else None, "seeds": int(diff.size)},
            criterion=criterion,
        )
    a = tuple(min(1.0, max(0.0, float(test.loc[(rho, w)].mean()))) for w in (narrow, wide))
    size = held_out_size(c * per_class, rho, c) * diff.size  # held-out samples per seed mean
    # Tolerance: two binomial standard errors of the difference of the two seed-mean
    # accuracies: differences below it are within the held-out sets' counting noise.
    tol = tol_binomial(a, size, k=2, combine="sum")
    return judge_close(
        claim,
        float(diff.mean()),
        0.0,
        tol,
        what=f"mean over {diff.size} seeds of acc_test^S(p_S = {narrow}) - acc_test^S(p_S = "
        f"{wide}) {where} (tolerance: two binomial standard errors, {tol:.3g})",
        note=f"acc_test^S {a[0]:.3f} (p_S = {narrow}) vs {a[1]:.3f} (p_S = {wide})",
        why_not=why_not,
    )


def make(tables: dict, out: Path, preset: str) -> dict:
    df = W.widths_table(tables)
    d, c = int(df["d"].iloc[0]), int(df["c"].iloc[0])
    pt = int(df["p_T"].iloc[0])
    scale = SCALES.get(preset, QUICK)
    curves = W.width_curves(df, by=("p_T", "p_S", "rho"), metrics=(*W.METRICS, "student_val_acc"))
    n = int(curves["n"].max())  # one teacher set size (the largest, should the table mix them)
    curves = curves[curves["n"] == n]
    rhos = sorted(float(r) for r in curves["rho"].unique())
    students = sorted(int(p) for p in curves["p_S"].unique())
    ref_p = min(students, key=lambda p: (abs(p - pt), p))
    val = curves[(curves["metric"] == "student_val_acc") & (curves["p_S"] == ref_p)]
    val_ref = float(val["mean"].mean()) if len(val) else float("nan")
    per_class = n // c
    widest = {r: mlp_widest_identifiable(d, c, train_per_class(per_class, r) * c) for r in rhos}

    table, best = {}, {}
    for r in rhos:
        rows = curves[(curves["metric"] == "student_test_acc") & np.isclose(curves["rho"], r)]
        rows = rows.sort_values("p_S")
        table[f"{r:g}"] = {
            str(int(p)): {"mean": clean(m), "sem": clean(s), "n_seeds": int(k)}
            for p, m, s, k in zip(
                rows["p_S"], rows["mean"], rows["sem"], rows["n_seeds"], strict=True
            )
        }
        if len(rows) and rows["mean"].notna().any():
            top = rows.loc[rows["mean"].idxmax()]
            best[f"{r:g}"] = {"p_S": int(top["p_S"]), "test_acc": clean(top["mean"])}
        else:
            best[f"{r:g}"] = {"p_S": None, "test_acc": None}

    labels = {p: f"{p}\n({round(p / scale.p_factor)})" for p in students}
    fig = _figure(curves, rhos, students, labels, widest, val_ref, ref_p, d, c, n, pt)
    files = save(fig, out, "fig21")
    write_data(curves, out, "fig21_curves")

    head = f"{'rho':>5s} " + " ".join(f"{'p_S=' + str(p):>13s}" for p in students)
    lines = [
        f"held-out accuracy (mean +- SEM), p_T = {pt}, n = {n} ({per_class} per class), "
        f"d = {d}, c = {c}; val acc of p_S = {ref_p}: {W.fmt(val_ref, 3)} (chance {1 / c:g})",
        head + f" {'best p_S':>9s}",
    ]
    for r in rhos:
        cells = []
        for p in students:
            e = table[f"{r:g}"].get(str(p))
            if e is None or e["mean"] is None:
                cells.append(f"{'-':>13s}")
            else:
                cells.append(f"{e['mean']:.3f}+-{e['sem'] or 0:.3f}".rjust(13))
        lines.append(f"{r:5g} " + " ".join(cells) + f" {str(best[f'{r:g}']['p_S']):>9s}")
    claims = fig21_claims(df, scale, n, int(df["student_epochs"].iloc[0]))
    lines.append(summary_line(claims))
    return {
        "p_T": pt,
        "n": n,
        "d": d,
        "c": c,
        "rhos": rhos,
        "students": students,
        "test_acc": table,
        "best_p_S": best,
        "val_acc_reference": {"p_S": ref_p, "value": clean(val_ref)},
        "chance": 1 / c,
        "theory_widest_identifiable_p_S": {f"{r:g}": clean(v) for r, v in widest.items()},
        "files": files,
        "text": "\n".join(lines),
        "claims": claims,
    }


def _figure(curves, rhos, students, labels, widest, val_ref, ref_p, d, c, n, pt):
    from softleak.compare.style import new_figure, sequence_colors

    fig, axes = new_figure(ncols=2, panel=(5.6, 4.8))
    colors = dict(zip(rhos, sequence_colors(len(rhos)), strict=True))
    lo, hi = min(students) / 1.3, max(students) * 1.3
    _width_panels(axes, curves, rhos, students, labels, colors, (lo, hi), pt, c)
    _reference_lines(axes, curves, widest, val_ref, (lo, hi))
    fig.legend(
        handles=_legend_handles(rhos, colors, ref_p, c),
        loc="outside lower center",
        ncol=5,
        fontsize="x-small",
        frameon=False,
    )
    fig.suptitle(
        rf"Fig. 21: $p_T = {pt}$, $n = {n}$ ({n // c} per class), $d = {d}$, $c = {c}$, "
        "mean $\\pm$ SEM over repeats",
        fontsize="medium",
    )
    return fig


def _width_panels(axes, curves, rhos, students, labels, colors, xlim, pt, c) -> None:
    """(A) held-out and (B) student train accuracy against p_S, one errorbar line per rho, with
    p_S = p_T and chance."""
    for ax, metric, title in (
        (axes[0], "student_test_acc", r"(A) held-out ${\rm acc}^S_{\rm test}$"),
        (axes[1], "student_train_acc", r"(B) student train ${\rm acc}^S_{\rm train}$, teacher"),
    ):
        for r in rhos:
            rows = curves[(curves["metric"] == metric) & np.isclose(curves["rho"], r)]
            rows = rows.sort_values("p_S")
            ax.errorbar(
                rows["p_S"],
                rows["mean"],
                yerr=rows["sem"].fillna(0.0),
                color=colors[r],
                marker="o",
                ms=4,
                lw=1.3,
                capsize=2,
            )
        ax.axvline(pt, color="black", ls=":", lw=1.1)
        ax.axhline(1 / c, color="0.5", lw=0.8, ls="-.")
        ax.set_xscale("log")
        ax.set_xticks(students, [labels[p] for p in students], fontsize="x-small")
        ax.minorticks_off()
        ax.set_xlim(*xlim)
        ax.set_xlabel("student hidden width $p_S$ (paper scale in brackets)")
        ax.set_ylabel("accuracy")
        ax.set_title(title, fontsize="medium")
        ax.grid(alpha=0.25, lw=0.5)


def _reference_lines(axes, curves, widest, val_ref, xlim) -> None:
    """The teacher's train accuracy (B), the reference val accuracy and the counting widths (A),
    and both panels' y ranges."""
    lo, hi = xlim
    teacher = curves[curves["metric"] == "teacher_train_acc"]
    teacher = teacher.groupby("p_S", as_index=False)["mean"].mean().sort_values("p_S")
    axes[1].plot(teacher["p_S"], teacher["mean"], color="#228833", marker="^", ms=4, lw=1.2)
    axes[0].axhline(val_ref, color="#D55E00", lw=1.0, ls=(0, (4, 2)))
    for r, p in widest.items():
        if lo <= p <= hi:
            axes[0].axvline(p, color="black", ls="--", lw=1.0)
            axes[0].text(
                p,
                0.98,
                rf"$\rho$={r:g}",
                rotation=90,
                fontsize="xx-small",
                ha="right",
                va="top",
                transform=axes[0].get_xaxis_transform(),
            )
    top = curves.loc[curves["metric"] == "student_test_acc", "mean"].max()
    axes[0].set_ylim(0, max(0.05, 1.15 * float(top if np.isfinite(top) else 0.05)))
    axes[1].set_ylim(-0.02, 1.04)


def _legend_handles(rhos, colors, ref_p, c) -> list:
    """The figure legend: one entry per rho, then the teacher and the reference lines."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=colors[r], marker="o", ms=4, lw=1.3, label=rf"$\rho = {r:g}$")
        for r in rhos
    ]
    handles += [
        Line2D([], [], color="#228833", marker="^", ms=4, lw=1.2, label=r"teacher train (B)"),
        Line2D(
            [],
            [],
            color="#D55E00",
            lw=1.0,
            ls=(0, (4, 2)),
            label=rf"val ${{\rm acc}}^S_{{\rm val}}$ of $p_S$ = {ref_p} (A)",
        ),
        Line2D([], [], color="0.5", lw=0.8, ls="-.", label=f"chance 1/c = {1 / c:g}"),
        Line2D([], [], color="black", ls=":", lw=1.1, label=r"$p_S = p_T$"),
        Line2D(
            [],
            [],
            color="black",
            ls="--",
            lw=1.0,
            label=r"counting: widest $p_S$ its $\rho n$ soft labels pin",
        ),
    ]
    return handles


RECIPE = Recipe(
    name="fig21",
    title="ReLU MLPs: held-out accuracy vs student width p_S per rho (p_T = 500, weak leakage)",
    presets={
        "quick": Preset(
            _sweeps(QUICK, QUICK_STUDENTS, QUICK_RHO, QUICK_NPC, 3),
            "2-core CPU, ~4-5 min (2.7 TFLOP at the measured ~10-13 GFLOP/s): d = 100, p_T = 50, "
            "p_S in {10, 25, 50, 100} (paper / 10), n = 500 (5 per class; see the module "
            "docstring), rho in {0.2, 0.4, 0.6, 0.8}, 3 repeats",
        ),
        "paper": Preset(
            _sweeps(PAPER, PAPER_STUDENTS, PAPER_RHO, PAPER_NPC, 5),
            "the paper's settings: d = 1000, p_T = 500, n = 25,000, p_S in {100, ..., 2000}, "
            "rho in {0.1, 0.3, 0.5, 0.7, 0.9} (not listed in the paper), 5 repeats",
        ),
    },
    make=make,
    claims=CLAIMS,
    paper={
        "claim": "smaller students are best for every rho; at rho = 0.3 p_S = 250 is as good as "
        "p_S = 1000",
        "n_per_class": 250,
        "repeats": 5,
    },
)
