"""The 2D examples (Fig. 1, c = 3; Fig. 8, c = 20): one builder for both recipes.

Each preset is one ``Toy2DSpec`` (sweep name ``toy2d-c<C>``) at the reference code's settings
(docs/reference.md "2D toy examples"). The reference trains one data set (one teacher, one split) and
reports mean +- SEM over 5 student initialisations on it; we report mean +- SEM over data sets
(each averaged over its student seeds), which includes the data-set noise that dominates with 60
points, and draw the four panels for data set 0:

- ``quick``: the paper's settings on 10 data sets, one student of each kind per data set;
- ``paper``: the paper's settings on 5 data sets with the reference's 5 students of each kind per
  data set (more work than ``quick``; its SEM over data sets has 4 degrees of freedom).

``make`` writes ``figN.png/pdf`` (panels A-D and the per-data-set accuracies), ``figN_runs.csv``
(one row per student) and returns the headline numbers and the judged claims (``claims`` builds
the declarations, :func:`judge` the verdicts from one row per data set).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from softleak.compare.claims import Claim, summary_line, tol_binomial
from softleak.paper_figs.common import clean, data_dir, save, write_data
from softleak.paper_figs.registry import Preset, Recipe
from softleak.simulate.toy2d import Toy2DSpec

#: Per-student columns written to the CSV.
RUN_COLUMNS = (
    "seed",
    "student_kind",
    "student_seed",
    "student_test_acc",
    "student_train_acc",
    "student_val_acc",
    "match_teacher_test_acc",
    "train_ce",
    "teacher_train_acc",
    "teacher_epochs",
    "c",
    "tau",
    "rho",
    "p_teacher",
)


def presets(spec: Toy2DSpec) -> dict[str, Preset]:
    """``quick`` (10 data sets x 1 student per kind) and ``paper`` (5 data sets x 5 students per
    kind) of the paper-settings ``spec``."""
    fig = "Fig. 1" if spec.c == 3 else f"Fig. 8 (c = {spec.c})"
    settings = (
        f"c = {spec.c}, hidden {spec.hidden[0]}, tau = {spec.tau:g}, teacher up to "
        f"{spec.teacher_epochs:,} epochs lr {spec.teacher_lr:g}"
        + (f" (stop at train acc > {spec.teacher_stop_acc:g})" if spec.teacher_stop_acc else "")
        + f", students {spec.student_epochs:,} epochs lr {spec.student_lr:g}"
    )
    quick = Toy2DSpec(**{**_fields(spec), "seeds": 10, "student_seeds": 1})
    paper = Toy2DSpec(**{**_fields(spec), "seeds": 5, "student_seeds": 5})
    return {
        "quick": Preset(
            {f"toy2d-c{spec.c}": quick},
            f"{fig} settings ({settings}) on 10 data sets, 1 student per kind; CPU, under a minute",
        ),
        "paper": Preset(
            {f"toy2d-c{spec.c}": paper},
            f"{fig} settings ({settings}) on 5 data sets x 5 students per kind (the reference's "
            "5 repeats); CPU, 1-2 minutes",
        ),
    }


def _fields(spec: Toy2DSpec) -> dict:
    return {k: v for k, v in spec.to_dict().items() if k != "extra"}


def make_figure(name: str, tables: dict, out: Path, paper: dict) -> dict:
    """Draw ``name``.png/pdf from the preset's run and return the summary."""
    from matplotlib.figure import Figure

    from softleak.compare import decision_maps

    (key,) = tables  # one run per preset, named toy2d-c<C>
    maps = decision_maps(data_dir(tables, key, out))
    seed = maps.seeds[0]
    fig = Figure(figsize=(17.5, 4.6), layout="constrained")
    grid = fig.add_gridspec(1, 5, width_ratios=[1, 1, 1, 1, 0.8])
    panels = [fig.add_subplot(grid[0, k]) for k in range(4)]
    maps.plot(seed=seed, axes=panels)
    acc_ax = fig.add_subplot(grid[0, 4])
    maps.plot_accuracy(ax=acc_ax)
    acc_ax.set_title(
        f"(E) held-out acc., {len(maps.seeds)} data sets\n(panels A-D: data set {seed})",
        fontsize="small",
    )
    files = save(fig, out, name)

    table = tables[key]
    cols = [c for c in RUN_COLUMNS if c in table.columns]
    write_data(
        table[cols].sort_values(["seed", "student_kind", "student_seed"]), out, f"{name}_runs"
    )

    soft, hard = maps.test_acc["soft"], maps.test_acc["hard"]
    students = int(table["student_seed"].max()) + 1
    within = _within_sem(table)
    summary = {
        "baseline_test_acc": clean(
            table.loc[table.student_kind == "hard", "student_test_acc"].mean()
        ),
        "student_test_acc": clean(
            table.loc[table.student_kind == "soft", "student_test_acc"].mean()
        ),
        "baseline_test_acc_sem": clean(hard.sem),
        "student_test_acc_sem": clean(soft.sem),
        "teacher_train_acc": clean(maps.teacher_train_acc.mean),
        "chance": clean(maps.chance),
        "n_datasets": len(maps.seeds),
        "students_per_dataset": students,
        "student_val_acc": clean(maps.val_acc["soft"].mean),
        "student_test_acc_sem_within": clean(within.get("soft")),
        "baseline_test_acc_sem_within": clean(within.get("hard")),
        "files": files,
    }
    rows = [
        ("hard-label baseline", hard.mean, hard.sem, paper.get("baseline_test_acc")),
        ("soft-label student", soft.mean, soft.sem, paper.get("student_test_acc")),
    ]
    lines = [
        f"c = {maps.c}, tau = {maps.tau:g}: held-out accuracy, mean +- SEM over "
        f"{len(maps.seeds)} data sets x {students} student(s) per kind",
        f"{'':22s} {'measured':>16s} {'paper':>7s}",
    ]
    for label, mean, sem, ref in rows:
        ref_txt = "-" if ref is None else f"{ref:.2f}"
        lines.append(f"{label:22s} {mean:8.3f} +- {sem:.3f} {ref_txt:>7s}")
    lines.append(
        f"teacher train acc {maps.teacher_train_acc.mean:.3f}; chance 1/c = {maps.chance:.3f}; "
        f"soft student on fresh random points {maps.val_acc['soft'].mean:.3f}"
    )
    if students > 1:
        lines.append(
            f"SEM over the {students} students of one data set (the reference's error bar), mean "
            f"over data sets: soft {within['soft']:.3f}, hard {within['hard']:.3f}"
        )
    claims = judge(
        name, per_dataset(maps), c=maps.c, n_test=_n_test(maps), paper=paper, spec=_spec(table)
    )
    lines.append(summary_line(claims))
    summary["text"] = "\n".join(lines)
    summary["claims"] = claims
    return summary


