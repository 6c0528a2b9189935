"""The bf16 validation gate (benchmarks.precision_check): its criteria on tables with known
differences, and its tiny end-to-end run (structure only: whether bf16 passes at a tiny scale is
what the full check measures, not a test's business)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from benchmarks import precision_check as pc


def grid(jump_at: float, offset: float = 0.0, seeds: int = 3, noise: float = 0.0, rng=None):
    """Held-out accuracy that steps from 0.2 to 1 at alpha >= jump_at (train acc 1), per seed."""
    rows = []
    for alpha in np.round(np.linspace(0.5, 2.0, 7), 3):
        for seed in range(seeds):
            eps = rng.normal(0, noise) if rng is not None else 0.0
            acc = (1.0 if alpha >= jump_at else 0.2) + offset + eps
            rows.append(
                {"experiment": "mlp", "alpha": alpha, "rho": 0.5, "seed": seed,
                 "student_test_acc": acc, "student_train_acc": 1.0}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_identical_tables_pass():
    res = pc.compare_tables(grid(1.25), grid(1.25))
    assert res["passed"] and res["share_within"] == 1.0 and res["largest_threshold_move"] == 0


def test_a_jump_two_steps_later_fails_and_one_step_passes_the_threshold_rule():
    two = pc.compare_tables(grid(1.0), grid(1.5))  # grid step 0.25: two steps
    assert two["largest_threshold_move"] == 2 and not two["passed"]
    one = pc.compare_tables(grid(1.0), grid(1.25))
    assert one["largest_threshold_move"] == 1


def test_a_systematic_offset_beyond_the_slack_fails_and_noise_within_it_passes(global_seed):
    shifted = pc.compare_tables(grid(1.25), grid(1.25, offset=0.1))
    assert shifted["share_within"] < pc.SHARE and not shifted["passed"]
    rng = np.random.default_rng(global_seed)
    noisy = pc.compare_tables(grid(1.25), grid(1.25, noise=0.002, rng=rng))
    assert noisy["passed"]  # |mean| of 3 draws of sd 0.002 stays far below the 0.02 slack


def test_the_tiny_check_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTLEAK_SLOW_PRECISION", "1")  # bf16 runs on any CPU (emulated or not)
    out = tmp_path / "summary.json"
    code = pc.main(["--out", str(tmp_path), "--tiny", "--family", "linear", "--json", str(out)])
    summary = json.loads(out.read_text())
    (fam,) = summary["families"]
    # the summary is the gate applied to the two tables it left (recomputed here), and the exit
    # code is its verdict
    tables = [
        pd.read_parquet(tmp_path / f"linear-{p}" / "results.parquet") for p in ("fp32", "bf16")
    ]
    skip = ("family", "wall_s", "precision", "mechanism")
    assert {k: v for k, v in fam.items() if k not in skip} == pc.compare_tables(*tables)
    assert set(tables[1]["precision"]) == {"bf16"} and set(tables[0]["precision"]) == {"fp32"}
    assert fam["cells"] == 2 * tables[0].groupby(["alpha", "rho", "tau"]).ngroups
    assert code == (0 if fam["passed"] else 1)


def test_every_family_is_checked_on_three_seeds_or_more():
    for tiny in (True, False):
        for name, spec in pc.families(tiny).items():
            field = "seeds" if hasattr(spec, "seeds") else "student_seeds"
            assert getattr(spec, field) >= 3, (name, tiny)
