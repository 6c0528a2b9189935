"""The 2D examples (Fig. 1, c = 3; Fig. 8, c = 20): one builder for both recipes.

Each preset is one ``Toy2DSpec`` (sweep name ``toy2d-c<C>``) at the reference code's settings
(REFERENCE.md "2D toy examples"). The reference trains one data set (one teacher, one split) and
reports mean +- SEM over 5 student initialisations on it; we report mean +- SEM over data sets
(each averaged over its student seeds), which includes the data-set noise that dominates with 60
points, and draw the four panels for data set 0:

- ``quick``: the paper's settings on 10 data sets, one student of each kind per data set;
- ``paper``: the paper's settings on 5 data sets with the reference's 5 students of each kind per
  data set (more work than ``quick``; its SEM over data sets has 4 degrees of freedom).

``make`` writes ``figN.png/pdf`` (panels A-D and the per-data-set accuracies), ``figN_runs.csv``
(one row per student) and returns the headline numbers.
"""

from __future__ import annotations

from pathlib import Path

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
    summary["text"] = "\n".join(lines)
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


def recipe(name: str, title: str, spec: Toy2DSpec, paper: dict) -> Recipe:
    """A 2D-example recipe: presets from the paper-settings ``spec``, ``make`` drawing ``name``."""

    def make(tables: dict, out: Path, preset: str) -> dict:
        return make_figure(name, tables, out, paper)

    return Recipe(name=name, title=title, presets=presets(spec), make=make, paper=paper)
