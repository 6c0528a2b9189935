"""The 2D examples (``simulate.toy2d``, ``softleak simulate toy2d``, ``compare.boundaries``).

Oracles: the spec's validation; the data split is a partition of round(rho n) / rest; batched
training equals training each data set alone (seeds derive from the data-set index); per-replica
stopping leaves each teacher as it would be alone; on fresh points with random labels every model's
accuracy is Binomial(n_val, 1/c) / n_val (the labels are independent of everything it saw); Gibbs'
inequality CE(p, q) >= H(p); a finished directory is found, not retrained. Tiny networks and a few
hundred epochs keep each test at about a second.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from softleak.simulate.rundir import IdentityMismatch
from softleak.simulate.toy2d import Toy2DSpec, grid_axis, make_points, run_toy2d, train_toy2d

#: Batched vs one-at-a-time in float64: the replicas' products are computed independently, so the
#: two agree to round-off (measured: bit for bit); 200 Adam steps amplify round-off far below this.
BATCH_ATOL = 1e-9

#: Width of the chance band, in binomial standard deviations (two-sided p ~ 6e-7 per check).
CHANCE_SIGMAS = 5.0


def tiny(seed: int = 0, **overrides) -> Toy2DSpec:
    """A seconds-sized spec: hidden 32, 200 epochs at lr 0.01, float64, a 24 x 24 map."""
    base = dict(
        seed=seed,
        seeds=3,
        hidden=(32,),
        teacher_epochs=200,
        student_epochs=200,
        teacher_lr=0.01,
        student_lr=0.01,
        grid=24,
        dtype="float64",
    )
    return Toy2DSpec(**(base | overrides))


# spec and data -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        {"experiment": "mlp"},
        {"c": 1},
        {"n": 1},
        {"rho": 0.0},
        {"rho": 1.0},
        {"rho": 1.5},
        {"rho": 0.005},  # round(0.3) = 0 student train points
        {"rho": 0.995},  # round(59.7) = 60: no held-out point
        {"tau": 0.0},
        {"tau": math.inf},
        {"hidden": ()},
        {"hidden": (0,)},
        {"seeds": 0},
        {"student_seeds": 0},
        {"teacher_epochs": 0},
        {"student_epochs": 0},
        {"n_val": 0},
        {"grid": 1},
        {"teacher_lr": 0.0},
        {"student_lr": -1e-3},
        {"teacher_stop_acc": 0.0},
        {"teacher_stop_acc": 1.5},
        {"dtype": "float16"},
    ],
)
def test_spec_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        Toy2DSpec(**bad)


@pytest.mark.parametrize(("n", "rho"), [(60, 0.6), (90, 0.7), (100, 0.29), (7, 0.5), (50, 0.58)])
def test_make_points_is_reproducible_and_splits_round_rho_n(global_seed, n, rho):
    # (90, 0.7) and (100, 0.29): rho * n is 62.999... and 28.999... in floating point.
    spec = Toy2DSpec(n=n, rho=rho, c=5, seed=global_seed, n_val=50)
    X, y, train, test, X_val, y_val = make_points(spec, 1)
    again = make_points(spec, 1)
    for a, b in zip((X, y, train, test, X_val, y_val), again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = make_points(spec, 2)
    assert not np.array_equal(X, other[0])  # data sets differ
    assert X.shape == (n, 2) and X_val.shape == (50, 2)
    assert np.all(np.abs(X) <= 1) and np.all(np.abs(X_val) <= 1)
    assert set(np.unique(y)) <= set(range(5)) and set(np.unique(y_val)) <= set(range(5))
    assert len(train) == round(rho * n) == spec.n_train
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(n))


def test_grid_axes_agree_and_are_cell_centres():
    from softleak.compare.boundaries import grid_axis as compare_axis

    for g in (2, 7, 150):
        axis = grid_axis(g)
        np.testing.assert_array_equal(axis, compare_axis(g))
        np.testing.assert_allclose(np.diff(axis), 2 / g)
        np.testing.assert_allclose(axis, -axis[::-1], atol=1e-15)  # symmetric about 0
        assert axis[0] == pytest.approx(-1 + 1 / g)


# batched == one at a time ---------------------------------------------------------------------
NUMERIC = [
    "teacher_epochs",
    "teacher_train_acc",
    "teacher_val_acc",
    "student_train_acc",
    "student_test_acc",
    "student_val_acc",
    "match_teacher_test_acc",
    "train_ce",
    "test_ce",
    "train_target_entropy",
]


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = ["seed", "student_kind", "student_seed"]
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[key], b[key])
    for col in ("data_seed", "teacher_seed", "model_seed"):
        np.testing.assert_array_equal(a[col], b[col])
    np.testing.assert_allclose(
        a[NUMERIC].to_numpy(float), b[NUMERIC].to_numpy(float), rtol=0, atol=BATCH_ATOL
    )


def assert_same_maps(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = ["seed", "model", "student_seed", "ix", "iy"]
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_batched_equals_one_data_set_at_a_time(global_seed):
    spec = tiny(global_seed)
    full = train_toy2d(spec)
    for rep in (0, 2):
        alone = train_toy2d(spec, replicas=[rep])
        assert_same_rows(full["results"][full["results"].seed == rep], alone["results"])
        assert_same_maps(full["grid"][full["grid"].seed == rep], alone["grid"])
        pd.testing.assert_frame_equal(
            full["points"][full["points"].seed == rep].reset_index(drop=True), alone["points"]
        )
    # without the hook: data set 0 of a one-data-set spec is data set 0 of the three
    single = train_toy2d(tiny(global_seed, seeds=1))
    assert_same_rows(full["results"][full["results"].seed == 0], single["results"])


def test_replicas_must_be_valid_indices():
    for bad in ([], [3], [-1], [0, 0]):
        with pytest.raises(ValueError):
            train_toy2d(tiny(seeds=3), replicas=bad)


def test_per_replica_stopping_matches_each_teacher_alone(global_seed):
    spec = tiny(
        global_seed,
        seeds=4,
        hidden=(64,),
        teacher_epochs=3_000,
        teacher_stop_acc=0.9,
        student_epochs=50,
    )
    full = train_toy2d(spec)
    teachers = full["results"].groupby("seed")[["teacher_epochs", "teacher_train_acc"]].first()
    # the teachers stop at different epochs, so a shared stop would change some of them
    assert teachers["teacher_epochs"].nunique() >= 2
    stopped = teachers[teachers["teacher_epochs"] < spec.teacher_epochs]
    assert (stopped["teacher_train_acc"] > spec.teacher_stop_acc).all()
    first, last = teachers["teacher_epochs"].idxmin(), teachers["teacher_epochs"].idxmax()
    for rep in {first, last}:
        alone = train_toy2d(spec, replicas=[rep])
        # same stopping epoch, same function (map, val accuracy) and same logits (the soft
        # student's targets and hence its whole training)
        assert_same_rows(full["results"][full["results"].seed == rep], alone["results"])
        assert_same_maps(full["grid"][full["grid"].seed == rep], alone["grid"])


# metrics --------------------------------------------------------------------------------------
@pytest.fixture
def tiny_run(tmp_path, global_seed):
    spec = tiny(global_seed, c=4, n_val=4_000, student_seeds=2)
    table = run_toy2d(spec, tmp_path / "run", threads=1)
    return spec, table, tmp_path / "run"


def test_everyone_is_at_chance_on_fresh_random_labels(tiny_run):
    spec, table, _ = tiny_run
    p = 1 / spec.c
    band = CHANCE_SIGMAS * math.sqrt(p * (1 - p) / spec.n_val)
    for column in ("student_val_acc", "teacher_val_acc"):
        np.testing.assert_array_less(np.abs(table[column] - p), band)
    # the check has teeth: the same models are far above chance on the points they were fit to
    hard = table[table.student_kind == "hard"]
    assert hard["student_train_acc"].mean() > p + 4 * band


def test_train_ce_obeys_gibbs(tiny_run):
    spec, table, _ = tiny_run
    # CE(p, q) >= H(p) for any student q, with p the tau soft labels the CE is taken against
    assert (table["train_ce"] >= table["train_target_entropy"] - 1e-12).all()
    assert (table["train_target_entropy"] <= math.log(spec.c) + 1e-12).all()
    # the soft student is trained on exactly p: its KL to them is the smaller one
    wide = table.pivot_table(
        index=["seed", "student_seed"], columns="student_kind", values="train_ce"
    )
    assert (wide["soft"] < wide["hard"]).all()


def test_finished_directory_is_not_retrained(tiny_run, monkeypatch):
    import softleak.simulate.toy2d as engine

    spec, table, out = tiny_run
    files = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    def boom(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(engine, "train_toy2d", boom)
    again = run_toy2d(spec, out, threads=1)
    pd.testing.assert_frame_equal(again, table)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == files
    # a changed spec in the same directory is refused, and trains once restarted (so the check
    # above has teeth)
    other = Toy2DSpec(**{**spec.to_dict(), "tau": 3.0})
    with pytest.raises(IdentityMismatch, match="tau: 10.0 there, 3.0 here"):
        run_toy2d(other, out, threads=1)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == files
    with pytest.raises(AssertionError, match="trained again"):
        run_toy2d(other, out, threads=1, restart=True)


# command line ---------------------------------------------------------------------------------
def run_cli(argv):
    from softleak.cli import main

    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def test_cli_writes_the_run_and_prints_accuracies(tmp_path, capsys):
    out = tmp_path / "toy"
    argv = [
        "simulate",
        "toy2d",
        "--seeds",
        "2",
        "--hidden",
        "32",
        "--teacher-epochs",
        "200",
        "--student-epochs",
        "200",
        "--teacher-lr",
        "0.01",
        "--grid",
        "12",
        "--out",
        str(out),
    ]
    assert run_cli(argv) == 0
    printed = capsys.readouterr().out
    for name in ("results.parquet", "points.parquet", "grid.parquet", "config.json"):
        assert (out / name).is_file()
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 2 * 2 and set(table.student_kind) == {"soft", "hard"}
    for kind, label in (("soft", "soft-label student"), ("hard", "hard-label baseline")):
        mean = table.loc[table.student_kind == kind, "student_test_acc"].mean()
        assert f"{label} {mean:.3f}" in printed
    grid = pd.read_parquet(out / "grid.parquet")
    assert len(grid) == (2 + 2 * 2) * 12 * 12


@pytest.mark.parametrize("bad", [["--rho", "1.5"], ["--c", "1"], ["--tau", "0"]])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, bad):
    out = tmp_path / "toy"
    assert run_cli(["simulate", "toy2d", *bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err
    assert not out.exists()


# compare.boundaries ---------------------------------------------------------------------------
def test_decision_maps_load_the_run(tiny_run):
    from softleak.compare import decision_maps

    spec, table, out = tiny_run
    maps = decision_maps(out)
    assert maps.c == spec.c and maps.tau == spec.tau and maps.seeds == (0, 1, 2)
    assert maps.chance == 1 / spec.c
    np.testing.assert_array_equal(maps.axis, grid_axis(spec.grid))
    assert maps.teacher.shape == (3, spec.grid, spec.grid)
    assert maps.students["soft"].shape == (3, 2, spec.grid, spec.grid)
    # accuracies: mean over all runs (equal counts per data set) and SEM over data-set means
    for kind in ("soft", "hard"):
        rows = table[table.student_kind == kind]
        assert maps.test_acc[kind].mean == pytest.approx(rows["student_test_acc"].mean())
        per_set = rows.groupby("seed")["student_test_acc"].mean()
        assert maps.test_acc[kind].sem == pytest.approx(per_set.sem())
        assert maps.test_acc[kind].n == 3
    assert maps.teacher_train_acc.mean == pytest.approx(
        table.groupby("seed")["teacher_train_acc"].first().mean()
    )
    # the arrays hold the grid rows: cell (ix, iy) of student seed 1, data set 2
    grid = pd.read_parquet(out / "grid.parquet")
    rows = grid[(grid.seed == 2) & (grid.model == "hard") & (grid.student_seed == 1)]
    np.testing.assert_array_equal(maps.map("hard", 2, 1)[rows.ix, rows.iy], rows.pred)
    # the test points are the points.parquet test split, each inside its own grid cell
    test = maps.correct("soft", seed=1)
    assert len(test) == spec.n - spec.n_train
    cell = np.floor((test[["x0", "x1"]].to_numpy() + 1) / 2 * spec.grid).astype(int)
    centre = maps.axis[np.clip(cell, 0, spec.grid - 1)]
    assert np.all(np.abs(centre - test[["x0", "x1"]].to_numpy()) <= 1 / spec.grid + 1e-12)
    assert maps.to_dict()["test_acc"]["soft"]["n"] == 3


def test_decision_maps_plot_draws_four_panels(tiny_run, tmp_path):
    from softleak.compare import decision_maps
    from softleak.compare.style import new_figure, save_figure

    _, _, out = tiny_run
    maps = decision_maps(out)
    axes = maps.plot(seed=1)
    fig = axes[0].figure
    assert len(fig.axes) == 4
    assert all(ax.get_title() for ax in axes)
    assert f"{100 * maps.test_acc['soft'].mean:.1f}" in axes[2].get_title()
    assert len(axes[3].collections) > 0  # boundary contours
    path = save_figure(fig, tmp_path / "maps.png")
    assert path.stat().st_size > 5_000
    _, [ax] = new_figure()
    assert maps.plot_accuracy(ax=ax) is ax
    with pytest.raises(ValueError):
        maps.plot(axes=axes[:3])
    with pytest.raises(ValueError):
        maps.map("soft", seed=7)


def test_decision_maps_missing_files_are_one_line_errors(tiny_run, tmp_path):
    from softleak.compare import decision_maps

    with pytest.raises(ValueError, match="does not exist"):
        decision_maps(tmp_path / "nowhere")
    _, _, out = tiny_run
    (out / "grid.parquet").unlink()
    with pytest.raises(ValueError, match="grid.parquet"):
        decision_maps(out)
