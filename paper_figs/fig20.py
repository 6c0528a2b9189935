"""Fig. 20: the teacher's width fixed (p_T = 500), the student's width p_S varied, n varied.

ReLU MLPs, rho = 0.45, tau = 20, c = 100, d = 1000, one run per point (appendix D.4.2). The paper:
wider students fit their soft labels better (student train accuracy), as a student with more neurons
has more capacity. Every p_S sweep trains the same teachers (teacher seeds do not depend on p_S), so
the curves differ only through the student.

Theory (black, ``theory.capacity`` counting, see ``paper_figs.widths``): the dashed lines mark, per
p_S, the alpha at which rho n (c - 1) equals the student's free parameters (wider students need
proportionally more samples to be pinned down; a student with p_S < p_T cannot represent the teacher
at all, so there the line marks where its own parameters are determined, not recovery); the dotted
line the teacher's memorization estimate n ~ #params(p_T) / (2 ln c). Panel A plots against alpha,
panel B against alpha / p_S (where the dashed lines coincide).

Quick preset: d = 100, p_T = 50, p_S in {10, 25, 50, 100} (paper / 10), n at alpha / p_T in
{1, 2, 3, 4.5} x 1e-3 (>= 5 per class; the quick p_T = 50 teacher memorizes fully up to
alpha / p_T = 6e-3), rho 0.45, one run each. Summary: per p_S, the alpha (and alpha / p_S) where
the student's held-out accuracy first reaches 0.99, and its train and held-out accuracy at the
largest n.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from softleak.compare.claims import Claim, summary_line
from softleak.compare.reach import first_reach
from softleak.compare.style import log_ticks
from softleak.paper_figs import widths as W
from softleak.paper_figs.common import clean, save, write_data
from softleak.paper_figs.mlp_scale import PAPER, QUICK
from softleak.paper_figs.registry import Preset, Recipe
from softleak.theory.capacity import mlp_identifiability_alpha, mlp_memorization_alpha

P_TEACHER = 500  # paper units
PAPER_STUDENTS = (100, 250, 500, 1000, 2000)
QUICK_STUDENTS = (100, 250, 500, 1000)  # paper units; quick runs p / 10
QUICK_ALPHA_PER_P = (1e-3, 2e-3, 3e-3, 4.5e-3)  # alpha / p_T


def _quick() -> dict:
    n = W.alpha_per_p_grid(QUICK, P_TEACHER, QUICK_ALPHA_PER_P, W.RHO, PAPER)
    pt = QUICK.width(P_TEACHER)
    return {
        f"fig20-pS{QUICK.width(p)}": W.width_spec(
            QUICK, p_teacher=pt, p_student=QUICK.width(p), n=n, rho=(W.RHO,)
        )
        for p in QUICK_STUDENTS
    }


def _paper() -> dict:
    return {
        f"fig20-pS{p}": W.width_spec(
            PAPER, p_teacher=P_TEACHER, p_student=p, n=W.PAPER_N, rho=(W.RHO,)
        )
        for p in PAPER_STUDENTS
    }


SCALES = {"quick": QUICK, "paper": PAPER}

CLAIMS = (
    Claim(
        "fig20.wider_fits_better",
        "With the teacher fixed at p_T = 500, a wider student reaches a higher accuracy on its "
        "own training set D_train^S, as a student with more neurons has a higher capacity to "
        "learn the soft labels (app. D.4.2, Fig. 20).",
        paper="a wider student improves acc_train^S",
    ),
    Claim(
        "fig20.wider_fits_to_larger_n",
        "The wider the student, the larger the sample complexity alpha up to which it still "
        "fits its training set (higher capacity for the soft labels; app. D.4.2, Fig. 20).",
    ),
)


def fig20_claims(curves: pd.DataFrame, d: int, epochs: int) -> list[dict]:
    """Fig. 20's claims from the seed-mean curves (``W.width_curves``): every p_S sweep trains
    the same teachers, so the students of one alpha are paired by their teacher."""
    from softleak.compare.claims import judge_paired

    c_fit, c_capacity = CLAIMS
    train = curves[curves["metric"] == "student_train_acc"].pivot_table(
        index="alpha", columns="p_S", values="mean"
    )
    widths = sorted(int(p) for p in train.columns)
    seeds = int(curves["n_seeds"].max())
    runs = "one run per point" if seeds == 1 else f"{seeds} runs per point"
    why_not = (
        f"{runs} at d = {d}, students trained {epochs:,} epochs; the paper preset (d = 1000, "
        "p_S up to 2000, 10,000 epochs) tests it"
    )
    # Adjacent widths at the same alpha (same teacher): wider minus narrower.
    pairs = [train[wide] - train[narrow] for narrow, wide in zip(widths, widths[1:], strict=False)]
    diffs = pd.concat(pairs).to_numpy(dtype=float) if pairs else np.array([])
    out = [
        judge_paired(
            c_fit,
            diffs,
            sign=1,
            what="acc_train^S(wider p_S) - acc_train^S(next narrower p_S) across the cells "
            "(alpha, adjacent widths; one teacher per alpha)",
            why_not=why_not,
        )
    ]
    out.append(_fits_to_larger_n(c_capacity, train, widths, why_not))
    return out


def _fits_to_larger_n(claim, train: pd.DataFrame, widths: list, why_not: str) -> dict:
    """The alpha where each student's train accuracy first drops below LEVEL (``train``: alpha x
    p_S seed means) increases with p_S."""
    from softleak.compare.claims import judge_monotone, tol_grid_step, untested
    from softleak.compare.crossings import threshold_crossing

    if len(widths) < 2:
        return untested(
            claim,
            f"one student width in this run; {why_not}",
            criterion=f"alpha where acc_train^S first drops below {W.LEVEL:g} increases with p_S",
        )
    alphas = train.index.to_numpy(dtype=float)
    # The alpha where each student's train accuracy first drops below LEVEL: its alpha_label^S
    # by the threshold rule (compare.crossings.threshold_crossing; a student that never drops
    # gives the largest alpha, one already below the smallest).
    found = {
        p: threshold_crossing(alphas, train[p].to_numpy(dtype=float), W.LEVEL, "down")
        for p in widths
    }
    drops = {p: f.bounded for p, f in found.items()}
    finite = [v for v in drops.values() if np.isfinite(v)]
    inside = [p for p in widths if found[p].censored is None]
    if not inside and len(set(finite)) <= 1:  # every student censored at the same grid end
        where = (
            "drops below it before the grid's first alpha"
            if finite and finite[0] == alphas.min()
            else "never drops on the grid"
        )
        return untested(
            claim,
            f"every student's acc_train^S {where}: no order to read; {why_not}",
            measured=[drops[p] for p in widths],
            criterion=f"alpha where acc_train^S first drops below {W.LEVEL:g} increases with p_S",
        )
    # Tolerance: one grid step of alpha where the drops lie (their median): a step against the
    # order by less than that is within the interpolation's resolution.
    tol = tol_grid_step(alphas, at=float(np.median(finite))) if finite else 0.0
    return judge_monotone(
        claim,
        [drops[p] for p in widths],
        increasing=True,
        tol=tol,
        what=f"alpha where acc_train^S first drops below {W.LEVEL:g}, over p_S = "
        f"{', '.join(str(p) for p in widths)} (the grid's end where it never drops; "
        f"tolerance: one grid step of alpha at the drops' median, {tol:.3g})",
        why_not=why_not,
    )


def make(tables: dict, out: Path, preset: str) -> dict:
    df = W.widths_table(tables)
    d, c = int(df["d"].iloc[0]), int(df["c"].iloc[0])
    rho = float(df["rho"].iloc[0])
    pt = int(df["p_T"].iloc[0])
    curves = W.width_curves(df)
    scale = SCALES.get(preset, QUICK)
    students = sorted(int(p) for p in curves["p_S"].unique())
    labels = {p: f"$p_S$ = {p} (paper {round(p / scale.p_factor)})" for p in students}

    entries: list[dict[str, Any]] = []
    for p in students:
        part = curves[curves["p_S"] == p]
        test = part[part["metric"] == "student_test_acc"].sort_values("alpha")
        train = part[part["metric"] == "student_train_acc"].sort_values("alpha")
        reach = first_reach(test["alpha"], test["mean"])
        entries.append(
            {
                "p_S": p,
                "represents_teacher": p >= pt,
                "student_test_reach_alpha": W.clean_entry(reach),
                "student_test_reach_alpha_per_pS": W.clean_entry(W.scaled_reach(reach, 1 / p)),
                "largest_n": int(test["n"].iloc[-1]) if len(test) else None,
                "student_train_acc_at_largest_n": clean(train["mean"].iloc[-1])
                if len(train)
                else None,
                "student_test_acc_at_largest_n": clean(test["mean"].iloc[-1])
                if len(test)
                else None,
                "student_test_acc": {
                    str(int(n)): clean(v) for n, v in zip(test["n"], test["mean"], strict=True)
                },
                "theory_id_alpha": W.num(mlp_identifiability_alpha(d, c, p, rho)),
            }
        )
    teacher = curves[(curves["metric"] == "teacher_train_acc") & (curves["p_S"] == students[0])]
    teacher = teacher.sort_values("alpha")
    drop = first_reach(teacher["alpha"], teacher["mean"], direction="down")

    fig = _figure(curves, entries, labels, d, c, rho, pt)
    files = save(fig, out, "fig20")
    write_data(curves, out, "fig20_curves")

    spread_alpha = W.spread(e["student_test_reach_alpha"]["value"] for e in entries)
    spread_per_p = W.spread(e["student_test_reach_alpha_per_pS"]["value"] for e in entries)
    lines = [
        f"p_T = {pt}, rho = {rho:g}, d = {d}, c = {c}: held-out accuracy first >= {W.LEVEL:g}; "
        f"teacher train acc first < {W.LEVEL:g} at alpha {W.fmt_reach(drop)} "
        f"(counting: {W.fmt(mlp_memorization_alpha(d, c, pt))})",
        f"{'p_S':>5s} {'alpha':>9s} {'alpha/p_S':>10s} {'count id alpha':>15s} "
        f"{'train@max n':>12s} {'test@max n':>11s}",
    ]
    for e in entries:
        lines.append(
            f"{e['p_S']:5d} {W.fmt_reach(e['student_test_reach_alpha']):>9s} "
            f"{W.fmt_reach(e['student_test_reach_alpha_per_pS']):>10s} "
            f"{W.fmt(e['theory_id_alpha']):>15s} "
            f"{W.fmt(e['student_train_acc_at_largest_n'], 3):>12s} "
            f"{W.fmt(e['student_test_acc_at_largest_n'], 3):>11s}"
        )
    lines.append(
        f"spread of the crossing over p_S (max/min): in alpha {W.fmt(spread_alpha['ratio'], 3)}, "
        f"in alpha/p_S {W.fmt(spread_per_p['ratio'], 3)}"
    )
    claims = fig20_claims(curves, d, int(df["student_epochs"].iloc[0]))
    lines.append(summary_line(claims))
    return {
        "rho": clean(rho),
        "d": d,
        "c": c,
        "p_T": pt,
        "level": W.LEVEL,
        "students": entries,
        "teacher_drop_alpha": W.clean_entry(drop),
        "theory_mem_alpha_teacher": W.num(mlp_memorization_alpha(d, c, pt)),
        "spread": {"alpha": spread_alpha, "alpha_per_pS": spread_per_p},
        "files": files,
        "text": "\n".join(lines),
        "claims": claims,
    }


def _figure(curves, entries, labels, d, c, rho, pt):
    from softleak.compare.style import new_figure

    fig, axes = new_figure(ncols=2, panel=(5.6, 5.0))
    colors = W.width_colors(curves["p_S"].unique())
    for ax, x in ((axes[0], "alpha"), (axes[1], "alpha_per_p")):
        metrics = W.METRICS if x == "alpha" else W.METRICS[1:]  # one teacher for every p_S
        W.plot_width_curves(ax, curves, x, "p_S", metrics=metrics)
        W.chance_line(ax, c)
        for e in entries:
            p = e["p_S"]
            factor = 1.0 if x == "alpha" else 1.0 / p
            reach = e["student_test_reach_alpha"]["value"]
            if reach is not None:
                ax.plot(reach * factor, W.LEVEL, marker="v", ms=7, color=colors[p], zorder=6)
            text = f"$p_S$={p}" if x == "alpha" else None
            W.theory_vline(ax, e["theory_id_alpha"] * factor, ls="--", text=text)
        if x == "alpha":
            W.theory_vline(ax, mlp_memorization_alpha(d, c, pt), ls=":", text=f"teacher $p_T$={pt}")
        ax.set_xscale("log")
        log_ticks(ax.xaxis)
    axes[0].set_xlabel(r"$\alpha = n / (d\,c)$")
    axes[1].set_xlabel(r"$\alpha / p_S$")
    axes[0].set_title(r"(A) against $\alpha$", fontsize="medium")
    axes[1].set_title(r"(B) students against $\alpha / p_S$", fontsize="medium")
    handles = W.legend_handles(
        curves["p_S"].unique(),
        labels,
        theory=(
            ("--", r"counting: $\rho n (c-1) = \#$params$(p_S)$"),
            (":", r"counting: teacher memorizes $n = \#$params$(p_T)/(2 \ln c)$"),
        ),
    )
    fig.legend(
        handles=handles, loc="outside lower center", ncol=4, fontsize="x-small", frameon=False
    )
    fig.suptitle(
        rf"Fig. 20: $p_T = {pt}$, $p_S$ varied, $\rho = {rho:g}$, $d = {d}$, $c = {c}$, "
        + W.runs_text(curves),
        fontsize="medium",
    )
    return fig


RECIPE = Recipe(
    name="fig20",
    title="ReLU MLPs: teacher width fixed (p_T = 500), student width p_S varied, accuracy vs n",
    presets={
        "quick": Preset(
            _quick(),
            "2-core CPU, ~5-6 min (3.9 TFLOP at the measured ~10-13 GFLOP/s; the p_T = 50 teacher "
            "is retrained in each p_S sweep): d = 100, p_S in {10, 25, 50, 100} (paper / 10), n at "
            "alpha/p_T in {1, 2, 3, 4.5} x 1e-3, rho 0.45, one run each",
        ),
        "paper": Preset(
            _paper(),
            "the paper's settings: d = 1000, p_T = 500, p_S in {100, 250, 500, 1000, 2000}, "
            "n = 1000 x {12.5, ..., 200} (Fig. 19's grid; the paper says only 'vary n'), "
            "rho 0.45, tau 20, one run each",
        ),
    },
    make=make,
    claims=CLAIMS,
    paper={
        "claim": "at p_T = 500, wider students reach a higher student train accuracy",
        "rho": 0.45,
        "runs": 1,
    },
)
