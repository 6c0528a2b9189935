"""Fig. 12 (appendix D.1): binary logistic regression, every metric of the pseudo-inverse student.

Teacher train accuracy, student train and test accuracy, match-teacher accuracy (train and test) and
the MSE between student and teacher logits on D_train^S and D_test^S, against alpha = n/d at a few
rho (nearest 0.2, 0.5, 0.8), with the theory: Cover's finite-d P(n, d) for the teacher,
alpha_label^T, and alpha_id = 1/rho, where the test MSE drops to zero (the student's rho n inputs
then span R^d and w = X_S^+ z_S is the teacher itself).

The quick preset is fig4's quick spec (d = 200, nested data, the reference's teacher) restricted to
the three rho of the figure, with the alpha grid extended to 6 so that 1/rho = 5 at rho = 0.2 lies
inside it (fig4's quick grid stops at 3).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from softleak.compare.claims import Claim, summary_line, tol_grid_step, tol_seed_se
from softleak.compare.overlay import mean_curve
from softleak.paper_figs.common import (
    clean,
    fmt_ci,
    format_rows,
    nearest,
    save,
    threshold_entry,
    write_data,
)
from softleak.paper_figs.common import linear_grid as _grid
from softleak.paper_figs.fig4 import CUTOFF as CUT
from softleak.paper_figs.fig4 import PAPER as FIG4_PAPER
from softleak.paper_figs.fig4 import QUICK as FIG4_QUICK
from softleak.paper_figs.registry import Preset, Recipe
from softleak.simulate.spec import SweepSpec

#: The rho values the figure shows (the nearest grid values are used).
RHOS = (0.2, 0.5, 0.8)

#: "The student identified the teacher": seed-mean log10 test MSE below this (MSE < 1e-6).
LOG10_MSE_CUT = -6.0

#: The teacher's colour (green, as alpha_label^T in every figure).
TEACHER_COLOR = "#228833"

#: MSE values are drawn no lower than this on the log axis (exact recovery gives ~1e-25 in float64).
MSE_FLOOR = 1e-20


QUICK: SweepSpec = dataclasses.replace(
    FIG4_QUICK,
    alpha=_grid(0.25, 6.0, 24),  # steps of 0.25: 1/rho = 5, 2, 1.25 are grid points
    rho=RHOS,
    shuffle="no",
)
PAPER: SweepSpec = dataclasses.replace(FIG4_PAPER, shuffle="no")  # d = 1600, 50 alpha x 50 rho x 5

# (column, panel title, log scale)
PANELS = (
    ("teacher_train_acc", r"(a) teacher train ${\rm acc}^T_*$", False),
    ("student_train_acc", r"(b) student train ${\rm acc}^S_{\rm train}$", False),
    ("student_test_acc", r"(c) student test ${\rm acc}^S_{\rm test}$", False),
    ("match_teacher_train_acc", r"(d) match teacher on $\mathcal{D}^S_{\rm train}$", False),
    ("match_teacher_test_acc", r"(e) match teacher on $\mathcal{D}^S_{\rm test}$", False),
    ("train_mse", r"(f) MSE to teacher logit on $\mathcal{D}^S_{\rm train}$", True),
    ("test_mse", r"(g) MSE to teacher logit on $\mathcal{D}^S_{\rm test}$", True),
)


def make(tables: dict, out: Path, preset: str) -> dict:
    from softleak.compare import find_thresholds, mean_curves
    from softleak.compare.style import sequence_colors
    from softleak.theory.capacity import alpha_label_T
    from softleak.theory.cover import p_separable

    df = tables["fig12-pinv"]
    df = df[~df["shuffle"].astype(bool)] if "shuffle" in df else df
    d = int(df.d.iloc[0])
    rhos = [nearest(df.rho, r) for r in RHOS]
    df = df[np.isin(df.rho.to_numpy(dtype=float), rhos)]
    metrics = [m for m, _, _ in PANELS]
    curves = mean_curves(df, metrics, by=("rho",))
    # Thresholds: the paper's accuracy rules plus identification from the logits (MSE < 1e-6).
    table = find_thresholds(
        df,
        rules=["alpha_label_T", "alpha_label_S", "alpha_id_S", "alpha_mse_S"],
        cutoff={
            "alpha_label_T": 0.99,
            "alpha_label_S": 0.99,
            "alpha_id_S": 0.99,
            "alpha_mse_S": -LOG10_MSE_CUT,
        },
    )
    label_t = table.select("alpha_label_T").rows
    t_entry = threshold_entry(label_t[0]) if label_t else None
    t_theory = alpha_label_T(2, d=d).value

    fig = _figure(
        df, curves, rhos, d, t_entry, t_theory, sequence_colors(len(rhos), "plasma"), p_separable
    )
    files = save(fig, out, "fig12")
    write_data(curves, out, "fig12_curves")
    write_data(table.to_frame(), out, "fig12_thresholds")

    per_rho = []
    rows = [("alpha_label^T (acc 0.99)", fmt_ci(t_entry), f"{t_theory:.3f} (Cover, P = 1/2)")]
    alphas = np.sort(df.alpha.unique())
    for rho in rhos:
        mse = table.select("alpha_mse_S", rho=rho).rows
        ids = table.select("alpha_id_S", rho=rho).rows
        first = mse[0].midpoint if mse else float("nan")  # first grid alpha below the cut
        below = alphas[alphas < first]
        entry = {
            "rho": clean(rho),
            "theory_alpha_id": clean(1 / rho),
            "alpha_mse_below_1e-6_first_grid": clean(first),
            "alpha_mse_last_grid_above": clean(below[-1]) if below.size else None,
            "alpha_mse_crossing": threshold_entry(mse[0]) if mse else None,
            "alpha_id_S_acc_0.99": threshold_entry(ids[0]) if ids else None,
        }
        per_rho.append(entry)
        bracket = (
            f"{first:.3f} (grid; prev {below[-1]:.3f})"
            if np.isfinite(first) and below.size
            else ("not reached" if not np.isfinite(first) else f"{first:.3f}")
        )
        rows.append((f"MSE<1e-6 at rho={rho:g}", bracket, f"1/rho = {1 / rho:.3f}"))
        rows.append(
            (
                f"alpha_id^S (acc .99) rho={rho:g}",
                fmt_ci(entry["alpha_id_S_acc_0.99"]),
                "1/rho if < alpha_label^T",
            )
        )
    records = judge(curves, per_rho, alphas)
    return {
        "d": d,
        "rho": [clean(r) for r in rhos],
        "alpha_label_T": t_entry,
        "alpha_label_T_theory": clean(t_theory),
        "identification": per_rho,
        "files": files,
        "claims": records,
        "text": format_rows(rows) + "\n" + summary_line(records),
    }


CLAIMS = (
    Claim(
        "fig12.mse_zero_at_one_over_rho",
        "The student's MSE to the teacher's logits on D_test^S drops to zero at alpha = 1/rho, "
        "where its rho n inputs span R^d (sec. 5.1, Fig. 12g).",
        paper="1/rho",
    ),
    Claim(
        "fig12.match_test_above_id",
        "From alpha = 1/rho on, the student matches the teacher's predictions on the held-out "
        "D_test^S (Fig. 12e; sec. 5.1: the student recovers the teacher weights).",
    ),
    Claim(
        "fig12.test_acc_rises",
        "acc_test^S grows monotonically in alpha from chance up to perfect accuracy at "
        "alpha_id^S (sec. 5.1, Fig. 12c at rho = 0.8).",
    ),
)

#: The rho of the rising test-accuracy claim (Fig. 4A's, the largest of the figure's).
RHO_RISE = 0.8


def judge(curves, per_rho: list[dict], alphas) -> list[dict]:
    """Fig. 12's claims from the seed-mean curves per rho and the per-rho identification entries
    of ``make`` (first grid alpha with test MSE < 1e-6)."""
    c_mse, c_match, c_rise = CLAIMS
    alphas = np.sort(np.asarray(alphas, dtype=float))
    step = tol_grid_step(alphas)  # the alpha grids are uniform
    # rho whose 1/rho lies on the alpha grid
    inside = [e for e in per_rho if alphas.size and alphas[0] <= e["theory_alpha_id"] <= alphas[-1]]
    why = (
        "the pseudo-inverse of a nearly square X_S amplifies float error; the paper preset "
        "(d = 1600) tests it"
    )
    return [
        _mse_at_theory(c_mse, inside, alphas, step, why),
        _match_past_theory(c_match, curves, inside, why),
        _rise_before_theory(c_rise, curves, per_rho),
    ]


def _mse_at_theory(claim, inside: list[dict], alphas, step: float, why: str) -> dict:
    """The first grid alpha with test MSE < 1e-6 (the table's ``alpha_mse_S`` by the reference
    rule) within one grid step of 1/rho, at every rho whose 1/rho lies on the grid."""
    from softleak.compare.claims import judge_bound, untested

    if not inside:
        return untested(
            claim,
            "no rho of the figure has 1/rho on this preset's alpha grid; the quick preset "
            "(alpha to 6) tests it",
            criterion="max over rho of |first grid alpha with test MSE < 1e-6 - 1/rho| <= "
            "one alpha grid step",
        )
    else:
        per = {}
        for e in inside:
            first = e["alpha_mse_below_1e-6_first_grid"]
            # never below 1e-6 on the grid: the gap is at least the grid's end minus 1/rho
            first = alphas[-1] if first is None else first
            per[f"{e['rho']:g}"] = first - e["theory_alpha_id"]
        return judge_bound(
            claim,
            max(abs(v) for v in per.values()),
            at_most=step,
            what="max over rho of |first grid alpha with test MSE < 1e-6 - 1/rho| (bound: "
            "one alpha grid step)",
            note="first grid alpha - 1/rho per rho: "
            + ", ".join(f"{k}: {v:+.3f}" for k, v in per.items()),
            why_not=why,
        )


def _match_past_theory(claim, curves, inside: list[dict], why: str) -> dict:
    """Past 1/rho the student matches the teacher on D_test^S."""
    from softleak.compare.claims import judge_bound, untested

    lows = {}
    for e in inside:
        x, y, _ = mean_curve(curves, "match_teacher_test_acc", rho=e["rho"])
        above = y[x >= e["theory_alpha_id"] - 1e-9]
        if above.size:
            lows[f"{e['rho']:g}"] = float(above.min())
    if not lows:
        return untested(
            claim,
            "no grid alpha at or past 1/rho for the figure's rho; the quick preset tests it",
            criterion=f"min seed-mean match-teacher test accuracy at alpha >= 1/rho >= {CUT:g}",
        )
    else:
        return judge_bound(
            claim,
            min(lows.values()),
            at_least=CUT,
            what="min over rho and grid alpha >= 1/rho of the seed-mean match-teacher "
            "accuracy on D_test^S (the paper's cut-off 0.99)",
            note="lowest at rho = " + min(lows, key=lambda k: lows[k]),
            why_not=why,
        )


def _rise_before_theory(claim, curves, per_rho: list[dict]) -> dict:
    """Up to 1/rho the held-out accuracy rises with alpha (at the rho nearest RHO_RISE)."""
    from softleak.compare.claims import judge_monotone, untested

    rho = min((e["rho"] for e in per_rho), key=lambda r: abs(r - RHO_RISE))
    x, y, sem = mean_curve(curves, "student_test_acc", rho=rho)
    past = x[x >= 1 / rho - 1e-9]  # up to the first grid alpha at or past 1/rho
    keep = x <= (past[0] if past.size else x.max(initial=0.0))
    y, sem = y[keep], sem[keep]
    criterion = "seed-mean acc_test^S increases with alpha up to 1/rho"
    if y.size < 2 or not np.isfinite(sem).all():
        return untested(
            claim,
            "fewer than 2 grid alphas up to 1/rho or a single seed at this preset; the quick "
            "preset (4 seeds) tests it",
            criterion=criterion,
        )
    else:
        # Tolerance: two standard errors of the seed mean (the largest along the curve): a
        # smaller dip is within the noise of the seeds.
        return judge_monotone(
            claim,
            y,
            increasing=True,
            tol=tol_seed_se(sem, k=2),
            what=f"seed-mean acc_test^S at rho = {rho:g} up to the first grid alpha >= 1/rho "
            "(tolerance: two standard errors of the seed mean)",
            why_not="the held-out set is 0.2 n points and the seeds few at this preset; the "
            "paper preset (d = 1600, 5 seeds) tests it",
        )


def _figure(df, curves, rhos, d, t_entry, t_theory, colors, p_separable):
    from matplotlib.lines import Line2D

    from softleak.compare.style import new_figure

    fig, axes = new_figure(ncols=4, nrows=2, panel=(3.3, 2.75))
    lo, hi = float(df.alpha.min()), float(df.alpha.max())
    pad = 0.02 * (hi - lo)
    for ax, (metric, title, log) in zip(axes, PANELS, strict=False):
        teacher = metric == "teacher_train_acc"
        for rho, color in zip(rhos, colors, strict=True):
            if teacher and rho != rhos[-1]:
                continue  # the teacher does not depend on rho: one curve
            if teacher:
                color = TEACHER_COLOR
            part = curves[(curves.metric == metric) & np.isclose(curves.rho, rho)]
            part = part.sort_values("alpha")
            y = part["mean"].to_numpy(dtype=float)
            err = part["sem"].fillna(0.0).to_numpy(dtype=float)
            if log:
                # Exact recovery gives ~1e-25: draw it at the floor, error bars in log space only
                # where they stay positive.
                y = np.clip(y, MSE_FLOOR, None)
                err = np.minimum(err, 0.0)
                ax.plot(part["alpha"], y, color=color, marker="o", ms=2.5, lw=1.2)
            else:
                ax.errorbar(
                    part["alpha"], y, yerr=err, color=color, marker="o", ms=2.5, lw=1.2, capsize=1.5
                )
        for rho in rhos if not teacher else ():  # alpha_id = 1/rho: the inputs span R^d
            if lo <= 1 / rho <= hi:
                ax.axvline(1 / rho, color="black", ls="--", lw=1.0, zorder=5)
        if t_entry and t_entry.get("value") is not None:
            ax.axvline(t_entry["value"], color=TEACHER_COLOR, lw=1.0, alpha=0.8)
        if teacher:
            ax.axvline(t_theory, color="black", ls=":", lw=1.3, zorder=5)
            grid = np.linspace(lo, hi, 400)
            ax.plot(grid, p_separable(grid * d, d), color="black", ls="-.", lw=1.1, zorder=5)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_title(title, fontsize="small")
        ax.set_xlabel(r"$\alpha = n/d$")
        if log:
            ax.set_yscale("log")
            ax.set_ylim(MSE_FLOOR / 10, None)
            ax.set_ylabel("MSE (floor at 1e-20)")
        else:
            ax.set_ylim(-0.02, 1.04)
            ax.set_ylabel("accuracy")
    # Label the 1/rho lines once, on the test-accuracy panel.
    for rho in rhos:
        if lo <= 1 / rho <= hi:
            axes[2].text(
                1 / rho, 0.03, rf" $1/{rho:g}$", fontsize="x-small", rotation=90, va="bottom"
            )
    legend_ax = axes[-1]
    legend_ax.axis("off")
    handles = [
        Line2D([], [], color=c, marker="o", ms=3, lw=1.2, label=rf"$\rho = {r:g}$")
        for r, c in zip(rhos, colors, strict=True)
    ]
    handles += [
        Line2D([], [], color=TEACHER_COLOR, marker="o", ms=3, lw=1.2, label="teacher (any rho)"),
        Line2D(
            [], [], color=TEACHER_COLOR, lw=1.0, label=r"$\alpha^T_{\rm label}$ measured (acc .99)"
        ),
        Line2D(
            [], [], color="black", ls="--", lw=1.0, label=r"$\alpha_{\rm id} = 1/\rho$ (theory)"
        ),
        Line2D(
            [], [], color="black", ls=":", lw=1.3, label=rf"$\alpha^T_{{\rm label}} = {t_theory:g}$"
        ),
        Line2D([], [], color="black", ls="-.", lw=1.1, label=rf"Cover $P(n, d={d})$ (theory)"),
    ]
    legend_ax.legend(handles=handles, loc="center", fontsize="small", frameon=False)
    legend_ax.set_title(f"d = {d}, mean over seeds (+- SEM)", fontsize="small")
    return fig


RECIPE = Recipe(
    name="fig12",
    title="Binary logistic regression: all metrics of the pseudo-inverse student vs alpha",
    presets={
        "quick": Preset(
            {"fig12-pinv": QUICK},
            "2-core CPU, ~1-3 min: fig4's quick spec (d = 200, nested) at rho 0.2/0.5/0.8, "
            "alpha to 6",
        ),
        "paper": Preset(
            {"fig12-pinv": PAPER}, "the paper's d = 1600 grid (Fig. 12 = Fig. 4's runs)"
        ),
    },
    make=make,
    paper={"alpha_id_S_rho": "1/rho (MSE -> 0)", "alpha_label_T_d1600": 1.96},
    claims=CLAIMS,
)