def _within_sem(table) -> dict[str, float]:
    """Mean over data sets of the SEM over student seeds (the reference's error bar: 5 students
    on one data set); NaN with one student per data set."""
    out = {}
    for kind, rows in table.groupby("student_kind"):
        g = rows.groupby("seed")["student_test_acc"]
        sem = (g.std(ddof=1) / g.count() ** 0.5).mean()
        out[kind] = float(sem)
    return out


# --- claims (judged by ``compare.claims``; this section only measures) ----------------------
def per_dataset(maps) -> pd.DataFrame:
    """One row per data set: ``seed``, the held-out accuracy of each kind (``soft_test``,
    ``hard_test``), each kind's agreement with the teacher's decision map over the square
    (``soft_agree``, ``hard_agree``: the share of grid cells where the predicted classes are the
    same), all averaged over the data set's student seeds, and ``teacher_train``."""
    acc = maps.per_dataset.pivot(index="seed", columns="kind", values="student_test_acc")
    teacher = maps.results.groupby("seed")["teacher_train_acc"].first()
    rows = []
    for i, seed in enumerate(maps.seeds):
        rec = {"seed": int(seed), "teacher_train": float(teacher.loc[seed])}
        for kind in ("soft", "hard"):
            rec[f"{kind}_test"] = float(acc.loc[seed, kind]) if kind in acc else math.nan
            rec[f"{kind}_agree"] = _agreement(maps.teacher[i], maps.students.get(kind), i)
        rows.append(rec)
    return pd.DataFrame(rows)


