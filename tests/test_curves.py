"""softleak.compare.curves: joining results and curves, group means, and locating the jump."""

import numpy as np
import pandas as pd
import pytest

from softleak.compare.curves import first_crossing, learning_curves


def test_first_crossing_interpolates_inside_the_segment():
    x = np.array([0.0, 10.0, 20.0, 30.0])
    y = np.array([0.0, 0.2, 0.6, 1.0])
    assert first_crossing(x, y, 0.4) == pytest.approx(15.0)
    assert first_crossing(x, y, 0.0) == 0.0
    assert first_crossing(x, y, 1.0) == 30.0
    assert np.isnan(first_crossing(x, y, 1.5))
    # the FIRST crossing, even if the curve comes back down
    assert first_crossing([0, 1, 2, 3], [0, 1, 0, 1], 0.5) == pytest.approx(0.5)


EPOCHS = np.arange(0, 1001, 50)


def _sweep(onsets, seeds=3, epochs=EPOCHS):
    """Logistic jumps of test accuracy from 0.1 to 1.0 at ``onsets[n]``; curves plus results."""
    rows, curves = [], []
    for n, onset in onsets.items():
        for s in range(seeds):
            run_id = f"n{n}-s{s}"
            rows.append(
                {
                    "run_id": run_id,
                    "n": n,
                    "seed": s,
                    "rho": 0.65,
                    "shuffle": False,
                    "teacher_train_acc": 1.0,
                    "student_val_acc": 0.01,
                }
            )
            acc = 0.1 + 0.9 / (1 + np.exp(-(epochs - onset) / 10.0))
            for e, v in zip(epochs, acc, strict=True):
                curves.append(
                    {
                        "run_id": run_id,
                        "epoch": int(e),
                        "metric": "student_test_acc",
                        "value": v + 0.001 * s,
                    }
                )
    return pd.DataFrame(rows), pd.DataFrame(curves)


def test_group_means_and_jump_epochs():
    results, curves = _sweep({500: 300.0, 1000: 700.0})
    lc = learning_curves(results, curves, by=("n",))
    m = lc.mean((500,), "student_test_acc")
    assert (m["n_runs"] == 3).all()
    # the three runs differ by 0, 0.001, 0.002: mean offset 0.001, SEM 0.001/sqrt(3)
    assert m["sem"].iloc[0] == pytest.approx(0.001 / np.sqrt(3), rel=1e-6)
    jumps = lc.jumps().set_index("n")
    # the midpoint of a symmetric logistic rise is its onset (to the 50-epoch sampling)
    assert jumps.loc[500, "epoch_50"] == pytest.approx(300.0, abs=5)
    assert jumps.loc[1000, "epoch_50"] == pytest.approx(700.0, abs=5)
    assert jumps.loc[500, "epoch_10"] < 300 < jumps.loc[500, "epoch_90"]
    assert jumps.loc[500, "width"] < 100  # sharp: 10-90% within ~44 epochs (+ sampling)
    assert lc.final.set_index("n").loc[500, "teacher_train_acc"] == 1.0


def test_flat_curves_have_no_jump_and_errors_are_clear():
    results, curves = _sweep({500: 5000.0})  # onset beyond the recorded epochs: no rise
    jumps = learning_curves(results, curves).jumps()
    assert np.isnan(jumps["epoch_50"].iloc[0])
    with pytest.raises(ValueError, match="run_id"):
        learning_curves(results.drop(columns="run_id"), curves)
    with pytest.raises(ValueError, match="n=7|no runs"):
        learning_curves(results, curves, where={"n": 7})
    with pytest.raises(ValueError, match="curve_every"):
        learning_curves(results, curves.iloc[:0])
