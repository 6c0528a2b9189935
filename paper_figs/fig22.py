"""Fig. 22: the number of classes c (ReLU MLPs, appendix D.4.3), rho = 0.45, tau = 20, one run.

One sweep per c; each plots the teacher's train accuracy and the student's train and held-out
accuracies against n/d. The paper: "when we scale the x-axis as n/d, the behavior we described in
the main for the different classes remains similar" (d = 1000, p = 500, c in {20, 50, 90, 100,
110}; docs/reference.md's list omits 100).

The parameter-counting estimates of ``theory.capacity`` say what to expect: the teacher's
memorization n ~ #params / (2 ln c) hardly moves with c (the output layer is a small part of
#params), while the student's identifiability rho n ~ #params / (c - 1) grows like 1/c as c falls --
each student sample gives c - 1 equations. So at small c identification should need a larger n/d,
while the teacher's capacity limit stays put: a collapse in n/d is not what counting predicts. The
recipe draws both estimates as black vertical lines in each c's panel (memorization dashed,
identification dotted) and measures, per c, the smallest grid n/d with student held-out accuracy
>= 0.99 and the largest grid n/d up to which the teacher memorizes (train accuracy >= 0.99).

Quick scale (``mlp_scale.QUICK``: d = 100, p = 50): n/d in {2, 5, 7.5, 10, 15, 20, 30, 45} for
c in {20, 50, 100, 110}, at least 3 samples per class (n/d 2 is n/d 3 at c = 100 and 3.3 at
c = 110: with 2 per class the rho = 0.45 student trained on no row). At c = 100 the student identifies the teacher from n ~ 1,000 (n/d 10)
and the teacher stops memorizing between n = 3,000 and 4,000 (n/d 30-40), so the grid spans
weak leakage, identification and the teacher's capacity limit; n/d = 45 also gives the shrunken
test sweeps enough samples per class at c = 110. c = 20 and 50 show the small-c side, 100 and
110 the paper's neighbourhood of c = 100 (90 adds another ~1.8 min and nothing 110 does not).
At equal alpha / p (Fig. 19's collapse) quick n/d x 10 = paper n/d.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from softleak.compare.claims import Claim, judge_spread, summary_line
from softleak.compare.phases import DEFAULT_CUTOFF
from softleak.compare.reach import first_reach, log_slope
from softleak.compare.style import log_ticks
from softleak.paper_figs.common import clean, save, write_data
from softleak.paper_figs.mlp_measures import fmt_value
from softleak.paper_figs.mlp_scale import PAPER as PAPER_SCALE
from softleak.paper_figs.mlp_scale import PAPER_N, MLPScale
from softleak.paper_figs.mlp_scale import QUICK as QUICK_SCALE
from softleak.paper_figs.registry import Preset, Recipe

RHO = 0.45
#: Accuracy counted as "memorized" / "identified": the package's fit cut-off (docs/reference.md).
CUTOFF = DEFAULT_CUTOFF

QUICK_CLASSES = (20, 50, 100, 110)
PAPER_CLASSES = (20, 50, 90, 100, 110)

#: Quick grid in n/d (d = 100); each n rounded to a multiple of c.
QUICK_N_OVER_D = (2, 5, 7.5, 10, 15, 20, 30, 45)


#: The fewest samples per class whose rho = 0.45 student trains on a row: int(0.45 * 3) = 1 (at
#: 2 per class, as the quick grid's n/d = 2 gave for c = 100 and 110, it trained on none).
MIN_PER_CLASS = 3


def n_grid(scale: MLPScale, n_over_d, c: int) -> tuple[int, ...]:
    """Teacher set sizes n = (n/d) d rounded to a multiple of c (>= ``MIN_PER_CLASS`` per class),
    distinct."""
    ns = [max(MIN_PER_CLASS, round(v * scale.d / c)) * c for v in n_over_d]
    return tuple(sorted(set(ns)))


def _spec(scale: MLPScale, n_over_d, c: int):
    return scale.spec(n=n_grid(scale, n_over_d, c), rho=(RHO,), c=(c,), seeds=1)


QUICK = {f"mlp-c{c}": _spec(QUICK_SCALE, QUICK_N_OVER_D, c) for c in QUICK_CLASSES}
#: Paper: the main grid's n (100 x {50, ..., 2500}, n/d 5 to 250) for every c, single runs.
PAPER = {
    f"mlp-c{c}": _spec(PAPER_SCALE, [n / PAPER_SCALE.d for n in PAPER_N], c) for c in PAPER_CLASSES
}

CURVES = ("teacher_train_acc", "student_train_acc", "student_test_acc")

CLAIMS = (
    Claim(
        "fig22.every_c_identifies",
        "The behaviour of the main text holds for every number of classes c: at every c the "
        "student identifies the teacher (held-out accuracy 100%) once n/d is large enough "
        "(app. D.4.3, Fig. 22).",
        paper=list(PAPER_CLASSES),
    ),
    Claim(
        "fig22.identification_similar_in_n_over_d",
        "Scaled as n/d, the student's identification happens at a similar n/d for every c "
        "(app. D.4.3: 'the behavior ... for the different classes remains similar').",
        paper="similar in n/d for c in {20, 50, 90, 100, 110}",
    ),
    Claim(
        "fig22.teacher_capacity_similar_in_n_over_d",
        "Scaled as n/d, the teacher stops memorizing at a similar n/d for every c (app. D.4.3, "
        "Fig. 22).",
    ),
    Claim(
        "fig22.weak_leakage",
        "Where the teacher memorizes and the student does not yet identify it, the student "
        "leaks weakly at the different c: acc_test^S > acc_val^S, as in the main text (app. "
        "D.4.3, Fig. 22; sec. 5.2).",
    ),
)


def fig22_claims(curves: pd.DataFrame, per_c: dict, d: int, p: int, epochs: int) -> list[dict]:
    """Fig. 22's claims from the seed-mean curves per (c, n) and the per-c entries of ``make``
    (grid rules and interpolated crossings in n/d) at input dimension ``d``, width ``p``, student
    training ``epochs``."""
    from softleak.compare.claims import judge_bound, judge_paired, untested

    c_ident, c_similar, c_teacher, c_leak = CLAIMS
    classes = sorted(int(c) for c in per_c)
    top = max(float(v) for v in curves["n_over_d"])
    why_not = (
        f"one run per point at d = {d}, p = {p}, students trained {epochs:,} epochs, n/d up to "
        f"{top:.3g}; the paper preset (d = 1000, p = 500, n/d up to 250) tests it"
    )
    missing = [c for c in classes if per_c[str(c)]["identification_n_over_d"] is None]
    best = ", ".join(f"c = {c} (best {per_c[str(c)]['max_student_test_acc']:.2f})" for c in missing)
    what = f"fraction of c whose student's held-out accuracy reaches {CUTOFF:g} on the grid"
    if len(missing) == len(classes):
        out = [
            untested(
                c_ident,
                f"at no c does the student identify the teacher on this grid ({best}): the "
                f"preset does not reach identification; {why_not}",
                measured=0.0,
                criterion=f"{what} >= 1",
            )
        ]
    else:
        out = [
            judge_bound(
                c_ident,
                (len(classes) - len(missing)) / len(classes),
                at_least=1.0,
                what=what,
                note=f"never reached: {best}" if missing else "",
                why_not=f"{why_not}; by parameter counting each sample gives c - 1 equations, "
                "so small c needs a larger n/d",
            )
        ]
    out.append(_similar_across_c(c_similar, per_c, classes, missing, why_not))
    out.append(_teacher_claim(c_teacher, curves, classes, d, p, why_not))
    weak = curves[(curves["teacher_train_acc"] >= CUTOFF) & (curves["student_test_acc"] < CUTOFF)]
    out.append(
        judge_paired(
            c_leak,
            weak["student_test_acc"] - weak["student_val_acc"],
            sign=1,
            what=f"acc_test^S - acc_val^S across the (c, n) cells where the teacher memorizes "
            f"(train acc >= {CUTOFF:g}) and the student does not identify it",
            note=f"{len(weak)} cells over c = "
            f"{', '.join(str(int(c)) for c in sorted(weak['c'].unique())) or 'none'}",
            why_not=why_not,
        )
    )
    return out


def _similar_across_c(claim, per_c: dict, classes: list, missing: list, why_not: str) -> dict:
    """The interpolated identification n/d of the classes that reach the cut-off collapses:
    its power law in c is nearer k = 0 than parameter counting's."""
    from softleak.compare.claims import judge_close, untested

    found = {
        c: per_c[str(c)]["identification_crossing_n_over_d"]
        for c in classes
        if per_c[str(c)]["identification_crossing_n_over_d"] is not None
    }
    ks = sorted(found)
    k = log_slope(ks, [found[c] for c in ks])
    k_count = log_slope(ks, [per_c[str(c)]["theory"]["identifiability_n_over_d"] for c in ks])
    criterion = (
        "least-squares exponent k of the identification n/d ~ c^k within half of counting's "
        "|k| of 0 (the paper's collapse)"
    )
    if not math.isfinite(k) or not math.isfinite(k_count):
        return untested(
            claim,
            f"fewer than 2 classes reach {CUTOFF:g} on the grid "
            f"({', '.join(f'c = {c}' for c in ks) or 'none'}); {why_not}",
            criterion=criterion,
        )
    else:
        # Tolerance: half the distance between the paper's collapse (k = 0) and the counting
        # estimate's exponent over the same classes (n/d ~ 1/(c - 1) up to the d + c term), so
        # "holds" means nearer the collapse than counting.
        tol = abs(k_count) / 2
        return judge_close(
            claim,
            k,
            0.0,
            tol,
            what=f"least-squares exponent k of the interpolated identification n/d ~ c^k "
            f"over c = {', '.join(str(c) for c in ks)} (tolerance: halfway to counting's "
            f"k = {k_count:.3g})",
            note=f"counting's exponent {k_count:.3g}"
            + (f"; c = {', '.join(str(c) for c in missing)} never identify" if missing else ""),
            why_not=why_not,
        )


