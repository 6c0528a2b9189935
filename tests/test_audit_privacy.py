"""compare.audit_privacy on hand-made per-example tables: its numbers against compare.privacy
applied to the counts by hand, the pooling it states, per-class leakage, the exposed members and
clear errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from softleak.compare import privacy as P
from softleak.compare.audit_privacy import most_exposed, privacy_stats
from softleak.simulate.audit_result import EXAMPLE_COLUMNS, example_table

C = 3


def _examples(rng, settings=("soft", "hard"), rhos=(0.25, 0.5), seeds=(0, 1), t=40, h=60):
    """Students that get held-out members right with probability 0.9 ("soft") or 1/3."""
    parts = []
    for rho in rhos:
        for seed in seeds:
            for group, n in (("heldout_member", t), ("nonmember", h)):
                labels = rng.integers(0, C, n)
                proba = rng.dirichlet(np.ones(C), size=(len(settings), n))
                for r, name in enumerate(settings):
                    if name == "soft" and group == "heldout_member":
                        right = rng.random(n) < 0.9
                        proba[r, right, labels[right]] += 5.0
                proba /= proba.sum(-1, keepdims=True)
                pred, score = (
                    proba.argmax(-1),
                    np.take_along_axis(
                        proba, np.broadcast_to(labels[None, :, None], (len(settings), n, 1)), -1
                    )[..., 0],
                )
                scored = (pred, score, proba.max(-1))
                # the holdout is the same every run; held-out members differ per split
                index = np.arange(n) if group == "nonmember" else rng.permutation(500)[:n]
                parts.append(example_table(group, index, labels, scored, list(settings), seed, rho))
    return pd.concat(parts, ignore_index=True)


def test_compare_reads_the_columns_simulate_writes():
    from softleak.compare import audit_privacy as A
    from softleak.simulate import audit_result as R

    assert A.EXAMPLE_COLUMNS == R.EXAMPLE_COLUMNS and A.GROUPS == R.GROUPS


def test_numbers_are_compare_privacy_on_the_counts(global_seed):
    ex = _examples(np.random.default_rng(global_seed))
    assert tuple(ex.columns) == EXAMPLE_COLUMNS
    stats = privacy_stats(ex, C, {"soft": 0.5, "hard": 0.25}, confidence=0.9, reference="soft")
    row = stats.settings.set_index("setting").loc["soft"]
    members = ex[(ex.setting == "soft") & (ex.group == "heldout_member")]
    nonmembers = ex[(ex.setting == "soft") & (ex.group == "nonmember")]
    runs = members.groupby(["rho", "seed"])["correct"].agg(["sum", "size"])
    # epsilon: the largest per-run bound, Bonferroni over the 4 runs
    eps = [P.epsilon_lower_bound(int(k), int(t), C, 0.9, tests=4) for k, t in runs.to_numpy()]
    assert row["epsilon_lb"] == max(eps) and row["runs"] == 4
    # membership inference at the worst rho, seeds pooled
    m = members[members.rho == 0.5]["score"].to_numpy()
    n = nonmembers[nonmembers.rho == 0.5]["score"].to_numpy()
    assert row["auc"] == P.auc(m, n)
    assert row["mia_n_member"] == len(m) == 80 and row["mia_n_nonmember"] == 120
    assert math.isnan(row["tpr_at_fpr_0.01"])  # 60 distinct non-members < 100
    # precision at coverage: the mean of each seed's own
    per_seed = [
        P.precision_at_coverage(g.confidence.to_numpy(), g.correct.to_numpy(), 0.1)
        for _, g in members[members.rho == 0.5].groupby("seed")
    ]
    assert row["precision_at_coverage_0.1"] == pytest.approx(np.mean(per_seed))
    # the heuristic bound: the largest per-run bound against the same student's non-members
    non_runs = nonmembers.groupby(["rho", "seed"])["correct"].agg(["sum", "size"])
    base = [
        P.epsilon_lower_bound_vs_baseline(int(k), int(t), int(k0), int(t0), 0.9, 4)
        for (k, t), (k0, t0) in zip(runs.to_numpy(), non_runs.to_numpy(), strict=True)
    ]
    assert row["epsilon_lb_vs_baseline"] == max(base)
    # each setting at its own worst rho: hard's is 0.25
    hard = ex[(ex.setting == "hard") & (ex.rho == 0.25)]
    want = P.auc(hard[hard.group == "heldout_member"].score, hard[hard.group == "nonmember"].score)
    assert stats.settings.set_index("setting").loc["hard", "auc"] == want
    assert set(stats.roc) == {"soft", "hard"}
    assert stats.entry("soft")["tpr_at_fpr"] == {"0.01": None, "0.001": None}


def test_per_class_and_exposed_members(global_seed):
    ex = _examples(np.random.default_rng(global_seed))  # two rho: only the worst one counts
    stats = privacy_stats(ex, C, {"soft": 0.5, "hard": 0.5}, reference="soft")
    table = stats.per_class[stats.per_class.setting == "soft"].set_index("label")
    soft = ex[(ex.setting == "soft") & (ex.rho == 0.5)]
    for label in range(C):
        mine = soft[soft.label == label]
        member = mine[mine.group == "heldout_member"]["correct"]
        non = mine[mine.group == "nonmember"]["correct"]
        assert table.loc[label, "member_acc"] == pytest.approx(member.mean())
        assert table.loc[label, "leakage"] == pytest.approx(member.mean() - non.mean())
        assert table.loc[label, "n_member"] == len(member)
    # the exposed members: soft's held-out members at its worst rho, mean score per index
    held = soft[soft.group == "heldout_member"]
    want = held.groupby("index")["score"].mean().sort_values(ascending=False, kind="stable")
    top = stats.exposed
    assert len(top) == 10
    assert np.allclose(top["mean_score"], want.iloc[:10].to_numpy())
    assert set(top["index"]) <= set(want.index[want >= want.iloc[9]])


def test_most_exposed_averages_over_the_seeds_that_held_a_member_out():
    members = pd.DataFrame(
        {
            "index": [3, 3, 5, 7],
            "label": [1, 1, 0, 2],
            "score": [0.9, 0.7, 0.95, 0.1],
            "correct": [True, False, True, False],
        }
    )
    top = most_exposed(members, top=2)
    assert top["index"].tolist() == [5, 3]
    assert top.loc[1, "mean_score"] == pytest.approx(0.8)
    assert top.loc[1, "held_out"] == 2 and top.loc[1, "recovered"] == 1


def test_bad_tables_raise_one_clear_error(global_seed):
    ex = _examples(np.random.default_rng(global_seed), rhos=(0.5,), seeds=(0,))
    with pytest.raises(ValueError, match="lacks the columns score"):
        privacy_stats(ex.drop(columns="score"), C, {"soft": 0.5})
    bad = ex.assign(group=ex.group.astype(str).replace("nonmember", "other"))
    with pytest.raises(ValueError, match="unknown example groups"):
        privacy_stats(bad, C, {"soft": 0.5})
    with pytest.raises(ValueError, match="probabilities"):
        privacy_stats(ex.assign(score=2.0), C, {"soft": 0.5})
