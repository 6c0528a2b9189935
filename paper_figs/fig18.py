"""Fig. 18: which parts of the soft labels carry the held-out memorized data (ReLU MLPs, D.4.1).

rho = 0.7, tau = 20, d = 1000, c = 100, p = 500 (paper). Per teacher, students train on ablated
soft labels, all in one batch (``simulate.softlabels``):

- ``zero_smallest:k`` (k in 1, 10, 50): the k smallest entries of every soft label set to zero,
  without renormalising (panel A: held-out accuracy vs n);
- ``zero_class:J``: class J's entry zeroed in the soft labels of every sample not of class J;
- ``drop_class:J``: class-J samples removed from the student's training set (panel B: held-out
  accuracy on class J, ``student_test_acc_focus``, and on all other classes,
  ``student_test_acc_rest``).

The paper: removing even the single smallest entry is critical where the unablated student would
identify the teacher, and removing more hurts quickly; zeroing class J's entry destroys the held-out
accuracy on class J while the other classes stay near normal; dropping class J's samples keeps the
held-out accuracy on class J high.

Class J's held-out set is tiny: n/c (1 - rho) samples per teacher, 75 at the paper's smallest n
but 1.5-7.5 at the quick scale (n / 100). The quick preset therefore ablates two classes
(J = 0 and 1) per teacher: by the exchangeability of random labels the two are the same
experiment, so ``make`` pools them (rows ``zero_class`` / ``drop_class``: per teacher the mean
over J, then mean and SEM over teachers) -- an extra student per class costs far less than an
extra teacher with all its students.

About 510 lines, on purpose: the figure's presets, its per-family tables, drawing and five claims
(one helper each) share the ablation families and the held-out class J; split, each half would
re-derive them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from softleak.compare.claims import SAME_ACCURACY, Claim, summary_line, tol_seed_se
from softleak.compare.reach import LEVEL
from softleak.paper_figs.common import clean, save, write_data
from softleak.paper_figs.mlp_measures import held_out_size
from softleak.paper_figs.mlp_scale import PAPER as PAPER_SCALE
from softleak.paper_figs.mlp_scale import QUICK as QUICK_SCALE
from softleak.paper_figs.registry import Preset, Recipe

RHO = 0.7

#: The paper's ablations (one student each per teacher).
ABLATIONS = (
    "none",
    "zero_smallest:1",
    "zero_smallest:10",
    "zero_smallest:50",
    "zero_class:0",
    "drop_class:0",
)

#: Quick scale: the class ablations also on class 1, pooled with class 0 in ``make``.
QUICK_ABLATIONS = (*ABLATIONS, "zero_class:1", "drop_class:1")

#: Panel A's ablations and panel B's families, in legend order.
SMALLEST = ("none", "zero_smallest:1", "zero_smallest:10", "zero_smallest:50")
CLASS_FAMILIES = ("none", "zero_class", "drop_class")

#: The paper's teacher set sizes: n = c x n_per_class.
PAPER_N_PER_CLASS = (250, 500, 1000, 2000)

#: Quick n (d = 100, c = 100, p = 50; the teacher memorizes up to n = 3,000 there). 500: the
#: unablated student leaks weakly (held-out ~0.25); 700: between; 1,000: it identifies the teacher
#: (held-out 1.0); 2,500 (the paper's largest main-grid n, 25 per class): the most held-out samples
#: per class, and where an ablation that delays identification has caught up. The paper's
#: 250 per class maps to n = 200, one training and one held-out sample per class: left out.
QUICK_N = (500, 700, 1000, 2500)

QUICK = QUICK_SCALE.spec(n=QUICK_N, rho=(RHO,), ablation=QUICK_ABLATIONS, seeds=2)
PAPER = PAPER_SCALE.spec(
    n=tuple(PAPER_SCALE.n(100 * k) for k in PAPER_N_PER_CLASS),
    rho=(RHO,),
    ablation=ABLATIONS,
    seeds=5,
)

METRICS = ("student_test_acc", "student_test_acc_focus", "student_test_acc_rest")

STYLE = {
    "none": ("black", "o", "unablated"),
    "zero_smallest:1": ("#56B4E9", "v", "zero smallest 1"),
    "zero_smallest:10": ("#0072B2", "s", "zero smallest 10"),
    "zero_smallest:50": ("#882255", "D", "zero smallest 50"),
    "zero_class": ("#D55E00", "^", "zero class-J entry (others' labels)"),
    "drop_class": ("#009E73", "s", "drop class-J samples"),
}


def family(ablation: str) -> str:
    """``zero_class:J`` -> ``zero_class``, ``drop_class:J`` -> ``drop_class``; others unchanged."""
    name = ablation.partition(":")[0]
    return name if name in ("zero_class", "drop_class") else ablation


def curves(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and SEM over teachers of the held-out accuracies per (family, n): long table with
    columns ``family, n, alpha, metric, mean, sem, n_seeds`` (classes J of one family pooled per
    teacher first)."""
    from softleak.compare.overlay import mean_curves

    df = df.assign(family=df["ablation"].map(family))
    out = mean_curves(df, [*METRICS, "student_train_acc"], by=("family",))
    d, c = int(df["d"].iloc[0]), int(df["c"].iloc[0])
    out["n"] = (out["alpha"] * d * c).round().astype(int)
    return out[["family", "n", "alpha", "metric", "mean", "sem", "n_seeds"]]


