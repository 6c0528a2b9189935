"""Claims of the small nonlinear recipes (Figs. 1, 8: the 2D examples; Figs. 3, 10, 11: modular
addition; Fig. 9: GPT-2): hand-made tables where each claim should hold and where it should
fail, so the verdict paths a tiny run does not reach (>= 3 seeds, >= 5 cells, the paper's
settings) are checked. No training: each test runs in milliseconds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from softleak.paper_figs import fig9, toy2d_figs
from softleak.paper_figs.modadd_claims import FIG10_CLAIMS, fig10_claims, rho_claim_set, rho_claims

FIG1_PAPER = {"baseline_test_acc": 0.30, "student_test_acc": 0.50}
TOY_SPEC = {"teacher_epochs": 4_000, "teacher_lr": 1e-3, "student_epochs": 4_000}


def verdicts(records: list[dict]) -> dict[str, str]:
    return {r["id"].split(".", 1)[1]: r["verdict"] for r in records}


# --- Figs. 1 and 8 ------------------------------------------------------------------------------
def toy_rows(k: int, soft: float, hard: float, agree=(0.8, 0.5), teacher: float = 1.0):
    """k data sets with accuracies around ``soft`` / ``hard`` (a fixed +-0.02 pattern)."""
    wiggle = np.resize([0.02, -0.02, 0.01, -0.01, 0.0], k)
    return pd.DataFrame(
        {
            "seed": range(k),
            "teacher_train": teacher,
            "soft_test": soft + wiggle,
            "hard_test": hard - wiggle,
            "soft_agree": agree[0] + wiggle,
            "hard_agree": agree[1] - wiggle,
        }
    )


def test_toy2d_claims_hold_on_a_table_like_the_paper():
    records = toy2d_figs.judge(
        "fig1", toy_rows(10, 0.5, 1 / 3), c=3, n_test=24, paper=FIG1_PAPER, spec=TOY_SPEC
    )
    assert [r["id"] for r in records] == [c.id for c in toy2d_figs.claims("fig1", 3, FIG1_PAPER)]
    assert set(verdicts(records).values()) == {"holds"}


def test_toy2d_claims_fail_where_the_student_learns_nothing_extra():
    rows = toy_rows(10, 0.9, 0.6, agree=(0.5, 0.5), teacher=0.95)
    rows["soft_test"] = rows["hard_test"] + np.resize([0.05, -0.05], 10)  # no gain on average
    rows["soft_agree"] = rows["hard_agree"] + np.resize([0.05, -0.05], 10)
    v = verdicts(toy2d_figs.judge("fig1", rows, c=3, n_test=24, paper=FIG1_PAPER, spec=TOY_SPEC))
    assert v["student_beats_baseline"] == "fails"
    assert v["boundaries_follow_teacher"] == "fails"
    assert v["baseline_at_chance"] == "fails"  # 0.6 against chance 1/3
    assert v["teacher_memorizes"] == "fails"
    rows = toy_rows(10, 0.9, 1 / 3)
    v = verdicts(toy2d_figs.judge("fig1", rows, c=3, n_test=24, paper=FIG1_PAPER, spec=TOY_SPEC))
    assert v["student_acc"] == "fails"  # 0.9 against the paper's ~0.5


def test_toy2d_differences_on_two_data_sets_are_untested():
    rows = toy_rows(2, 0.5, 1 / 3)
    records = toy2d_figs.judge("fig8", rows, c=20, n_test=24, paper=FIG1_PAPER, spec=TOY_SPEC)
    v = verdicts(records)
    assert v["student_beats_baseline"] == v["boundaries_follow_teacher"] == "untested"
    assert all(r["note"] for r in records if r["verdict"] != "holds")


def test_toy2d_agreement_counts_cells_where_both_maps_are_defined():
    teacher = np.array([[0, 1], [2, -1]])
    students = np.array([[[[0, 1], [0, 2]], [[0, 0], [0, 0]]]])  # (S=1, K=2, 2, 2)
    # student 0 agrees on 2 of the 3 defined cells, student 1 on 1 of 3
    assert toy2d_figs._agreement(teacher, students, 0) == pytest.approx(0.5)
    assert np.isnan(toy2d_figs._agreement(teacher, None, 0))


# --- Figs. 3 and 11 -----------------------------------------------------------------------------
RHOS = (0.1, 0.3, 0.5, 0.7, 0.9)
CKPTS = [
    {"name": "e1", "epoch": 2_500, "train_acc": 1.0, "val_acc": 0.10},
    {"name": "e2", "epoch": 5_000, "train_acc": 1.0, "val_acc": 0.50},
    {"name": "e3", "epoch": 10_000, "train_acc": 1.0, "val_acc": 1.00},
]
SMALL_TAU_VAL = (0.01, 0.02, 0.05, 0.30, 0.90)  # reaches 0.5 at rho ~ 0.77


def modadd_results(*, p=113, train_frac=0.3, leak=0.3, spread=0.0, efficient=True):
    """Students of the three checkpoints at tau 0.1 and 10 over RHOS, one repetition: at tau 10
    the memorizing teachers' students have val acc at the teacher's and test acc ``leak`` above
    it, the grokked teacher's val acc 1 (0 unless ``efficient``); at tau 0.1 every checkpoint's
    students have SMALL_TAU_VAL (+ ``spread`` per checkpoint)."""
    rows = []
    for k, c in enumerate(CKPTS):
        for i, rho in enumerate(RHOS):
            for tau in (0.1, 10.0):
                if tau == 0.1:
                    val = SMALL_TAU_VAL[i] + spread * k
                elif c["name"] == "e3":
                    val = 1.0 if efficient else 0.0
                else:
                    val = c["val_acc"]
                rows.append(
                    {
                        "model": "transformer",
                        "checkpoint": c["name"],
                        "teacher_epoch": c["epoch"],
                        "teacher_val_acc": c["val_acc"],
                        "tau": tau,
                        "rho": rho,
                        "student_seed": 0,
                        "student_train_acc": 1.0,
                        "student_val_acc": val,
                        "student_test_acc": min(1.0, val + leak),
                        "p": p,
                        "train_frac": train_frac,
                        "student_epochs": 40_000,
                    }
                )
    return pd.DataFrame(rows)


def test_rho_claims_hold_on_a_table_like_the_paper():
    records = rho_claims("fig3", modadd_results(), CKPTS)
    assert [r["id"] for r in records] == [c.id for c in rho_claim_set("fig3", "transformer")]
    assert set(verdicts(records).values()) == {"holds"}, verdicts(records)
    transition = next(r for r in records if r["id"] == "fig3.tau_to_0_transition")
    assert transition["measured"] == pytest.approx(0.7 + 0.2 * 0.2 / 0.6, abs=1e-6)


def test_rho_claims_fail_without_leakage_or_independence():
    table = modadd_results(leak=-0.05, spread=0.2, efficient=False)
    table.loc[table.index[0], "student_train_acc"] = 0.9
    v = verdicts(rho_claims("fig3", table, CKPTS))
    assert v["test_above_val"] == "fails"
    assert v["small_tau_independent"] == "fails"
    assert v["high_tau_data_efficient"] == "fails"
    assert v["student_fits_train"] == "fails"
    ckpts = [dict(CKPTS[0], train_acc=0.3), CKPTS[1], dict(CKPTS[2], val_acc=0.4)]
    v = verdicts(rho_claims("fig3", modadd_results(), ckpts))
    assert v["memorizing_teacher"] == v["grokked_teacher"] == "fails"


def test_rho_transition_is_judged_only_at_the_papers_modulus():
    records = rho_claims("fig3", modadd_results(p=59, train_frac=0.4), CKPTS)
    transition = next(r for r in records if r["id"] == "fig3.tau_to_0_transition")
    assert transition["verdict"] == "untested" and "p = 59" in transition["note"]
    table = modadd_results()
    table.loc[table["tau"] == 0.1, "student_val_acc"] = 0.2  # never generalizes
    v = verdicts(rho_claims("fig3", table, CKPTS))
    assert v["tau_to_0_transition"] == "untested"


def test_rho_claims_of_the_mlp_and_of_one_checkpoint():
    table = modadd_results().assign(model="mlp")
    records = rho_claims("fig11", table, CKPTS)
    assert [r["id"] for r in records] == [c.id for c in rho_claim_set("fig11", "mlp")]
    assert set(verdicts(records).values()) == {"holds"}
    one = rho_claims("fig11", table[table["checkpoint"] == "e3"], CKPTS[2:])
    v = verdicts(one)
    assert v["small_tau_independent"] == v["held_back_by_memorizing_teacher"] == "untested"


# --- Fig. 10 ------------------------------------------------------------------------------------
def panel(rho, tau, train9=None, test9=None, val9=None, val5=None, val_final=1.0) -> dict:
    return {
        "rho": rho,
        "tau": tau,
        "student_train_acc": {"final": 1.0, "epoch_to_0.5": None, "epoch_to_0.9": train9},
        "student_test_acc": {"final": 1.0, "epoch_to_0.5": None, "epoch_to_0.9": test9},
        "student_val_acc": {"final": val_final, "epoch_to_0.5": val5, "epoch_to_0.9": val9},
    }


def teacher_curves(val_at: float = 1_500.0) -> pd.DataFrame:
    """Train acc 1 from epoch 50, val acc rising linearly to 1 at ``val_at`` (0.9 there - 10%)."""
    e = np.arange(0, 3_000, 10, dtype=float)
    return pd.DataFrame(
        {
            "epoch": e,
            "train_acc": np.clip(e / 50, 0, 1),
            "val_acc": np.clip(e / (val_at / 0.9), 0, 1),
        }
    )


def test_fig10_claims_hold_fail_and_stay_untested():
    fast = panel(0.3, 10.0, train9=10, test9=40, val9=50, val5=20)
    grok = panel(0.9, 0.1, train9=30, val9=3_000, val5=2_000)
    records = fig10_claims([fast, grok], teacher_curves(), 40_000)
    assert [r["id"] for r in records] == [c.id for c in FIG10_CLAIMS]
    assert set(verdicts(records).values()) == {"holds"}
    slow = panel(0.3, 10.0, train9=10, test9=800, val9=800, val5=300)
    quick_grok = panel(0.9, 0.1, train9=30, val9=90, val5=60)
    v = verdicts(fig10_claims([slow, quick_grok], teacher_curves(), 40_000))
    assert v == {"fast_generalization": "fails", "grokking_student": "fails"}
    # never reached: a student's budget past a tenth of the teacher's time fails; a teacher that
    # never groks, or a student that never generalizes, leaves the claim untested
    never = panel(0.3, 10.0, train9=10, val_final=0.4)
    stuck = panel(0.9, 0.1, train9=30, val_final=0.36)
    v = verdicts(fig10_claims([never, stuck], teacher_curves(), 600))
    assert v == {"fast_generalization": "fails", "grokking_student": "untested"}
    v = verdicts(fig10_claims([fast, grok], teacher_curves(val_at=1e9), 40_000))
    assert v["fast_generalization"] == "untested"


# --- Fig. 9 -------------------------------------------------------------------------------------
def gpt2_table(test=(0.21, 0.52, 0.65), val=0.001, train=1.0, pretrained="", n=6_000):
    rows = []
    for s, wiggle in enumerate((0.01, -0.01, 0.0)):
        for rho, acc in zip((0.2, 0.5, 0.8), test, strict=True):
            rows.append(
                {
                    "rho": rho,
                    "tau": 20.0,
                    "student_seed": s,
                    "student_train_acc": train,
                    "student_test_acc": acc + wiggle,
                    "student_val_acc": val,
                    "pretrained": pretrained,
                    "model": "small",
                    "n": n,
                    "c": 1_000,
                    "vocab": 1_000,
                    "teacher_epochs": 100,
                    "student_epochs": 200,
                }
            )
    return pd.DataFrame(rows)


def test_fig9_claims_hold_with_pretrained_weights_at_the_papers_numbers():
    records = fig9.judge(gpt2_table(pretrained="/weights/gpt2"))
    assert [r["id"] for r in records] == [c.id for c in fig9.CLAIMS]
    assert set(verdicts(records).values()) == {"holds"}


def test_fig9_paper_values_are_untested_without_pretrained_weights():
    v = verdicts(fig9.judge(gpt2_table(test=(0.025, 0.15, 0.25))))
    assert v["paper_values"] == "untested"
    assert v["held_out_above_fresh"] == v["held_out_rises_with_rho"] == "holds"


def test_fig9_claims_fail_on_a_student_that_leaks_nothing():
    table = gpt2_table(test=(0.3, 0.2, 0.1), val=0.35, train=0.7, pretrained="/weights/gpt2")
    v = verdicts(fig9.judge(table))
    assert set(v.values()) == {"fails"}


def test_students_below_a_memorizing_teacher_match_it_in_fig3_not_in_fig11():
    table = modadd_results()
    below = (table["checkpoint"] == "e2") & (table["tau"] == 10.0)
    table.loc[below, "student_val_acc"] = 0.2  # the teacher's val acc is 0.5
    assert verdicts(rho_claims("fig3", table, CKPTS))["matches_memorizing_teacher"] == "fails"
    v = verdicts(rho_claims("fig11", table.assign(model="mlp"), CKPTS))
    assert v["held_back_by_memorizing_teacher"] == "holds"
    table.loc[below, "student_val_acc"] = 0.8  # above it: not held back
    v = verdicts(rho_claims("fig11", table.assign(model="mlp"), CKPTS))
    assert v["held_back_by_memorizing_teacher"] == "fails"
