"""The weak-phase curve where the data is: ``compare.leakage`` (cells, tolerance, 1/d fits), the
predicted curve in ``compare overlay``, predicted contours on phase diagrams, and ``softleak
theory leakage``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from softleak.cli import main
from softleak.compare.leakage import ABS_TOL, curve_agreement
from softleak.theory.leakage import leakage_prediction, predicted_accuracy


def synthetic(d, offsets, *, teacher="svm", seeds=4, rng=None, status=None):
    """logistic-pinv rows whose held-out accuracy is the prediction plus ``offsets[(rho, alpha)]``
    plus seed noise of mean zero (+-0.01, antithetic pairs)."""
    rows = []
    noise = np.tile([0.01, -0.01], seeds // 2)
    for (rho, alpha), off in offsets.items():
        base = 0.5 if teacher == "minnorm" else float(predicted_accuracy(alpha, rho))
        for s in range(seeds):
            rows.append(
                {
                    "experiment": "logistic-pinv",
                    "d": d,
                    "c": 2,
                    "n": int(alpha * d),
                    "alpha": alpha,
                    "rho": rho,
                    "seed": s,
                    "shuffle": False,
                    "student_train_acc": 1.0,
                    "student_test_acc": base + off + noise[s],
                    "teacher_train_acc": 1.0,
                    "teacher": teacher,
                    "teacher_status": "ok" if status is None else status(s),
                }
            )
    return pd.DataFrame(rows)


def test_cells_differences_and_tolerance():
    offsets = {(0.5, 0.5): 0.0, (0.5, 1.0): 0.05, (0.3, 1.5): -0.005, (0.8, 1.5): 0.0}
    table = curve_agreement(synthetic(200, offsets)).table.set_index(["rho", "alpha"])
    sem = 0.02 / np.sqrt(3) / 2  # sd of (+-0.01 x 4) / sqrt(4)
    for (rho, alpha), off in offsets.items():
        cell = table.loc[(rho, alpha)]
        assert cell["n_seeds"] == 4 and cell["dropped"] == 0
        assert cell["diff"] == pytest.approx(off, abs=1e-12)
        assert cell["sem"] == pytest.approx(sem, rel=1e-9)
        assert cell["within"] == (abs(off) <= max(ABS_TOL, 2 * sem))
    assert table.loc[(0.5, 1.0), "in_goal"] and not table.loc[(0.8, 1.5), "in_goal"]
    assert table.loc[(0.8, 1.5), "predicted"] == 1.0  # rho alpha >= 1: the student is the teacher


def test_not_separable_seeds_are_left_out_and_counted():
    df = synthetic(200, {(0.5, 1.0): 0.0}, seeds=6, status=lambda s: "ok" if s < 4 else "x")
    df.loc[df["seed"] >= 4, "student_test_acc"] = 0.5  # what a w = 0 teacher's student scores
    df.loc[df["seed"] >= 4, "teacher_status"] = "not_separable"
    cell = curve_agreement(df).table.iloc[0]
    assert cell["n_seeds"] == 4 and cell["dropped"] == 2 and abs(cell["diff"]) < 1e-12


def test_teachers_get_their_own_theory():
    minnorm = synthetic(200, {(0.5, 0.5): 0.0, (0.5, 1.5): 0.0}, teacher="minnorm")
    table = curve_agreement(minnorm).table
    assert table.loc[table["alpha"] == 0.5, "predicted"].item() == 0.5
    assert np.isnan(table.loc[table["alpha"] == 1.5, "predicted"].item())
    adam = synthetic(200, {(0.5, 1.0): 0.0}).drop(columns=["teacher", "teacher_status"])
    cell = curve_agreement(adam).table.iloc[0]  # a table from before teachers: logistic
    assert cell["teacher"] == "logistic"
    assert cell["predicted"] == pytest.approx(float(predicted_accuracy(1.0, 0.5)))
    with pytest.raises(ValueError, match="logistic-pinv"):
        curve_agreement(adam.assign(experiment="multinomial"))


def test_scaling_recovers_a_one_over_d_gap():
    frames = [synthetic(d, {(0.5, 1.0): 0.002 + 3.0 / d}) for d in (100, 200, 400, 800)]
    agreement = curve_agreement(pd.concat(frames, ignore_index=True))
    fit = agreement.scaling().iloc[0]
    assert fit["diff_inf"] == pytest.approx(0.002, abs=1e-9)
    assert fit["c_over_d"] == pytest.approx(3.0, abs=1e-6) and fit["dof"] == 2
    by_d = agreement.by_d().set_index("d")
    assert by_d.loc[100, "mean_diff"] == pytest.approx(0.032)
    goal = agreement.goal()
    assert goal["d"] == 800 and goal["cells"] == 1 and goal["met"]  # 0.00575 <= 0.01
    assert "d = 800" in agreement.summary() and "0.5" in agreement.format()


def _svm_sweep(tmp_path):
    from softleak.simulate.spec import SweepSpec
    from softleak.simulate.sweep import run_sweep

    spec = SweepSpec(
        "logistic-pinv",
        d=(40,),
        alpha=(0.5, 1.0, 1.5),
        rho=(0.5, 0.8),
        seeds=3,
        teacher_kind="svm",
        n_val=10,
    )
    run_sweep(spec, tmp_path / "svm")
    return tmp_path / "svm"


def test_overlay_and_phase_diagram_draw_the_prediction(tmp_path, capsys):
    from softleak.compare import load_sweep, overlay_theory, phase_diagram
    from softleak.compare.style import new_figure

    folder = _svm_sweep(tmp_path)
    df, _ = load_sweep(folder)
    ov = overlay_theory(df, n_boot=10)
    assert ov.teacher == "svm" and ov.leakage is not None
    fig, (ax,) = new_figure()
    ov.plot(ax=ax, rho=0.5)
    theory = [ln for ln in ax.get_lines() if ln.get_label() == "held-out: max-margin theory"]
    assert len(theory) == 1
    x, y = (np.asarray(v, dtype=float) for v in theory[0].get_data())
    assert np.allclose(y, predicted_accuracy(x, 0.5), equal_nan=True)
    assert ov.to_dict()["theory_curve"] and len(ov.to_dict()["leakage"]) == 6
    diagram = phase_diagram(df, contours=True)
    c = diagram.contours
    assert c is not None and c.z.shape == (c.y.size, c.x.size)
    j, i = 50, 120  # z[i, j] is the prediction at (alpha = x[j], rho = y[i])
    assert c.z[i, j] == pytest.approx(float(predicted_accuracy(c.x[j], c.y[i])))
    fig, (ax,) = new_figure()
    diagram.plot(ax=ax)
    assert "max-margin theory" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert diagram.to_dict()["contours"]["levels"]
    assert phase_diagram(df).contours is None  # off by default
    out = tmp_path / "o.png"
    assert main(["compare", "overlay", str(folder), "--out", str(out), "--n-boot", "10"]) == 0
    assert "held-out accuracy vs max-margin theory, d = 40" in capsys.readouterr().out
    assert main(["compare", "phase", str(folder), "--out", str(out), "--contours"]) == 0


def test_theory_leakage_command(capsys):
    argv = ["theory", "leakage", "--alpha", "0.5:1.5:3", "--rho", "0.3,0.8", "--json"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    rows = json.loads(out)
    keys = {"alpha", "rho", "kappa", "support_density", "r", "g", "accuracy"}
    assert len(rows) == 6 and all(set(r) == keys for r in rows)
    for row in rows:
        want = leakage_prediction(row["alpha"], row["rho"]).rows()[0]
        assert row == pytest.approx(want)
    assert main(["theory", "leakage", "--alpha", "2.5", "--rho", "0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["accuracy"] is None  # no max-margin teacher
    assert main(["theory", "leakage", "--alpha", "1", "--rho", "0.5"]) == 0
    assert "0.6088595" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["--alpha", "0", "--rho", "0.5"],
        ["--alpha", "1", "--rho", "1"],
        ["--alpha", "1:2:0", "--rho", "0.5"],
        ["--alpha", "1"],
        ["--alpha", "0.1:1.9:2000", "--rho", "0.001:0.999:1000"],
    ],
)
def test_theory_leakage_bad_input_is_one_line_exit_2(argv, capsys):
    try:
        code = main(["theory", "leakage", *argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err


def test_theory_leakage_is_fast_and_torch_free():
    script = (
        "import sys, time; from softleak.cli import main; t = time.perf_counter(); "
        "rc = main(['theory', 'leakage', '--alpha', '0.05:1.95:100', '--rho', '0.05:0.95:50', "
        "'--json']); assert 'torch' not in sys.modules; "
        "sys.stderr.write(str(time.perf_counter() - t)); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 5000
    # 5,000 grid points: ~0.1 s of numpy plus imports on an idle machine; 3 s leaves room for
    # a shared one (the tests run beside other work)
    assert float(proc.stderr.strip().splitlines()[-1]) < 3.0


def test_seed_gaps_pool_cells_per_seed():
    offsets = {(0.3, 0.5): 0.02, (0.5, 1.0): 0.04, (0.8, 1.5): 0.3}  # the last is not a goal cell
    agreement = curve_agreement(synthetic(200, offsets, seeds=6))
    gaps = agreement.seed_gaps()
    assert np.allclose(gaps, 0.03 + np.tile([0.01, -0.01], 3))  # per seed: mean of goal cells
    pooled = agreement.pooled()
    assert pooled["mean_diff"] == pytest.approx(0.03) and pooled["seeds"] == 6
    assert pooled["se"] == pytest.approx(np.std(gaps, ddof=1) / np.sqrt(6))
    chance = agreement.seed_gaps(against="chance")
    want = np.mean([float(predicted_accuracy(a, r)) + o - 0.5 for (r, a), o in offsets.items()][:2])
    assert np.allclose(chance, want + np.tile([0.01, -0.01], 3))


@pytest.mark.slow
def test_max_margin_curve_at_d_400(tmp_path, global_seed):
    """The theory_curve quick sweep with another base seed (d = 400, 16 exact teachers per alpha,
    3 rho): the pooled gap over seeds is within 3 SE of 0, no cell is off by 4.5 SE (t with 15
    dof: ~4e-4 per cell), and the min-norm control's gap is within 3 SE of 0. (The issue's goal,
    >= 90% of 18 cells within max(0.01, 2 SE), is a measurement, not a test for any seed: with SE
    ~0.01 per cell two cells outside 2 SE happen by chance.)"""
    import dataclasses

    from softleak.paper_figs.theory_curve import QUICK
    from softleak.simulate.sweep import run_sweep

    svm = dataclasses.replace(QUICK["theory_curve-svm"], seed=global_seed)
    agreement = curve_agreement(run_sweep(svm, tmp_path / "svm"))
    cells = agreement.table[agreement.table["in_goal"]]
    assert (cells["z"].abs() < 4.5).all(), agreement.format()
    pooled = agreement.pooled()
    assert abs(pooled["mean_diff"]) <= 3 * pooled["se"]
    minnorm = dataclasses.replace(QUICK["theory_curve-minnorm"], seed=global_seed)
    control = curve_agreement(run_sweep(minnorm, tmp_path / "minnorm")).pooled()
    assert abs(control["mean_diff"]) <= 3 * control["se"]
