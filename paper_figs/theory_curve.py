"""The weak-leakage curve, predicted (not in the paper; issue 25, docs/theory.md).

Pseudo-inverse students of three teachers on the same random data: the exact hard-margin
max-margin teacher (``--teacher svm``, raw Gaussian inputs), whose held-out accuracy the theory
predicts (``theory.leakage``); the square-loss min-norm teacher (``--teacher minnorm``), which
leaks exactly nothing; and the paper's Adam teacher on Fig. 4's own sweep (shared with fig4), set
against the max-margin prediction. (A) measured held-out accuracy and the predicted curves per rho;
(B) measured minus predicted with 2-SE bars; (C) the Adam teacher against the same prediction,
with the min-norm control at 1/2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from softleak.compare.claims import Claim, summary_line
from softleak.paper_figs import fig4
from softleak.paper_figs.common import save, write_data
from softleak.paper_figs.mlp_figs import fmt_value
from softleak.paper_figs.registry import Preset, Recipe
from softleak.simulate.spec import SweepSpec

RHOS = (0.3, 0.5, 0.8)
ALPHAS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.8)


def _spec(teacher: str, d: int, seeds: int, alphas=ALPHAS) -> SweepSpec:
    return SweepSpec(
        "logistic-pinv",
        d=(d,),
        alpha=alphas,
        rho=RHOS,
        seeds=seeds,
        teacher_kind=teacher,  # exact teachers on raw Gaussian inputs (the theory's setting)
        n_val=100,  # validation inputs are chance for any student; not compared here
    )


QUICK = {
    "theory_curve-svm": _spec("svm", 400, 16),
    "theory_curve-minnorm": _spec("minnorm", 400, 64, alphas=(0.25, 0.5, 0.75)),
    "fig4-pinv": fig4.QUICK,
}
PAPER = {
    "theory_curve-svm": _spec("svm", 1600, 24),
    "theory_curve-minnorm": _spec("minnorm", 1600, 64, alphas=(0.25, 0.5, 0.75)),
    "fig4-pinv": fig4.PAPER,
}


def _nearest_rhos(df) -> list[float]:
    have = np.sort(df["rho"].unique().astype(float))
    return sorted({float(have[np.argmin(np.abs(have - r))]) for r in RHOS})


def make(tables: dict, out: Path, preset: str) -> dict:
    from softleak.compare.leakage import ABS_TOL, Z_TOL, curve_agreement
    from softleak.compare.style import new_figure
    from softleak.compare.table import jsonable

    svm = curve_agreement(tables["theory_curve-svm"])
    minnorm = curve_agreement(tables["theory_curve-minnorm"])
    adam_df = tables["fig4-pinv"]
    adam = curve_agreement(adam_df[adam_df["rho"].isin(_nearest_rhos(adam_df))])
    fig, axes = new_figure(ncols=3, panel=(4.6, 3.8))
    svm.plot_curves(ax=axes[0])
    axes[0].set_title(f"(A) max-margin teacher, d = {max(svm.ds)}")
    svm.plot(ax=axes[1])
    axes[1].set_title(f"(B) measured - predicted, d = {max(svm.ds)} ({Z_TOL:g} SE bars)")
    adam.plot_curves(ax=axes[2], legend=False)
    m = minnorm.table[minnorm.table["d"] == max(minnorm.ds)]
    axes[2].errorbar(
        m["alpha"], m["measured"], yerr=m["sem"], color="0.4", marker="s", ms=3, lw=0,
        elinewidth=1, capsize=2, label=f"min-norm teacher (d = {max(minnorm.ds)})",
    )  # fmt: skip
    axes[2].legend(fontsize="x-small", frameon=False)
    axes[2].set_title(f"(C) Adam teacher (fig4's sweep), d = {max(adam.ds)}")
    files = save(fig, out, "theory_curve")
    for name, agreement in (("svm", svm), ("minnorm", minnorm), ("adam", adam)):
        write_data(agreement.table, out, f"theory_curve_{name}")

    goal = svm.goal()
    summary = jsonable(
        {
            "goal": goal,
            "by_d": {
                name: a.by_d().to_dict(orient="records")
                for name, a in (("svm", svm), ("minnorm", minnorm), ("adam", adam))
            },
            "minnorm_pooled": minnorm.pooled(),
            "adam_gap": adam.pooled(),
            "tolerance": f"max({ABS_TOL:g}, {Z_TOL:g} SE)",
            "files": files,
        }
    )
    summary["claims"] = judge(svm, minnorm, adam)
    gap = summary["adam_gap"]
    summary["text"] = "\n".join(
        [
            f"max-margin teacher, d = {goal['d']}: {goal['within']} of {goal['cells']} goal cells "
            f"within max({ABS_TOL:g}, {Z_TOL:g} SE) ({goal['fraction']:.0%})",
            svm.summary(),
            minnorm.summary(),
            f"Adam teacher (fig4's sweep) - max-margin theory, mean over {gap['cells']} goal "
            f"cells: {fmt_value(gap['mean_diff'])} +- {fmt_value(gap['se'])} "
            f"({gap['seeds']} seeds)",
            summary_line(summary["claims"]),
        ]
    )
    return summary


CLAIMS = (
    Claim(
        "theory_curve.svm_curve",
        "The pseudo-inverse student of the exact max-margin teacher follows the predicted "
        "weak-leakage curve: over the cells with rho alpha <= 0.95 and alpha <= 1.8, its mean gap "
        "to the prediction is within max(0.01, 2 SE) of 0 (issue 25; docs/theory.md).",
        paper="not in the paper (it reports the weak phase only empirically)",
    ),
    Claim(
        "theory_curve.svm_leaks",
        "Below identification (rho alpha < 1) the max-margin teacher's student is above chance "
        "on held-out members: weak leakage (sec. 5.1, Fig. 4B).",
    ),
    Claim(
        "theory_curve.minnorm_no_leak",
        "A square-loss minimum-norm teacher leaks nothing: its student's held-out accuracy is "
        "exactly 1/2 for alpha < 1 (docs/theory.md: the student X_S^+ y_S sees no held-out "
        "label).",
        paper=0.5,
    ),
    Claim(
        "theory_curve.adam_near_max_margin",
        "The paper's Adam teacher (10,000 epochs, standardized inputs) has the max-margin "
        "teacher's curve: its mean gap to the prediction over the goal cells is within max(0.01, "
        "2 SE) of 0 (issue 25, the implicit-bias gap).",
    ),
)


def judge(svm, minnorm, adam) -> list[dict]:
    """The claims from the three teachers' ``compare.leakage.CurveAgreement``."""
    from softleak.compare.claims import judge_sign
    from softleak.compare.leakage import ABS_TOL, GOAL_FRACTION, Z_TOL

    c_curve, c_leaks, c_minnorm, c_adam = CLAIMS
    goal = svm.goal()
    out = [
        _judge_gap(
            c_curve,
            svm,
            note=f"{goal['within']} of {goal['cells']} goal cells at d = {goal['d']} each within "
            f"max({ABS_TOL:g}, {Z_TOL:g} SE) (the issue's goal: >= {GOAL_FRACTION:.0%} at d = 1600; "
            "benchmarks/leakage_validation.py)",
            why_not=f"d = {goal['d']}: the validation (d to 1600) measures the finite-size gaps",
        )
    ]
    out.append(
        judge_sign(
            c_leaks,
            svm.seed_gaps(against="chance"),
            sign=1,
            what="held-out accuracy - 1/2 (per seed, mean over the goal cells)",
            why_not="at small alpha the predicted leakage (< 0.01 at alpha = 0.25) is below the "
            "seed noise",
        )
    )
    out.append(_judge_gap(c_minnorm, minnorm, why_not="the control's seed noise; more seeds"))
    out.append(
        _judge_gap(
            c_adam,
            adam,
            note=f"{adam.pooled()['seeds']} seeds of fig4's sweep: a wide tolerance at the quick "
            "preset; docs/theory.md has the paired gap to the max-margin teacher on the same data "
            "(16 seeds, d = 200-400)",
            why_not="the Adam teacher is not the max-margin teacher, and the reference's "
            "standardization moves small-alpha cells; benchmarks/adam_vs_maxmargin.py compares "
            "the two teachers on the same data",
        )
    )
    return out