def _agreement(teacher: np.ndarray, students: np.ndarray | None, i: int) -> float:
    """Mean over student seeds of the share of grid cells (both maps defined) where a student's
    class is the teacher's; NaN without maps."""
    if students is None:
        return math.nan
    shares = []
    for student in students[i]:  # (g, g) per student seed
        ok = (teacher >= 0) & (student >= 0)
        if ok.any():
            shares.append(float((student[ok] == teacher[ok]).mean()))
    return float(np.mean(shares)) if shares else math.nan


def _n_test(maps) -> int:
    """|D_test^S| of one data set (the same for every data set)."""
    pts = maps.points[maps.points["split"] == "test"]
    return int(pts.groupby("seed").size().iloc[0]) if len(pts) else 0


def _spec(table) -> dict:
    """The training settings the claims' notes quote."""
    first = table.iloc[0]
    return {k: first[k] for k in ("teacher_epochs", "teacher_lr", "student_epochs") if k in first}


def claims(name: str, c: int, paper: dict) -> tuple[Claim, ...]:
    """The claims of Fig. 1 (c = 3) or Fig. 8 (c = 20): the paper's statements of its caption."""
    fig = "Fig. 1" if name == "fig1" else "Fig. 8"
    student, baseline = paper.get("student_test_acc"), paper.get("baseline_test_acc")
    boundaries = (
        "the student's decision boundaries follow the teacher's (Fig. 1D)"
        if name == "fig1"
        else "the decision boundaries of teacher and student 'correspond very well' (Fig. 8D)"
    )
    return (
        Claim(
            f"{name}.student_beats_baseline",
            f"With c = {c}, students fit to the teacher's soft labels reach a higher held-out "
            f"accuracy on D_test^S than the independent hard-label baseline ({fig} caption).",
            paper={"student": student, "baseline": baseline},
        ),
        Claim(
            f"{name}.student_acc",
            f"The soft-label student reaches a non-trivial held-out accuracy of ~{student:.0%} "
            f"({fig}C).",
            paper=student,
        ),
        Claim(
            f"{name}.baseline_at_chance",
            f"The hard-label baseline, independent of the teacher, only reaches the trivial "
            f"accuracy 1/c, ~{baseline:.0%} ({fig}B).",
            paper=baseline,
        ),
        Claim(
            f"{name}.boundaries_follow_teacher",
            f"Over the input square {boundaries}: they agree with the teacher's regions more "
            "than the baseline's do.",
        ),
        Claim(
            f"{name}.teacher_memorizes",
            f"The teacher fits its 60 random-label points with 100% accuracy ({fig}A).",
            paper=1.0,
        ),
    )


