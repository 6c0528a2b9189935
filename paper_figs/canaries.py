"""Memorized canaries on real data (beyond the paper): held-out canary recovery on digits.

A ReLU MLP teacher learns scikit-learn's bundled digits (1,797 8x8 images, 10 classes; 80% train)
in which k training points carry labels drawn uniformly from all 10 classes; students learn its
soft labels on half the clean training points and a fraction rho_c of the canaries and are asked
the planted labels of the canaries they never saw (``simulate.canaries``). The paper's mechanism
(sec. 5: a teacher that memorized its data encodes it in the function its soft labels sample; a
student that matches enough of that function recovers what it never saw) predicts for real data:
held-out canaries recovered above the null of unplanted points at a large temperature, less at a
small one (the soft labels of a confident teacher are near one-hot), less with hard labels, and
the within-class shuffle control at chance.

Presets: ``quick`` (4 seeds, k = 100, rho = 0.5, rho_c 0 / 0.5, tau 1 / 20, teacher width 256,
students width 128; a few minutes on a 2-core CPU) and ``paper`` (the fuller grid: 10 seeds,
k 50-200, rho and rho_c at three values, six temperatures, the probe's widths 512 / 256). The
figure: recovery against tau per rho_c with intervals over seeds, the hard-label students and
the null; the table (``canaries_table.csv``) adds the label-DP epsilon lower bound per setting
(``compare.canaries``). Needs scikit-learn (``softleak[real]``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from softleak.compare.claims import Claim, summary_line
from softleak.compare.table import seed_means
from softleak.paper_figs.common import clean, save, write_data
from softleak.paper_figs.registry import Preset, Recipe
from softleak.simulate.canary_spec import CanarySpec

NAME = "canaries"
QUICK = CanarySpec(
    seeds=4,
    k=(100,),
    rho=(0.5,),
    rho_c=(0.0, 0.5),
    tau=(1.0, 20.0),
    teacher_width=(256,),
    student_width=(128,),
    teacher_epochs=2_500,
    student_epochs=1_500,
)
PAPER = CanarySpec(
    seeds=10,
    k=(50, 100, 200),
    rho=(0.25, 0.5, 0.75),
    rho_c=(0.0, 0.25, 0.5),
    tau=(1.0, 2.0, 5.0, 10.0, 20.0, 50.0),
    teacher_width=(512,),
    student_width=(256,),
    teacher_epochs=3_000,
    student_epochs=2_000,
)
#: The shuffle control counts as at chance within this much of the null (the phase diagram's
#: no-leakage cut-off, chance + 0.05, as Fig. 16's shuffle claim).
CHANCE_TOL = 0.05
#: A teacher fits its canaries at this training accuracy on them.
FIT = 0.99

CLAIMS = (
    Claim(
        "canaries.teacher_memorizes",
        "The teacher fits every canary, a label drawn independently of its input, while it "
        "keeps generalizing on the real labels (the probe: width 512, 100 canaries, all fit, "
        "0.91 test accuracy).",
        paper={"test_acc": 0.91},
    ),
    Claim(
        "canaries.recovered_at_large_tau",
        "At a large temperature, students that never saw a canary predict its planted label "
        "above the null of unplanted points: the memorized labels leak through the soft labels "
        "of other points (the paper's mechanism, sec. 5, on real data).",
    ),
    Claim(
        "canaries.less_at_small_tau",
        "At a small temperature the held-out canaries are recovered less than at a large one "
        "(near one-hot soft labels carry little of the memorized function; sec. 5.1, Fig. 5).",
    ),
    Claim(
        "canaries.less_with_hard_labels",
        "Hard-label students recover fewer held-out canaries than soft-label students at a large "
        "temperature (the hard-label baseline of Figs. 1 and 8).",
    ),
    Claim(
        "canaries.shuffle_at_chance",
        "The within-class shuffle control (each soft label on another input of its predicted "
        "class) recovers held-out canaries at the null's rate (app. D.3, Fig. 16).",
    ),
)

#: Per-student columns written beside the figure.
RUN_COLUMNS = (
    "seed, k, rho, rho_c, kind, tau, canary_recovery, null_recovery, canary_hits, "
    "n_canary_test, seen_canary_recovery, student_test_acc, match_teacher_test_acc, "
    "teacher_canary_acc, teacher_clean_train_acc, teacher_test_acc"
).split(", ")


def make(tables: dict, out: Path, preset: str) -> dict:
    from softleak.compare.canaries import canary_recovery
    from softleak.compare.style import new_figure

    table = tables[NAME]
    summary = canary_recovery(table)
    fig, axes = new_figure(ncols=2, panel=(5.4, 3.8))
    summary.plot(ax=axes[0])
    _plot_accuracy(summary.table, axes[1])
    files = save(fig, out, NAME)
    write_data(summary.table, out, f"{NAME}_table")
    write_data(table[RUN_COLUMNS].sort_values(["seed", "k", "rho", "rho_c"]), out, f"{NAME}_runs")
    claims = judge(table)
    best = summary.table[summary.table["kind"] == "soft"].sort_values("excess").iloc[-1]
    text = "\n".join(
        [
            f"canaries ({table['data'].iloc[0]}, c = {int(table['c'].iloc[0])}, "
            f"{int(table['n'].iloc[0])} training points): held-out canary recovery per setting",
            summary.markdown(),
            summary_line(claims),
        ]
    )
    return {
        "text": text,
        "claims": claims,
        "files": files,
        "table": [
            {k: clean(v) for k, v in row.items()} for row in summary.table.to_dict("records")
        ],
        "best_soft": {k: clean(v) for k, v in best.to_dict().items()},
        "teacher_test_acc": clean(table["teacher_test_acc"].mean()),
        "teacher_canary_acc": clean(table["teacher_canary_acc"].mean()),
    }


def _plot_accuracy(summary: pd.DataFrame, ax) -> None:
    """Clean test accuracy and agreement with the teacher against tau, soft-label students."""
    soft = summary[summary["kind"] == "soft"]
    for i, (rho_c, part) in enumerate(soft.groupby("rho_c")):
        part = part.groupby("tau")[["student_test_acc", "match_teacher_test_acc"]].mean()
        ax.plot(
            part.index,
            part["student_test_acc"],
            "o-",
            color=f"C{i}",
            label=f"test acc, rho_c = {rho_c:g}",
        )
        ax.plot(
            part.index,
            part["match_teacher_test_acc"],
            "s:",
            color=f"C{i}",
            label=f"agreement, rho_c = {rho_c:g}",
        )
    ax.axhline(
        summary["teacher_test_acc"].mean(), color="k", ls="--", lw=1, label="teacher test acc"
    )
    ax.set_xscale("log")
    taus = sorted(soft["tau"].unique())
    ax.set_xticks(taus, [f"{t:g}" for t in taus])
    ax.set_xlabel("temperature tau")
    ax.set_ylabel("clean test accuracy / agreement")
    ax.set_title("soft-label students on the test split")
    ax.legend(fontsize=7)


# --- claims (judged by ``compare.claims``; this section only measures) ----------------------
def per_seed(table: pd.DataFrame, kind: str, tau: float | None, rho_c: float) -> pd.Series:
    """Held-out canary recovery per seed of one kind (tau None: hard labels), averaged over k
    and rho, at one rho_c."""
    rows = table[(table["kind"] == kind) & np.isclose(table["rho_c"], rho_c)]
    if tau is not None:
        rows = rows[np.isclose(rows["tau"], tau)]
    return seed_means(rows, [], "canary_recovery")["canary_recovery"]


def judge(table: pd.DataFrame) -> list[dict]:
    from softleak.compare.claims import judge_bound, judge_sign

    c_fit, c_large, c_small, c_hard, c_shuffle = CLAIMS
    taus = sorted(table["tau"].dropna().unique())
    hi, lo = float(taus[-1]), float(taus[0])
    rho_c = float(table["rho_c"].min())
    at_rho_c = table[np.isclose(table["rho_c"], rho_c)]
    null = seed_means(at_rho_c, [], "null_recovery")["null_recovery"]
    soft_hi = per_seed(table, "soft", hi, rho_c)
    where = f"rho_c = {rho_c:g}, tau = {hi:g}"
    teachers = table.drop_duplicates(["seed", "k"])
    why_not = "at this preset's training length and widths; the paper preset (more seeds) tests it"
    out = [
        judge_bound(
            c_fit,
            teachers["teacher_canary_acc"].min(),
            at_least=FIT,
            what=f"min over teachers of the training accuracy on the canaries (bound {FIT:g})",
            note=f"teachers' clean test accuracy {teachers['teacher_test_acc'].mean():.3f}",
            why_not="the teacher did not train long enough to fit its canaries",
        ),
        judge_sign(
            c_large,
            (soft_hi - null).to_numpy(float),
            sign=1,
            what=f"per seed, held-out canary recovery minus the null ({where})",
            note=f"recovery {soft_hi.mean():.3f}, null {null.mean():.3f} (1/c = {1 / table['c'].iloc[0]:.3f})",
            why_not=why_not,
        ),
    ]
    if math.isclose(hi, lo):
        from softleak.compare.claims import untested

        out.append(untested(c_small, "one temperature in this run", criterion="tau_max - tau_min"))
    else:
        soft_lo = per_seed(table, "soft", lo, rho_c)
        out.append(
            judge_sign(
                c_small,
                (soft_hi - soft_lo).to_numpy(float),
                sign=1,
                what=f"per seed, recovery at tau = {hi:g} minus at tau = {lo:g} (rho_c = {rho_c:g})",
                note=f"recovery {soft_lo.mean():.3f} at tau = {lo:g}",
                why_not=why_not,
            )
        )
    hard = per_seed(table, "hard", None, rho_c)
    out.append(
        judge_sign(
            c_hard,
            (soft_hi - hard).to_numpy(float),
            sign=1,
            what=f"per seed, soft-label recovery ({where}) minus hard-label recovery",
            note=f"hard-label recovery {hard.mean():.3f}",
            why_not=why_not,
        )
    )
    gaps = {t: float((per_seed(table, "shuffle", t, rho_c) - null).mean()) for t in taus}
    out.append(
        judge_bound(
            c_shuffle,
            max(gaps.values()),
            at_most=CHANCE_TOL,
            what="max over tau of the seed-mean shuffle-control recovery minus the null "
            f"(rho_c = {rho_c:g}; bound: {CHANCE_TOL:g}, the no-leakage cut-off of Fig. 16's claim)",
            note="per tau: " + ", ".join(f"{t:g}: {v:+.3f}" for t, v in gaps.items()),
            why_not="the shuffled soft labels still carry class statistics that move a student's "
            "predictions on canaries",
        )
    )
    return out


RECIPE = Recipe(
    NAME,
    "Memorized canaries on digits: held-out canary recovery vs temperature, hard labels, shuffle",
    presets={
        "quick": Preset(
            {NAME: QUICK},
            "digits, 4 seeds, k = 100 canaries, rho = 0.5, rho_c 0 / 0.5, tau 1 / 20, MLP teacher "
            "256 (2,500 steps) and students 128 (1,500 steps); CPU, a few minutes",
        ),
        "paper": Preset(
            {NAME: PAPER},
            "digits, 10 seeds, k 50 / 100 / 200, rho and rho_c at three values, tau 1-50, MLP "
            "teacher 512 (3,000 steps), students 256 (2,000); CPU hours, a GPU minutes",
        ),
    },
    make=make,
    claims=CLAIMS,
)