def make(tables: dict, out: Path, preset: str) -> dict:
    df = pd.concat(list(tables.values()), ignore_index=True)
    df = df[~df["shuffle"].astype(bool)]
    frame = curves(df)
    c = int(df["c"].iloc[0])
    val = float(df.loc[df["ablation"] == "none", "student_val_acc"].mean())
    fig = _figure(frame, c, val)
    files = save(fig, out, "fig18")
    write_data(frame, out, "fig18_curves")

    ns = sorted(frame["n"].unique())
    table = {}
    for fam in (*SMALLEST, *CLASS_FAMILIES[1:]):
        rows = frame[frame["family"] == fam]
        if rows.empty:
            continue
        table[fam] = {
            str(n): {
                metric.replace("student_test_acc", "test"): _cell(rows, n, metric)
                for metric in (*METRICS, "student_train_acc")
            }
            for n in ns
        }
    counting = _counting(df)
    teacher = df.groupby("n")["teacher_train_acc"].mean()
    summary = {
        "rho": RHO,
        "tau": float(df["tau"].iloc[0]),
        "d": int(df["d"].iloc[0]),
        "c": c,
        "p": str(df["p_student"].iloc[0]),
        "n": [int(n) for n in ns],
        "n_seeds": int(df["seed"].nunique()),
        "focus_classes": {
            fam: sorted({int(j) for j in df.loc[df["ablation"].map(family) == fam, "focus_class"]})
            for fam in CLASS_FAMILIES
        },
        "held_out": table,
        "teacher_train_acc": {str(int(n)): clean(v) for n, v in teacher.items()},
        "student_val_acc_none": clean(val),
        "chance": clean(1 / c),
        "theory": counting,
        "files": files,
    }
    summary["claims"] = judge(df, frame)
    summary["text"] = _text(frame, ns, teacher, counting) + "\n" + summary_line(summary["claims"])
    return summary