def judge(name: str, rows: pd.DataFrame, *, c: int, n_test: int, paper: dict, spec: dict) -> list:
    """The claims of ``claims(name, c, paper)`` from ``per_dataset``'s rows (one per data set).

    The two comparisons (student vs baseline, their agreement with the teacher) are judged over
    data sets (``judge_sign``: each data set has its own teacher, so it is the replicate). The
    paper's two accuracies come from one data set (24 held-out points); their tolerances are the
    binomial noise of such a number (below)."""
    from softleak.compare.claims import judge_bound, judge_sign

    c_beat, c_acc, c_base, c_bound, c_teacher = claims(name, c, paper)
    k = len(rows)
    soft, hard = rows["soft_test"].to_numpy(float), rows["hard_test"].to_numpy(float)
    training = (
        f"teacher {int(spec['teacher_epochs']):,} epochs at lr {float(spec['teacher_lr']):g}, "
        f"students {int(spec['student_epochs']):,} epochs at this preset"
    )
    noise = (
        f"{training}: a gain within the noise of {k} data sets of {n_test} held-out points each; "
        "more data sets (simulate toy2d --seeds) test it"
    )
    out = [
        judge_sign(
            c_beat,
            soft - hard,
            sign=1,
            what="per data set (soft-label student - hard-label baseline) held-out accuracy",
            why_not=noise,
        )
    ]
    out.append(_paper_accuracy(c_acc, soft, paper, n_test, training))
    out.append(_chance_baseline(c_base, hard, c, n_test, training))
    out.append(
        judge_sign(
            c_bound,
            rows["soft_agree"].to_numpy(float) - rows["hard_agree"].to_numpy(float),
            sign=1,
            what="per data set (student - baseline) share of grid cells classified as by the "
            "teacher",
            why_not=noise.replace("a gain", "a difference"),
        )
    )
    out.append(
        judge_bound(
            c_teacher,
            rows["teacher_train"].mean(),
            at_least=1.0,
            what="mean teacher train accuracy over data sets",
            note="min over data sets " + (f"{rows['teacher_train'].min():.3f}" if k else "-"),
            why_not=f"{training}: "
            + (
                "with the reference's fixed epochs (Fig. 1: 4,000 at lr 1e-3) some data sets "
                "keep a few of their 60 points unfit; the paper's figure shows one data set, "
                "whose teacher fits them all"
                if name == "fig1"
                else "some teachers stop (at the epoch limit) before they fit every point"
            ),
        )
    )
    return out


def _paper_accuracy(claim, soft: np.ndarray, paper: dict, n_test: int, training: str) -> dict:
    """The soft-label student's mean held-out accuracy against the paper's one data set's."""
    from softleak.compare.claims import judge_close

    k = len(soft)
    # Tolerance: two standard deviations of (ours - the paper's): the paper's number is one data
    # set's accuracy on its n_test held-out points (binomial variance p (1 - p) / n_test), ours a
    # mean over k data sets (its SEM over data sets).
    student = float(paper["student_test_acc"])
    mean, sem = _mean_sem(soft)
    sd = math.sqrt(
        student * (1 - student) / max(n_test, 1) + (sem if math.isfinite(sem) else 0) ** 2
    )
    return judge_close(
        claim,
        mean,
        student,
        2 * sd,
        what=f"mean held-out accuracy over {k} data set(s) (tolerance: 2 standard deviations "
        f"of the difference: the binomial noise of the paper's one data set of {n_test} "
        "held-out points and our SEM over data sets)",
        note=f"SEM over data sets {sem:.3f}" if math.isfinite(sem) else "",
        why_not=f"{training}; {k} data set(s), and the paper's number is one data set's "
        "(the quick preset has 10)",
    )


def _chance_baseline(claim, hard: np.ndarray, c: int, n_test: int, training: str) -> dict:
    """The hard-label baseline's mean held-out accuracy against chance 1/c."""
    from softleak.compare.claims import judge_close

    k = len(hard)
    # Tolerance: two binomial standard errors of a chance-level accuracy over all held-out points
    # of the k data sets (k n_test guesses, each right with probability 1/c).
    q = 1.0 / c
    base_mean, _ = _mean_sem(hard)
    return judge_close(
        claim,
        base_mean,
        q,
        tol_binomial(q, max(k * n_test, 1), k=2),
        what=f"mean baseline held-out accuracy vs chance 1/c (tolerance: 2 binomial standard "
        f"errors of chance over {k} x {n_test} held-out points)",
        why_not=f"{training}; the baseline learns only D_train^S's random labels, so its "
        f"held-out accuracy is chance up to the noise of {k} data set(s) (the quick preset "
        "has 10)",
    )


def _mean_sem(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if not x.size:
        return math.nan, math.nan
    sem = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return float(x.mean()), sem


def recipe(name: str, title: str, spec: Toy2DSpec, paper: dict) -> Recipe:
    """A 2D-example recipe: presets from the paper-settings ``spec``, ``make`` drawing ``name``."""

    def make(tables: dict, out: Path, preset: str) -> dict:
        return make_figure(name, tables, out, paper)

    return Recipe(
        name=name,
        title=title,
        presets=presets(spec),
        make=make,
        paper=paper,
        claims=claims(name, spec.c, paper),
    )