def _judge_gap(claim, agreement, *, note: str = "", why_not: str = "") -> dict:
    """The claim that ``agreement``'s mean gap to the theory (per seed over the goal cells, then
    over seeds) is 0 within max(ABS_TOL, Z_TOL SE)."""
    from softleak.compare.claims import judge_close
    from softleak.compare.leakage import ABS_TOL, Z_TOL

    pooled = agreement.pooled()
    return judge_close(
        claim,
        pooled["mean_diff"],
        0.0,
        max(ABS_TOL, Z_TOL * pooled["se"]),
        what=f"mean measured - predicted over {pooled['cells']} goal cells (per seed, then over "
        f"{pooled['seeds']} seeds; tolerance max({ABS_TOL:g}, {Z_TOL:g} SE))",
        note=note,
        why_not=why_not,
    )


RECIPE = Recipe(
    name="theory_curve",
    title="The weak-leakage curve: max-margin theory vs exact, min-norm and Adam teachers",
    presets={
        "quick": Preset(QUICK, "2-core CPU, under a minute: d = 400, 16 seeds (+ fig4's sweep)"),
        "paper": Preset(PAPER, "d = 1600, 24 seeds, with fig4's paper sweep"),
    },
    make=make,
    paper={},
    claims=CLAIMS,
)