CLAIMS = (
    Claim(
        "fig18.zero_smallest_1_critical",
        "Already zeroing the single smallest soft-label entry is critical: where the unablated "
        "student identifies the teacher, the student without it does not (app. D.4.1, "
        "Fig. 18A).",
        paper="already k = 1 is critical where the unablated student identifies the teacher",
    ),
    Claim(
        "fig18.zero_more_hurts",
        "Zeroing more of the smallest entries (k = 1, 10, 50) lowers the held-out accuracy "
        "further (app. D.4.1, Fig. 18A).",
    ),
    Claim(
        "fig18.zero_class_kills_class",
        "Zeroing class J's entry in the soft labels of the other classes' samples destroys the "
        "held-out accuracy on class J (app. D.4.1, Fig. 18B).",
    ),
    Claim(
        "fig18.zero_class_rest_normal",
        "With class J's entry zeroed, the held-out accuracy on the other classes stays almost at "
        "the unablated level (app. D.4.1, Fig. 18B).",
    ),
    Claim(
        "fig18.drop_class_keeps_class",
        "Dropping class J's samples from the student's set while their entry stays in the other "
        "soft labels keeps class J's held-out accuracy high, unlike zeroing that entry "
        "(app. D.4.1, Fig. 18B).",
    ),
)


def teacher_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per teacher (index n, seed): each family's mean held-out accuracies (classes J of a family
    pooled), columns ``(metric, family)``."""
    df = df.assign(family=df["ablation"].map(family))
    from softleak.compare.table import seed_means

    return seed_means(df, ["n", "family"], list(METRICS)).unstack("family")


@dataclass(frozen=True)
class AblationRun:
    """What Fig. 18's claims read from the unshuffled runs (built in :func:`judge`)."""

    df: pd.DataFrame  # the unshuffled runs
    frame: pd.DataFrame  # their mean curves (family, metric, n, mean)
    per: pd.DataFrame  # teacher_table(df)
    ns: np.ndarray  # the n grid, sorted
    training: str  # why a training-limited claim may not hold
    few: str  # why a claim on class J's few held-out samples may not hold

    def mean(self, fam: str, metric: str = "student_test_acc") -> np.ndarray:
        """The mean curve of ``fam``'s ``metric`` on the n grid (NaN where missing)."""
        frame = self.frame
        rows = frame[(frame["family"] == fam) & (frame["metric"] == metric)].set_index("n")
        return rows["mean"].reindex(self.ns.astype(int)).to_numpy(dtype=float)