def _teacher_claim(
    claim, curves: pd.DataFrame, classes: list[int], d: int, p: int, why_not: str
) -> dict:
    """The teacher's capacity crossings in n/d of every c within one grid step
    (``compare.claims.judge_spread``: interpolated first drops of its train accuracy below
    CUTOFF, censored ones as bounds)."""
    reaches, grids = {}, {}
    for c in classes:
        curve = curves[curves["c"] == c]
        label = f"c = {c}"
        reaches[label] = first_reach(
            curve["n_over_d"], curve["teacher_train_acc"], CUTOFF, direction="down"
        )
        grids[label] = curve["n_over_d"].to_numpy(dtype=float)
    return judge_spread(
        claim,
        reaches,
        grids,
        what=f"n/d where acc_train^T first drops below {CUTOFF:g}",
        over="c",
        why_not=why_not,
        note="counting's memorization n/d: "
        + ", ".join(f"{counting(d, p, c)['memorization_n_over_d']:.3g} (c = {c})" for c in classes),
    )


def counting(d: int, p: int, c: int) -> dict:
    """Parameter-counting estimates in n/d: the teacher's memorization n and the n at which
    rho n samples identify it (``theory.capacity``, heuristic)."""
    from softleak.theory.capacity import mlp_identifiability_rho_n, mlp_memorization_n

    mem = mlp_memorization_n(d, p, c)
    ident = mlp_identifiability_rho_n(d, p, c)
    return {
        "memorization_n_over_d": clean(mem.value / d),
        "identifiability_n_over_d": clean(ident.value / (RHO * d)),
        "memorization_formula": mem.formula,
        "identifiability_formula": ident.formula,
    }


