"""Fig. 19: teacher and student widths varied together (p_T = p_S = p), accuracies vs alpha / p.

ReLU MLPs, rho = 0.45, tau = 20, c = 100, d = 1000, p in {100, 250, 350, 650}, n = d x {12.5, 25,
50, 75, 100, 125, 150, 175, 200}, one run each (appendix D.4.2). The paper plots the accuracies
against alpha / p (alpha = n/(d c)) and finds that the curves of all widths fall together.

Why they collapse: parameter counting (``paper_figs.widths``). A width-p student is pinned by its
rho n soft labels once rho n (c - 1) >= #params - shift = p (d + c) + c - 1, i.e. at
alpha / p = (d + c + (c - 1)/p) / (rho (c - 1) d c), a constant in p; the teacher's memorization
estimate n ~ #params / (2 ln c) is a constant in alpha / p as well. Both are drawn as black lines:
in alpha / p they coincide for every width (panel A), in alpha they are spread by the width ratio
(panel B), as are the measured curves.

Quick preset: d = 100, p / 10 (``QUICK``), and per width the n that put it at the same alpha / p
values (1.5, 2, 2.5, 3, 4, 6) x 1e-3 (the paper's grid, the same n for every width, overlaps in
alpha / p only between 1.25e-3 and 3.1e-3 for p = 100 and 650), so the alpha / p where the student's
held-out accuracy first reaches 0.99 is measured at comparable points for every width. Summary:
that alpha / p per width, and its spread across widths (ratio max/min, relative SD) next to the
spread of the same crossings in alpha: a real collapse has ratio ~1 in alpha / p and ~p_max/p_min
in alpha.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from softleak.compare.claims import Claim, summary_line
from softleak.compare.reach import first_reach
from softleak.compare.style import log_ticks
from softleak.paper_figs import widths as W
from softleak.paper_figs.common import clean, save, write_data
from softleak.paper_figs.mlp_scale import PAPER, QUICK
from softleak.paper_figs.registry import Preset, Recipe
from softleak.theory.capacity import mlp_identifiability_alpha, mlp_memorization_alpha

PAPER_WIDTHS = (100, 250, 350, 650)
#: Quick: alpha / p values (paper units) every width is run at; measured at the quick scale
#: (p = 25 and 65, rho = 0.45): held-out accuracy 0.12 / 0.22 at 2e-3, 1.0 / 1.0 at 4e-3; the p = 25
#: teacher fails at 8e-3 (train accuracy 0.68).
QUICK_ALPHA_PER_P = (1.5e-3, 2e-3, 2.5e-3, 3e-3, 4e-3, 6e-3)


def _quick() -> dict:
    sweeps = {}
    for p in PAPER_WIDTHS:
        q = QUICK.width(p)
        n = W.alpha_per_p_grid(QUICK, p, QUICK_ALPHA_PER_P, W.RHO, PAPER)
        sweeps[f"fig19-p{q}"] = W.width_spec(QUICK, p_teacher=q, p_student=q, n=n, rho=(W.RHO,))
    return sweeps


def _paper() -> dict:
    return {
        f"fig19-p{p}": W.width_spec(PAPER, p_teacher=p, p_student=p, n=W.PAPER_N, rho=(W.RHO,))
        for p in PAPER_WIDTHS
    }


SCALES = {"quick": QUICK, "paper": PAPER}

#: The two readings of the crossings' width dependence, alpha* ~ p^k: the paper's collapse in
#: alpha / p (k = 1, also what parameter counting predicts) and a collapse in alpha (k = 0).
EXPONENT_COLLAPSE = 1.0
EXPONENT_NO_COLLAPSE = 0.0

CLAIMS = (
    Claim(
        "fig19.student_collapse",
        "Plotted against alpha / p, the student's held-out accuracy curves of all widths "
        "p_T = p_S = p fall together quite accurately: the alpha / p where it first reaches "
        "100% is the same for every width (app. D.4.2, Fig. 19).",
        paper="the curves fall together quite accurately",
    ),
    Claim(
        "fig19.scales_with_p",
        "The collapse is in alpha / p, not in alpha: the alpha at which the student identifies "
        "the teacher grows in proportion to the width p, as the number of parameters "
        "p (d + c + 1) + c does (app. D.4.2, Fig. 19).",
        paper={"exponent": EXPONENT_COLLAPSE},
    ),
    Claim(
        "fig19.teacher_collapse",
        "The teacher's train accuracy curves fall together in alpha / p as well: the alpha / p "
        "where a width-p teacher stops memorizing is the same for every width (app. D.4.2, "
        "Fig. 19).",
    ),
)


def width_entries(curves: pd.DataFrame, d: int, c: int, rho: float) -> list[dict]:
    """Per width: its n, where the student's held-out accuracy first reaches ``W.LEVEL`` and the
    teacher's train accuracy first drops below it (in alpha / p and in alpha), and the counting
    estimates (``W.width_curves`` table)."""
    entries = []
    for p in sorted(curves["p_S"].unique()):
        part = curves[curves["p_S"] == p]
        test = part[part["metric"] == "student_test_acc"].sort_values("alpha_per_p")
        teacher = part[part["metric"] == "teacher_train_acc"].sort_values("alpha_per_p")
        reach = first_reach(test["alpha_per_p"], test["mean"])
        drop = first_reach(teacher["alpha_per_p"], teacher["mean"], direction="down")
        entries.append(
            {
                "p": int(p),
                "n": [int(v) for v in test["n"]],
                "alpha_per_p": [W.num(v) for v in test["alpha_per_p"]],
                "student_test_reach_alpha_per_p": W.clean_entry(reach),
                "student_test_reach_alpha": W.clean_entry(W.scaled_reach(reach, p)),
                "teacher_drop_alpha_per_p": W.clean_entry(drop),
                "teacher_drop_alpha": W.clean_entry(W.scaled_reach(drop, p)),
                "theory_id_alpha_per_p": W.num(mlp_identifiability_alpha(d, c, p, rho) / p),
                "theory_mem_alpha_per_p": W.num(mlp_memorization_alpha(d, c, int(p)) / p),
            }
        )
    return entries


def _crossed(entries: list[dict], key: str) -> tuple[dict, list[str]]:
    """{p: crossing} of the widths whose ``key`` crossing lies on the grid, and a note per
    censored width."""
    found, censored = {}, []
    for e in entries:
        r = e[key]
        if r["value"] is not None:
            found[e["p"]] = r["value"]
        else:
            censored.append(f"p = {e['p']}: {r['note'] or 'not measured'}")
    return found, censored


def fig19_claims(entries: list[dict], seeds: int, d: int) -> list[dict]:
    """Fig. 19's claims from the per-width crossings (``width_entries``), ``seeds`` runs per
    point at input dimension ``d``."""
    from softleak.compare.claims import judge_close, judge_spread, untested
    from softleak.compare.reach import log_slope

    c_student, c_scale, c_teacher = CLAIMS
    runs = "one run per point" if seeds == 1 else f"{seeds} runs per point"
    why_not = (
        f"{runs} at d = {d}: each crossing carries its teacher's and student's noise, "
        "and a narrow teacher can stop memorizing before its student identifies it; the paper "
        "preset (d = 1000, p in {100, 250, 350, 650}) tests it"
    )
    grids = {f"p = {e['p']}": e["alpha_per_p"] for e in entries}

    def reaches(key):
        return {f"p = {e['p']}": e[key] for e in entries}

    out = [
        judge_spread(
            c_student,
            reaches("student_test_reach_alpha_per_p"),
            grids,
            what=f"alpha / p where acc_test^S first reaches {W.LEVEL:g}",
            over="widths",
            why_not=why_not,
        )
    ]
    found, censored = _crossed(entries, "student_test_reach_alpha_per_p")
    # alpha* = p x (alpha / p)*: the exponent of alpha* in p over the widths that cross.
    ps = sorted(found)
    k = log_slope(ps, [p * found[p] for p in ps]) if len(ps) >= 2 else math.nan
    # Tolerance: half the distance between the two readings, so "holds" means nearer the
    # collapse in alpha / p than the collapse in alpha.
    tol = abs(EXPONENT_COLLAPSE - EXPONENT_NO_COLLAPSE) / 2
    what = (
        f"least-squares exponent k of alpha* ~ p^k, alpha* where acc_test^S first reaches "
        f"{W.LEVEL:g} (tolerance: halfway to k = {EXPONENT_NO_COLLAPSE:g}, a collapse in alpha)"
    )
    if len(ps) < 2:
        out.append(
            untested(
                c_scale,
                f"fewer than 2 widths reach {W.LEVEL:g} on the grid "
                f"({'; '.join(censored) or 'none'}); {why_not}",
                criterion=f"{what} within {tol:g} of {EXPONENT_COLLAPSE:g}",
            )
        )
    else:
        out.append(
            judge_close(
                c_scale,
                k,
                EXPONENT_COLLAPSE,
                tol,
                what=what,
                note=f"fitted on p = {', '.join(str(p) for p in ps)}"
                + (f"; left out: {'; '.join(censored)}" if censored else ""),
                why_not=why_not,
            )
        )
    out.append(
        judge_spread(
            c_teacher,
            reaches("teacher_drop_alpha_per_p"),
            grids,
            what=f"alpha / p where acc_train^T first drops below {W.LEVEL:g}",
            over="widths",
            why_not=why_not + " (and its grid must reach every teacher's capacity)",
        )
    )
    return out


def make(tables: dict, out: Path, preset: str) -> dict:
    df = W.widths_table(tables)
    d, c = int(df["d"].iloc[0]), int(df["c"].iloc[0])
    rho = float(df["rho"].iloc[0])
    curves = W.width_curves(df)
    scale = SCALES.get(preset, QUICK)
    widths = sorted(curves["p_S"].unique())
    labels = {p: f"p = {p} (paper {round(p / scale.p_factor)})" for p in widths}

    entries = width_entries(curves, d, c, rho)

    claims = fig19_claims(entries, int(curves["n_seeds"].max()), d)

    def values(key):
        return [e[key]["value"] for e in entries]

    collapse = {
        "student_test_alpha_per_p": W.spread(values("student_test_reach_alpha_per_p")),
        "student_test_alpha": W.spread(values("student_test_reach_alpha")),
        "teacher_drop_alpha_per_p": W.spread(values("teacher_drop_alpha_per_p")),
        "teacher_drop_alpha": W.spread(values("teacher_drop_alpha")),
    }

    fig = _figure(curves, entries, labels, d, c, rho)
    files = save(fig, out, "fig19")
    write_data(curves, out, "fig19_curves")

    lines = [
        f"rho = {rho:g}, d = {d}, c = {c}: where the student's held-out accuracy first reaches "
        f"{W.LEVEL:g} and the teacher's train accuracy first drops below it",
        f"{'p':>5s} {'student a/p':>12s} {'student alpha':>14s} {'teacher a/p':>12s} "
        f"{'count id a/p':>13s} {'count mem a/p':>14s}",
    ]
    for e in entries:
        lines.append(
            f"{e['p']:5d} {W.fmt_reach(e['student_test_reach_alpha_per_p']):>12s} "
            f"{W.fmt_reach(e['student_test_reach_alpha']):>14s} "
            f"{W.fmt_reach(e['teacher_drop_alpha_per_p']):>12s} "
            f"{W.fmt(e['theory_id_alpha_per_p']):>13s} {W.fmt(e['theory_mem_alpha_per_p']):>14s}"
        )
    s_x, s_a = collapse["student_test_alpha_per_p"], collapse["student_test_alpha"]
    lines.append(
        f"collapse (max/min over widths): student in alpha/p {W.fmt(s_x['ratio'], 3)}, "
        f"in alpha {W.fmt(s_a['ratio'], 3)}; width ratio {max(widths) / min(widths):.3g}"
    )
    lines.append(summary_line(claims))
    return {
        "rho": clean(rho),
        "d": d,
        "c": c,
        "level": W.LEVEL,
        "widths": entries,
        "collapse": collapse,
        "files": files,
        "text": "\n".join(lines),
        "claims": claims,
    }


def _figure(curves, entries, labels, d, c, rho):
    from softleak.compare.style import new_figure

    fig, axes = new_figure(ncols=2, panel=(5.6, 5.0))
    colors = W.width_colors(curves["p_S"].unique())
    for ax, x, key, title in (
        (axes[0], "alpha_per_p", "alpha_per_p", r"(A) against $\alpha / p$: collapse"),
        (axes[1], "alpha", "alpha", r"(B) against $\alpha$: no collapse"),
    ):
        W.plot_width_curves(ax, curves, x, "p_S")
        W.chance_line(ax, c)
        for e in entries:
            p = e["p"]
            factor = 1.0 if x == "alpha_per_p" else p
            reach = e[f"student_test_reach_{key}"]["value"]
            if reach is not None:
                ax.plot(reach, W.LEVEL, marker="v", ms=7, color=colors[p], zorder=6)
            text = None if x == "alpha_per_p" else f"p={p}"
            W.theory_vline(ax, e["theory_id_alpha_per_p"] * factor, ls="--", text=text)
            W.theory_vline(ax, e["theory_mem_alpha_per_p"] * factor, ls=":", text=text)
        ax.set_xscale("log")
        log_ticks(ax.xaxis)
        ax.set_title(title, fontsize="medium")
    axes[0].set_xlabel(r"$\alpha / p = n / (d\,c\,p)$")
    axes[1].set_xlabel(r"$\alpha = n / (d\,c)$")
    handles = W.legend_handles(
        curves["p_S"].unique(),
        labels,
        theory=(
            ("--", r"counting: $\rho n (c-1) = \#$params (identifiable)"),
            (":", r"counting: $n = \#$params$/(2 \ln c)$ (memorized)"),
        ),
    )
    fig.legend(
        handles=handles, loc="outside lower center", ncol=4, fontsize="x-small", frameon=False
    )
    fig.suptitle(
        rf"Fig. 19: $p_T = p_S = p$, $\rho = {rho:g}$, $d = {d}$, $c = {c}$, "
        + W.runs_text(curves),
        fontsize="medium",
    )
    return fig


QUICK_SWEEPS = _quick()
PAPER_SWEEPS = _paper()

RECIPE = Recipe(
    name="fig19",
    title="ReLU MLPs: teacher and student widths p_T = p_S varied together, collapse in alpha/p",
    presets={
        "quick": Preset(
            QUICK_SWEEPS,
            "2-core CPU, ~6-7 min (4.4 TFLOP at the measured ~10-13 GFLOP/s): d = 100, p in "
            "{10, 25, 35, 65} (paper / 10), n per width at alpha/p in {1.5, 2, 2.5, 3, 4, 6} x 1e-3 "
            "(>= 5 per class), rho 0.45, one run each",
        ),
        "paper": Preset(
            PAPER_SWEEPS,
            "the paper's grid: d = 1000, p in {100, 250, 350, 650}, n = 1000 x {12.5, ..., 200}, "
            "rho 0.45, tau 20, one run each",
        ),
    },
    make=make,
    claims=CLAIMS,
    paper={
        "claim": "accuracy curves for p in {100, 250, 350, 650} fall together against alpha / p",
        "rho": 0.45,
        "runs": 1,
    },
)