def judge(df: pd.DataFrame, frame: pd.DataFrame) -> list[dict]:
    """Fig. 18's claims from the unshuffled runs ``df`` and their mean curves ``frame``."""
    from softleak.compare.claims import judge_paired

    c_one, c_more, c_kill, c_rest, c_drop = CLAIMS
    per = teacher_table(df)
    test, focus = per[METRICS[0]], per[METRICS[1]]
    ns = np.array(sorted(df["n"].unique()), dtype=float)
    epochs = int(df["student_epochs"].iloc[0])
    c = int(df["c"].iloc[0])
    held = ", ".join(str(held_out_size(int(n), RHO, c) // c) for n in ns)
    run = AblationRun(
        df=df,
        frame=frame,
        per=per,
        ns=ns,
        training=f"students train {epochs:,} epochs at d = {int(df['d'].iloc[0])}; the paper "
        "preset (d = 1000, p = 500, 5 teachers) tests it",
        few=f"{len(test)} teachers, and class J's held-out set is small ({held} samples per "
        "class and teacher at this preset's n); the paper preset (75 to 600 per class, 5 "
        "teachers) tests it",
    )
    return [
        _one_entry(run, c_one),
        _more_entries(run, c_more),
        # Per teacher: the unablated student's held-out accuracy (all classes; by
        # exchangeability the better estimate of its class-J accuracy than class 0's few
        # samples) minus the zero_class student's class-J accuracy.
        judge_paired(
            c_kill,
            (test["none"] - focus["zero_class"]).to_numpy(),
            sign=1,
            what="held-out acc (unablated, all classes) - class-J held-out acc (zero_class), "
            "across teachers (n, seed)",
            why_not=run.few,
        ),
        _rest_kept(run, c_rest),
        judge_paired(
            c_drop,
            (focus["drop_class"] - focus["zero_class"]).to_numpy(),
            sign=1,
            what="class-J held-out acc, drop_class - zero_class, across teachers (n, seed)",
            why_not=run.few,
        ),
    ]


def _one_entry(run: AblationRun, claim: Claim) -> dict:
    """zero_smallest:1 stays below LEVEL where the unablated student first identifies."""
    from softleak.compare.claims import judge_bound, untested
    from softleak.compare.crossings import threshold_crossing

    df, ns = run.df, run.ns
    c = int(df["c"].iloc[0])
    # The n parameter counting needs to identify the unablated teacher (``_counting``).
    counted = _counting(df)["identifiability_n"] if "p_student" in df else None
    # Where the unablated student identifies the teacher: the grid point that ends the step in
    # which its alpha_id^S lies (the threshold rule, compare.crossings.threshold_crossing; the
    # first grid point when it identifies from there on).
    ident = threshold_crossing(ns, run.mean("none"), LEVEL, "up")
    n_id = float(ns[ident.index]) if ident.index >= 0 else math.nan
    if not np.isfinite(n_id):
        return untested(
            claim,
            f"the unablated student reaches {LEVEL:g} at no n of this preset; the quick "
            "preset (n = 1,000) tests it",
            criterion=f"zero_smallest:1 held-out accuracy <= {LEVEL:g} where the unablated "
            "student first identifies",
        )
    at = {
        int(n): clean(v) for n, v in zip(ns, run.mean("zero_smallest:1"), strict=True) if n >= n_id
    }
    return judge_bound(
        claim,
        at[int(n_id)],
        at_most=LEVEL,
        what=f"zero_smallest:1 mean held-out accuracy at n = {int(n_id):,}, the "
        "smallest n where the unablated student identifies the teacher (>= "
        f"{LEVEL:g})",
        note="zero_smallest:1 where the unablated student identifies: "
        + ", ".join(f"n = {n:,}: {v}" for n, v in at.items()),
        why_not=f"the student still identifies the teacher with the smallest of each "
        f"soft label's {c - 1} free entries zeroed. "
        + (
            f"Parameter counting does not predict the claim here: n = {int(n_id):,} "
            f"gives {n_id / counted:.1f}x the equations the teacher's parameters need, "
            f"and zeroing 1 entry removes 1/{c - 1} of them. "
            if counted
            else ""
        )
        + "docs/reference.md notes that the "
        "paper's code zeroed other entries than the k smallest it describes "
        "(implemented here); the paper preset (d = 1000, p = 500) tests it at the "
        "paper's scale",
    )


def _more_entries(run: AblationRun, claim: Claim) -> dict:
    """Mean held-out accuracy over the n grid per k = 0, 1, 10, 50 falls with k. Tolerance: the
    largest standard error of those means over teachers (one SEM; 0 with one teacher)."""
    from softleak.compare.claims import judge_monotone

    test = run.per[METRICS[0]]
    over_n = test.reindex(columns=list(SMALLEST)).groupby(level="seed").mean()
    values = over_n.mean(axis=0).to_numpy(dtype=float)
    sem = over_n.std(axis=0, ddof=1) / np.sqrt(over_n.notna().sum(axis=0))
    return judge_monotone(
        claim,
        values,
        increasing=False,
        tol=tol_seed_se(sem, k=1),
        what="mean held-out accuracy over the n grid for k = 0, 1, 10, 50 zeroed entries "
        "(tolerance: one standard error over teachers)",
        why_not=run.training,
    )


def _rest_kept(run: AblationRun, claim: Claim) -> dict:
    """zero_class keeps the other classes' held-out accuracy at the unablated level."""
    from softleak.compare.claims import judge_close

    seeds = int(run.df["seed"].nunique())
    gap = np.abs(
        run.mean("zero_class", "student_test_acc_rest") - run.mean("none", "student_test_acc_rest")
    )
    # Tolerance: SAME_ACCURACY, what we read as "almost at a normal level" (a choice; the paper
    # gives no number).
    return judge_close(
        claim,
        float(np.nanmean(gap)) if np.isfinite(gap).any() else None,
        0.0,
        SAME_ACCURACY,
        what="mean over n of |other-class held-out acc, zero_class - unablated| (tolerance: 0.05)",
        note="per n: "
        + ", ".join(f"{int(n):,}: {g:.3f}" for n, g in zip(run.ns, gap, strict=True)),
        why_not=f"{seeds} teacher(s) per n: the other-class accuracy of a weakly leaking "
        f"student is noisy; {run.training}",
    )


def _cell(rows: pd.DataFrame, n: int, metric: str) -> dict | None:
    hit = rows[(rows["n"] == n) & (rows["metric"] == metric)]
    if hit.empty:
        return None
    r = hit.iloc[0]
    return {"mean": clean(r["mean"]), "sem": clean(r["sem"]), "n_seeds": int(r["n_seeds"])}


def _counting(df: pd.DataFrame) -> dict:
    """The parameter-counting identifiability estimate (``theory.capacity``) for the unablated
    student, and for k zeroed entries ((c - 1 - k) equations per sample instead of c - 1)."""
    from softleak.theory.capacity import mlp_identifiability_rho_n

    d, c = int(df["d"].iloc[0]), int(df["c"].iloc[0])
    p = int(str(df["p_student"].iloc[0]).split(",")[0])
    bound = mlp_identifiability_rho_n(d, p, c)
    out = {"identifiability_n": clean(bound.value / RHO), "formula": bound.formula}
    for k in (1, 10, 50):
        if k < c - 1:
            out[f"identifiability_n_zero_smallest_{k}"] = clean(
                bound.value * (c - 1) / (c - 1 - k) / RHO
            )
    out["note"] = (
        "heuristic parameter counting, n = rho n / rho; a zeroed entry gives no equation. At the "
        "quick scale (d = 100, p = 50) the measured identification n is ~5x these counts"
    )
    return out


def _text(frame: pd.DataFrame, ns, teacher, counting) -> str:
    def fmt(fam, n, metric):
        hit = frame[(frame["family"] == fam) & (frame["n"] == n) & (frame["metric"] == metric)]
        if hit.empty:
            return "-"
        m, s = hit.iloc[0]["mean"], hit.iloc[0]["sem"]
        return f"{m:.2f}" + (f"+-{s:.2f}" if np.isfinite(s) else "")

    head = f"{'held-out acc (rho=0.7)':26s}" + "".join(f"{f'n={n}':>13s}" for n in ns)
    lines = [head]
    for fam in SMALLEST:
        lines.append(f"{fam:26s}" + "".join(f"{fmt(fam, n, 'student_test_acc'):>13s}" for n in ns))
    for fam in CLASS_FAMILIES:
        for metric, tag in (
            ("student_test_acc_focus", "class J"),
            ("student_test_acc_rest", "rest"),
        ):
            name = (
                f"{fam} [{tag}]"
                if fam != "none"
                else f"none [{'class 0' if tag == 'class J' else tag}]"
            )
            lines.append(f"{name:26s}" + "".join(f"{fmt(fam, n, metric):>13s}" for n in ns))
    lines.append(
        f"{'teacher train acc':26s}" + "".join(f"{teacher.get(n, np.nan):>13.2f}" for n in ns)
    )
    lines.append(
        f"parameter counting: unablated student identifies from n ~ "
        f"{counting['identifiability_n']:.0f} (heuristic)"
    )
    lines.append(
        "paper: zeroing even 1 smallest entry breaks identification; zero_class kills class J "
        "only; drop_class keeps class J high"
    )
    return "\n".join(lines)


def _figure(frame: pd.DataFrame, c: int, val: float):
    from softleak.compare.style import new_figure

    fig, (ax_a, ax_b) = new_figure(ncols=2, panel=(5.4, 5.0))
    ns = np.array(sorted(frame["n"].unique()), dtype=float)
    for k, fam in enumerate(SMALLEST):
        _line(ax_a, frame, fam, "student_test_acc", dodge=k - 1.5, ls="-")
    ax_a.set_title(r"(A) zeroing the $k$ smallest soft-label entries", fontsize="medium")
    ax_a.set_ylabel(r"held-out accuracy ${\rm acc}^S_{\rm test}$")
    for k, fam in enumerate(CLASS_FAMILIES):
        _line(ax_b, frame, fam, "student_test_acc_focus", dodge=2 * k - 2.5, ls="-")
        _line(ax_b, frame, fam, "student_test_acc_rest", dodge=2 * k - 1.5, ls="--", rest=True)
    ax_b.plot([], [], color="grey", ls="-", label="held-out, class J (class 0 unablated)")
    ax_b.plot([], [], color="grey", ls="--", mfc="white", label="held-out, other classes")
    ax_b.set_title("(B) removing one class J", fontsize="medium")
    ax_b.set_ylabel("held-out accuracy")
    for ax in (ax_a, ax_b):
        ax.axhline(1 / c, color="grey", ls=":", lw=1.0, label=f"chance 1/c = {1 / c:.2g}")
        if np.isfinite(val):
            ax.axhline(val, color="grey", ls="-.", lw=0.9, label=f"student val acc {val:.2g}")
        ax.set_xscale("log")
        ax.set_xticks(ns, [f"{n:g}" for n in ns])
        ax.minorticks_off()
        ax.set_xlabel(r"teacher set size $n$ (student trains on $\rho n$, $\rho = 0.7$)")
        ax.set_ylim(-0.03, 1.05)
        ax.legend(
            fontsize="x-small",
            frameon=False,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.15),
            ncol=2,
        )
    return fig


def _line(ax, frame, fam, metric, dodge=0.0, ls="-", rest=False):
    rows = frame[(frame["family"] == fam) & (frame["metric"] == metric)].sort_values("n")
    if rows.empty:
        return
    color, marker, label = STYLE[fam]
    x = rows["n"].to_numpy(dtype=float) * (1 + 0.012 * dodge)  # dodge overlapping error bars
    ax.errorbar(
        x,
        rows["mean"],
        yerr=rows["sem"].fillna(0.0),
        color=color,
        marker=marker,
        ms=4,
        ls=ls,
        lw=1.2,
        capsize=2,
        mfc="white" if rest else color,
        label=None if rest else label,
    )


RECIPE = Recipe(
    name="fig18",
    title="ReLU MLPs: soft-label ablations (rho 0.7, tau 20)",
    presets={
        "quick": Preset(
            {"mlp-ablations": QUICK},
            "2-core CPU, ~7 min (counted work; ~5 s per n = 1,000 student): d = 100, c = 100, "
            "p = 50, n in {500, 700, 1000, 2500}, 2 teachers each, 8 students per teacher (the "
            "paper's 6 ablations, plus zero_class:1 and drop_class:1 pooled with class 0)",
        ),
        "paper": Preset(
            {"mlp-ablations": PAPER},
            "the paper's grid: d = 1000, c = 100, p = 500, n = 100 x {250, 500, 1000, 2000}, "
            "5 teachers, 6 ablations each; students 10,000 epochs (lr 1e-4)",
        ),
    },
    make=make,
    claims=CLAIMS,
    paper={
        "n_per_class": list(PAPER_N_PER_CLASS),
        "zero_smallest": "already k = 1 is critical where the unablated student identifies the "
        "teacher; larger k lowers the held-out accuracy quickly",
        "zero_class": "held-out accuracy on class c collapses; other classes almost normal; "
        "the average only a little lower",
        "drop_class": "held-out accuracy on class c stays high, as on the other classes",
        "error_bars": "5 data sets and initializations, SEM",
    },
)