def grid_thresholds(curve: pd.DataFrame) -> dict:
    """Explicit grid rules on one c's curve (columns n_over_d and the CURVES metrics, sorted):
    identification = the smallest n/d with student held-out acc >= CUTOFF; teacher capacity = the
    largest n/d before the first n/d with teacher train acc < CUTOFF (None when the teacher never
    memorizes; the last grid n/d when it never fails)."""
    x = curve["n_over_d"].to_numpy(dtype=float)
    test = curve["student_test_acc"].to_numpy(dtype=float)
    teacher = curve["teacher_train_acc"].to_numpy(dtype=float)
    ok_id = np.flatnonzero(test >= CUTOFF)
    fails = np.flatnonzero(teacher < CUTOFF)
    cap: float | None
    if fails.size == 0:
        cap, censored = float(x[-1]), True
    else:
        cap = float(x[fails[0] - 1]) if fails[0] > 0 else None
        censored = False
    return {
        "identification_n_over_d": float(x[ok_id[0]]) if ok_id.size else None,
        "teacher_capacity_n_over_d": cap,
        "teacher_never_fails": censored,
    }


def class_table(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The seed-mean curves per (c, n) of the unshuffled, unablated runs of ``df`` and the
    per-c entries (grid rules, interpolated crossings in n/d, counting estimates)."""
    from softleak.compare import find_thresholds

    df = df[~df["shuffle"].astype(bool) & (df["ablation"] == "none")]
    df = df.assign(n_over_d=df["n"] / df["d"])
    # A single run per n: mean over seeds (and student seeds) if a preset has more.
    curves = (
        df.groupby(["c", "n", "n_over_d"])[[*CURVES, "student_val_acc"]]
        .mean()
        .reset_index()
        .sort_values(["c", "n"])
    )
    classes = [int(c) for c in sorted(curves["c"].unique())]
    d = int(df["d"].iloc[0])
    p = int(str(df["p_student"].iloc[0]).split(",")[0])
    # Interpolated first crossings (compare.thresholds); alpha = n/(d c), so n/d = alpha c.
    table = find_thresholds(df, rules=("alpha_label_T", "alpha_id_S"), cutoff=CUTOFF, n_boot=0)
    per_c = {}
    for c in classes:
        curve = curves[curves["c"] == c]
        entry = {"n": [int(n) for n in curve["n"]], **grid_thresholds(curve)}
        for name, key in (("alpha_label_T", "teacher"), ("alpha_id_S", "identification")):
            rows = table.select(name, c=c).rows
            value = rows[0].value * c if rows else math.nan
            entry[f"{key}_crossing_n_over_d"] = clean(value)  # None: not crossed on the grid
        entry["max_student_test_acc"] = clean(curve["student_test_acc"].max())
        entry["theory"] = counting(d, p, c)
        per_c[str(c)] = entry
    return curves, per_c


def make(tables: dict, out: Path, preset: str) -> dict:
    df = pd.concat(list(tables.values()), ignore_index=True)
    curves, per_c = class_table(df)
    classes = [int(c) for c in per_c]
    d = int(df["d"].iloc[0])
    p = int(str(df["p_student"].iloc[0]).split(",")[0])
    claims = fig22_claims(curves, per_c, d, p, int(df["student_epochs"].iloc[0]))
    fig = _figure(curves, classes, d, p)
    files = save(fig, out, "fig22")
    write_data(curves, out, "fig22_curves")
    return {
        "rho": RHO,
        "tau": float(df["tau"].iloc[0]),
        "d": d,
        "p": p,
        "classes": classes,
        "cutoff": CUTOFF,
        "rules": (
            "identification: smallest grid n/d with student test acc >= 0.99; teacher capacity: "
            "largest grid n/d before the first teacher train acc < 0.99; *_crossing: "
            "softleak.compare.find_thresholds' interpolated first crossing (alpha_id_S, alpha_label_T) x c"
        ),
        "per_c": per_c,
        "files": files,
        "text": _text(per_c, classes) + "\n" + summary_line(claims),
        "claims": claims,
    }


def _text(per_c: dict, classes: list[int]) -> str:
    lines = [
        f"{'c':>4s} {'id n/d (grid)':>14s} {'id count':>9s} {'max test':>9s} "
        f"{'teacher cap n/d':>16s} {'mem count':>10s}"
    ]
    for c in classes:
        e = per_c[str(c)]
        cap = fmt_value(e["teacher_capacity_n_over_d"]) + ("+" if e["teacher_never_fails"] else "")
        th = e["theory"]
        lines.append(
            f"{c:4d} {fmt_value(e['identification_n_over_d']):>14s} "
            f"{th['identifiability_n_over_d']:9.2f} {e['max_student_test_acc']:9.2f} "
            f"{cap:>16s} {th['memorization_n_over_d']:10.2f}"
        )
    lines.append(
        "count = parameter-counting estimate (theory.capacity, heuristic); '+': teacher never "
        "failed on the grid; '-': never reached"
    )
    lines.append("paper: in n/d the behaviour is similar for c in {20, 50, 90, 100, 110}")
    return "\n".join(lines)


def _figure(curves: pd.DataFrame, classes: list[int], d: int, p: int):
    from matplotlib.figure import Figure

    from softleak.compare.style import METRIC_COLORS, METRIC_LABELS, class_colors

    k = len(classes)
    fig = Figure(figsize=(3.4 * (k + 1), 4.6), layout="constrained")
    axes = fig.subplots(1, k + 1, sharey=True)
    colors = class_colors(classes)
    for ax, c, tag in zip(axes, classes, "ABCDEFGH", strict=False):
        curve = curves[curves["c"] == c]
        for metric in CURVES:
            ax.plot(
                curve["n_over_d"],
                curve[metric],
                color=METRIC_COLORS[metric],
                marker="o",
                ms=3.5,
                lw=1.2,
                label=METRIC_LABELS[metric],
            )
        ax.plot(
            curve["n_over_d"],
            curve["student_val_acc"],
            color="grey",
            ls="-.",
            lw=0.9,
            label=r"student val ${\rm acc}^S_{\rm val}$",
        )
        ax.axhline(1 / c, color="grey", ls=":", lw=1.0, label="chance 1/c")
        th = counting(d, p, c)
        lo, hi = float(curve["n_over_d"].min()), float(curve["n_over_d"].max())
        for key, ls, label in (
            ("memorization_n_over_d", "--", "teacher memorization (counting)"),
            ("identifiability_n_over_d", ":", r"identification at $\rho$ (counting)"),
        ):
            v = th[key]
            if v is not None and lo / 1.5 <= v <= hi * 1.5:
                ax.axvline(v, color="black", ls=ls, lw=1.3, zorder=5, label=label)
        ax.set_xscale("log")
        ax.set_xlabel(r"$n/d$")
        ax.set_title(rf"({tag}) $c = {c}$", fontsize="medium")
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(-0.03, 1.05)
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize="small"
    )
    last = axes[-1]
    for c in classes:
        curve = curves[curves["c"] == c]
        color = colors[float(c)]
        last.plot(curve["n_over_d"], curve["student_test_acc"], color=color, marker="o", ms=3.5)
        last.plot(curve["n_over_d"], curve["teacher_train_acc"], color=color, ls="--", lw=1.0)
        last.plot([], [], color=color, marker="o", label=f"c = {c}")
    last.plot([], [], color="grey", ls="-", label="student test")
    last.plot([], [], color="grey", ls="--", label="teacher train")
    last.set_xscale("log")
    last.set_xlabel(r"$n/d$")
    last.set_title(f"({'ABCDEFGH'[k]}) all c", fontsize="medium")
    last.legend(fontsize="x-small", frameon=False, loc="center right")
    for ax in axes:
        log_ticks(ax.xaxis)
    fig.suptitle(
        rf"ReLU MLP, $d = {d}$, $p = {p}$, $\rho = {RHO}$, $\tau = 20$, one run per point",
        fontsize="medium",
    )
    return fig


RECIPE = Recipe(
    name="fig22",
    title="ReLU MLPs: number of classes c vs n/d (rho 0.45, tau 20)",
    presets={
        "quick": Preset(
            QUICK,
            "2-core CPU, ~6.5 min (counted work; ~5 s per n = 1,000 student): d = 100, p = 50, "
            "c in {20, 50, 100, 110}, n/d in {2, 5, 7.5, 10, 15, 20, 30, 45} (>= 3 per class), "
            "one run each",
        ),
        "paper": Preset(
            PAPER,
            "the paper's classes {20, 50, 90, 100, 110} at d = 1000, p = 500, the main n grid "
            "100 x {50, ..., 2500} (n/d 5 to 250) for every c, one run each",
        ),
    },
    make=make,
    claims=CLAIMS,
    paper={
        "classes": list(PAPER_CLASSES),
        "claim": "scaled as n/d, the behaviour (teacher memorization, student identification) is "
        "similar for every c",
        "runs": 1,
    },
)
