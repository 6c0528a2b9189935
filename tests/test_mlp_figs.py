"""Numbers the MLP figures report: the jump and the fall before it, seed means, counting lines."""

import numpy as np
import pandas as pd
import pytest

from softleak.compare.table import cell_means
from softleak.paper_figs.mlp_figs import counting_estimates, dip_and_jump
from softleak.paper_figs.mlp_scale import PAPER, QUICK


def test_dip_and_jump_on_a_known_curve():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    test = np.array([0.10, 0.20, 0.15, 0.05, 0.999, 1.0])
    out = dip_and_jump(x, test)
    assert out["jump_at"] == 5.0
    assert out["dip"] == pytest.approx(0.15)  # from the running max 0.20 down to 0.05
    assert out["dip_at"] == 4.0
    assert out["before_jump_min"] == pytest.approx(0.05)
    rising = dip_and_jump(x, np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
    assert rising["jump_at"] is None and rising["dip"] == 0.0


def test_cell_means_average_seeds_and_skip_controls():
    rows = []
    for n in (500, 1000):
        for seed, acc in enumerate((0.2, 0.4)):
            for shuffle in (False, True):
                rows.append(
                    {
                        "n": n,
                        "rho": 0.5,
                        "seed": seed,
                        "d": 100,
                        "c": 100,
                        "shuffle": shuffle,
                        "ablation": "none",
                        "teacher_train_acc": 1.0,
                        "student_train_acc": 1.0,
                        "student_test_acc": acc if not shuffle else 0.0,
                        "student_val_acc": 0.01,
                    }
                )
    cells = cell_means(pd.DataFrame(rows)).set_index("n")
    assert cells.loc[500, "student_test_acc"] == pytest.approx(0.3)  # shuffled runs left out
    assert cells.loc[500, "student_test_acc_sem"] == pytest.approx(0.1)  # sd 0.1414 / sqrt 2
    assert cells.loc[1000, "alpha"] == pytest.approx(0.1)
    assert (cells["n_seeds"] == 2).all()


def test_counting_estimates_follow_the_scales():
    # quick = paper with d and p / 10: #params / 100 up to the c-sized terms
    q = counting_estimates(QUICK.d, QUICK.p, QUICK.c)
    p = counting_estimates(PAPER.d, PAPER.p, PAPER.c)
    assert q["identify_rho_n"] == pytest.approx((100 * 50 + 50 + 50 * 100 + 100 - 51) / 99)
    assert 50 < p["identify_rho_n"] / q["identify_rho_n"] < 100
    assert QUICK.n(100_000) == 1000 and PAPER.n(100_000) == 100_000
