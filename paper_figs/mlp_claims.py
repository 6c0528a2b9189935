"""The claims of Figs. 6 and 7 (ReLU MLPs, sec. 5.2), judged on the ``mlp-grid`` runs and the
learning curves at rho = 0.65. This module measures what each claim needs (per-seed tables,
leave-one-seed-out falls, the thresholds' order, the rise windows); the rules (tolerances,
intervals, tests) are ``compare.claims``'. The drawings are in ``paper_figs.mlp_figs``; the claims
of the learning-curve figures 16 and 17 in ``paper_figs.mlp_curve_claims``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from softleak.compare.claims import Claim, judge_present, tol_binomial
from softleak.compare.reach import LEVEL
from softleak.compare.table import cell_means, seed_means
from softleak.paper_figs.mlp_measures import dip_and_jump, fall_points, held_out_size, normal_rows

#: The paper's n of the third panel of Figs. 7C / 16 / 17 (C.3), where the student identifies the
#: teacher after a jump in training time.
C3_N_PAPER = 100_000


#: Seeds of the paper's runs: Fig. 6 (10 runs), Figs. 7 and 16-17 (5).
PAPER_SEEDS_FIG6 = 10


PAPER_SEEDS = 5


FIG6_CLAIMS = (
    Claim(
        "fig6.a_memorizes",
        "At the lower sample complexity (Fig. 6A, n = 25,000) the student memorizes its own "
        "training set perfectly at every rho (sec. 5.2).",
        paper=1.0,
    ),
    Claim(
        "fig6.a_test_rises_with_rho",
        "At the lower sample complexity the student's held-out accuracy increases monotonically "
        "with rho, as for the logistic regression of Fig. 4D (sec. 5.2, Fig. 6A).",
    ),
    Claim(
        "fig6.leaks_above_chance",
        "In all cases shown some information leaks: the student's held-out accuracy exceeds its "
        "accuracy on data the teacher never saw, acc_val^S (Fig. 6 caption).",
    ),
    Claim(
        "fig6.b_falls_with_rho",
        "At the higher sample complexity (Fig. 6B, n = 100,000) the held-out accuracy first "
        "slowly drops with rho while the teacher stays perfect (sec. 5.2).",
    ),
    Claim(
        "fig6.b_below_a",
        "In that phase the held-out accuracy is lower than at the same rho at the lower sample "
        "complexity (sec. 5.2, Fig. 6A vs 6B).",
    ),
    Claim(
        "fig6.b_jumps_to_full",
        "After the drop, student train and held-out accuracy both jump to 100% (sec. 5.2, "
        "Fig. 6B).",
        paper=1.0,
    ),
)


FIG7_CLAIMS = (
    Claim(
        "fig7.regimes_teacher_memorizes",
        "Where the teacher memorizes, Fig. 7A shows weak leakage with memorization of "
        "D_train^S (blue), weak leakage without it (light blue) and full recovery (green) "
        "(sec. 5.2).",
        paper=["weak leakage", "weak leakage without memorization", "full recovery"],
    ),
    Claim(
        "fig7.regimes_teacher_fails",
        "Where the teacher cannot memorize, Fig. 7A shows students that fit the teacher "
        "nonetheless (orange) and students that do not (red) (Fig. 7 caption).",
        paper=["teacher fails, student matches", "neither"],
    ),
    Claim(
        "fig7.memorization_fails_before_identification",
        "Memorization fails before teacher identification succeeds, alpha_label^S < "
        "alpha_id^S: along alpha the student stops fitting D_train^S before its held-out "
        "accuracy reaches 100% (sec. 5.2).",
    ),
    Claim(
        "fig7.fall_before_jump",
        "The held-out accuracy acc_test^S decreases with the sample complexity alpha before it "
        "increases to 100% (sec. 5.2, Fig. 7B).",
        machine_sensitive="the fall is at the seeds' noise at this scale: its t interval held "
        "on an AMX Xeon and straddles 0 on an AMD EPYC (0.002 [-0.009, 0.013]), from float32 "
        "kernels that round differently",
    ),
    Claim(
        "fig7.joint_jump_in_time",
        "At rho = 0.65, train and held-out accuracy jump to 100% together as functions of the "
        "student's training time, at t ~ 100 in the paper (sec. 5.2, Fig. 7C.3).",
        paper="t ~ 100",
    ),
)


def seed_values(df: pd.DataFrame, index: Sequence[str], metric: str) -> pd.DataFrame:
    """Per-seed means of ``metric`` of the unshuffled, unablated runs: index ``index``, one column
    per seed (teacher replicate)."""
    rows = df[(~df["shuffle"].astype(bool)) & (df["ablation"] == "none")]
    return seed_means(rows, index, metric, wide=True)


def loo_falls(per_seed: pd.DataFrame, group: str) -> dict:
    """Leave-one-seed-out falls of the held-out accuracy before its jump, one per seed.

    ``per_seed``: index (group, x) sorted along x within each group, one column per seed. For seed
    s and each group, the largest fall before the jump is located on the mean of the *other* seeds
    (``fall_points``: its earlier peak and its trough); s's fall is its own accuracy at the trough
    minus at the peak. Locating the points without s's noise keeps the read unbiased (located on
    the mean of all seeds, pure noise would show a fall on average). Per seed: the mean over
    the groups where the others' mean falls (NaN where none does); {} with fewer than 2 seeds.
    """
    seeds = list(per_seed.columns)
    if len(seeds) < 2:
        return {}
    out = {}
    for s in seeds:
        others = per_seed.drop(columns=s).mean(axis=1)
        falls = []
        for g in per_seed.index.get_level_values(group).unique():
            rest = others.xs(g, level=group).dropna()
            _, peak, trough = fall_points(rest.to_numpy())
            if trough is None or peak == trough:
                continue
            own = per_seed[s].xs(g, level=group).reindex(rest.index).to_numpy(dtype=float)
            falls.append(own[trough] - own[peak])  # NaN where seed s lacks a point
        falls = [v for v in falls if np.isfinite(v)]
        out[s] = float(np.mean(falls)) if falls else math.nan
    return out


def fig6_claims(df: pd.DataFrame, cells: pd.DataFrame, n_a: int, n_b: int) -> list[dict]:
    """Fig. 6's claims from the grid runs ``df``, their cell means and the two panels' n."""
    from softleak.compare.claims import (
        judge_bound,
        judge_monotone,
        judge_paired,
        untested,
    )

    c_mem, c_rise, c_leak, c_fall, c_below, c_jump = FIG6_CLAIMS
    c = int(df["c"].iloc[0])
    epochs = int(df["student_epochs"].iloc[0])
    a = cells[cells["n"] == n_a].sort_values("rho")
    b = cells[cells["n"] == n_b].sort_values("rho")
    training = (
        f"students train {epochs:,} epochs at this preset; the paper preset (d = 1000, n = "
        "25,000 and 100,000) tests it"
    )
    out = [
        judge_bound(
            c_mem,
            a["student_train_acc"].min(),
            at_least=LEVEL,
            what=f"min over rho of acc_train^S at n = {n_a:,}",
            why_not=training,
        )
    ]
    # Tolerance: two binomial standard errors of the noisiest cell's seed-mean held-out accuracy
    # (|D_test^S| samples per seed): steps smaller than that are noise, not a fall.
    acc = a["student_test_acc"].to_numpy(dtype=float)
    size = np.array([held_out_size(n_a, r, c) for r in a["rho"]]) * a["n_seeds"].to_numpy()
    tol = tol_binomial(acc, size, k=2)
    out.append(
        judge_monotone(
            c_rise,
            acc,
            increasing=True,
            tol=tol,
            what=f"acc_test^S over rho at n = {n_a:,} (tolerance: two binomial standard errors "
            "of the noisiest cell)",
            why_not=training,
        )
    )
    both = cells[cells["n"].isin([n_a, n_b])]
    out.append(
        judge_paired(
            c_leak,
            both["student_test_acc"] - both["student_val_acc"],
            sign=1,
            what="acc_test^S - acc_val^S across the (n, rho) cells of both panels",
            why_not="the preset's two panels hold fewer than 5 cells; the quick preset tests it",
        )
    )
    if n_a == n_b:
        why = "the grid has one n: panel B needs a second, larger n (the quick preset has it)"
        out.append(untested(c_fall, why, criterion="mean fall of acc_test^S over rho < 0"))
        out.append(untested(c_below, why, criterion="mean acc_test^S(B) - acc_test^S(A) < 0"))
        out.append(untested(c_jump, why, criterion=f"acc^S at the largest rho >= {LEVEL:g}"))
        return out
    return out + _fig6_panel_b(df, b, n_a, n_b, training)


def _fig6_panel_b(df, b, n_a: int, n_b: int, training: str) -> list[dict]:
    """Fig. 6B's claims: the fall with rho, below panel A in the drop's phase, the jump."""
    from softleak.compare.claims import judge_bound, judge_sign, untested

    _, _, _, c_fall, c_below, c_jump = FIG6_CLAIMS
    out = []
    test = seed_values(df, ("n", "rho"), "student_test_acc")
    falls = loo_falls(test.loc[[n_b]], "n")
    out.append(
        judge_sign(
            c_fall,
            falls.values(),
            sign=-1,
            what=f"leave-one-seed-out fall of acc_test^S before its jump along rho at n = "
            f"{n_b:,} (own value at the others' trough minus at their earlier peak)",
            note=f"teacher train acc {b['teacher_train_acc'].mean():.3f} at n = {n_b:,}",
            why_not="the fall is small against the seeds' noise at this scale; the paper preset "
            f"(d = 1000, {PAPER_SEEDS_FIG6} seeds) tests it",
        )
    )
    # The phase of the drop: rho where the student at n_B no longer fits its set (train < LEVEL).
    phase = b.loc[b["student_train_acc"] < LEVEL, "rho"].to_numpy()
    if phase.size == 0:
        out.append(
            untested(
                c_below,
                f"the student fits its set at every rho at n = {n_b:,} (no phase to compare); "
                "the quick preset (n = 2,000) has one",
                criterion="mean over that phase's rho of acc_test^S(B) - acc_test^S(A) < 0",
            )
        )
    else:
        diff = test.loc[n_b].loc[phase] - test.loc[n_a].reindex(phase)
        out.append(
            judge_sign(
                c_below,
                diff.mean(axis=0).to_numpy(),
                sign=-1,
                what=f"acc_test^S(n = {n_b:,}) - acc_test^S(n = {n_a:,}) averaged over the rho "
                f"where the student at n = {n_b:,} no longer fits its set "
                f"({', '.join(f'{r:g}' for r in phase)}), per seed",
                why_not=f"{training} (the drop is a finite-training effect)",
            )
        )
    top = b.iloc[-1]
    out.append(
        judge_bound(
            c_jump,
            min(top["student_train_acc"], top["student_test_acc"]),
            at_least=LEVEL,
            what=f"min(acc_train^S, acc_test^S) at the largest rho ({top['rho']:g}) at n = {n_b:,}",
            note=f"jump to >= {LEVEL:g} along rho at "
            f"{dip_and_jump(b['rho'].to_numpy(), b['student_test_acc'].to_numpy())['jump_at']}",
            why_not=training,
        )
    )
    return out


def fig7_claims(grid: pd.DataFrame, phases, lc) -> list[dict]:
    """Fig. 7's claims from the unshuffled grid runs, its phase diagram and (when the
    ``mlp-curves`` sweep is there) the learning curves at rho = 0.65 (``lc``, else None)."""
    from softleak.compare.claims import judge_sign, untested
    from softleak.compare.phases import FULL, MATCH, NEITHER, WEAK, WEAK_NO_MEM

    c_mem, c_fail, c_order, c_fall, c_time = FIG7_CLAIMS
    counts = phases.counts()
    ns = sorted(grid["n"].unique())
    grid_text = f"n {ns[0]:,}-{ns[-1]:,}"
    out = []
    wanted: tuple[str, ...] = (WEAK, WEAK_NO_MEM, FULL)
    out.append(
        judge_present(
            c_mem,
            counts,
            wanted,
            note=f"cells: {counts}",
            why_not=f"the preset's grid ({grid_text}) does not reach every regime; the quick "
            "preset (n 700-2,000, rho 0.2-0.95) spans them",
        )
    )
    fails = (phases.metrics["teacher_train_acc"] < LEVEL).sum()
    wanted = (MATCH, NEITHER)
    criterion = f"number of the {len(wanted)} regimes with a cell on the grid >= {len(wanted)}"
    if not fails:
        out.append(
            untested(
                c_fail,
                f"the teacher memorizes at every n of this grid ({grid_text}); the paper preset "
                "(n to 250,000, past the teacher's capacity) tests it",
                criterion=criterion,
            )
        )
    else:
        out.append(
            judge_present(
                c_fail,
                counts,
                wanted,
                note=f"{int(fails)} cell(s) where the teacher fails",
                why_not="few cells past the teacher's capacity on this grid; the paper preset "
                "(n to 250,000) spans them",
            )
        )
    out.append(_fig7_order(c_order, grid))
    test = seed_values(grid, ("rho", "alpha"), "student_test_acc")
    falls = loo_falls(test, "rho")
    out.append(
        judge_sign(
            c_fall,
            falls.values(),
            sign=-1,
            what="leave-one-seed-out fall of acc_test^S before its jump along alpha (own value "
            "at the other seeds' trough minus at their earlier peak, averaged over rho)",
            why_not="the fall is small against the seeds' noise at this scale (d = 100, p = 50); "
            "the paper preset (d = 1000) tests it",
        )
    )
    out.append(_joint_jump_claim(c_time, lc))
    return out


def _fig7_order(claim: Claim, grid: pd.DataFrame) -> dict:
    """alpha_label^S < alpha_id^S per rho, on the seed-mean grid where the teacher memorizes:
    alpha_label^S (the student no longer fits its set) and alpha_id^S (it identifies the
    teacher) by the threshold rule (``compare.crossings.threshold_crossing``; never crossing on
    the grid counts as past its end)."""
    from softleak.compare.claims import judge_bound, untested
    from softleak.compare.crossings import threshold_crossing

    cells = cell_means(grid).sort_values(["rho", "alpha"])
    cells = cells[cells["teacher_train_acc"] >= LEVEL]
    order = {}
    for rho, rows in cells.groupby("rho"):
        alpha = rows["alpha"].to_numpy(dtype=float)
        stop = threshold_crossing(alpha, rows["student_train_acc"].to_numpy(float), LEVEL, "down")
        ident = threshold_crossing(alpha, rows["student_test_acc"].to_numpy(float), LEVEL, "up")
        if ident.censored == "below" or stop.censored == ident.censored == "above":
            continue  # identifies from the first alpha, or neither happens: nothing to order
        order[f"{rho:g}"] = bool(_past_end(stop) < _past_end(ident))
    if not order:
        return untested(
            claim,
            "at no rho of this grid does the student stop fitting its set or identify the "
            "teacher where the teacher memorizes; the quick preset tests it",
            criterion="fraction of rho where the student stops fitting D_train^S at a "
            f"smaller alpha than acc_test^S reaches {LEVEL:g}: >= 1",
        )
    return judge_bound(
        claim,
        sum(order.values()) / len(order),
        at_least=1.0,
        what="fraction of rho (where either happens while the teacher memorizes) at "
        "which the student "
        f"stops fitting D_train^S (train < {LEVEL:g}) at a smaller alpha than "
        f"acc_test^S reaches {LEVEL:g}",
        note="per rho: " + ", ".join(f"{r}: {v}" for r, v in order.items()),
        why_not="between two grid points of alpha the student can go from memorizing "
        "to identifying; the paper preset's 21 n resolve the band",
    )


def _past_end(found) -> float:
    """A ``compare.crossings.Crossing`` as a position: its value, -inf before the grid, +inf
    past it."""
    if found.censored is None:
        return found.value
    return -math.inf if found.censored == "below" else math.inf


def identifying(lc) -> list:
    """The n whose normal (unshuffled) student's mean held-out accuracy ends at or above LEVEL
    after a located rise."""
    jumps = normal_rows(lc.jumps("student_test_acc"))
    hit = jumps[(jumps["end"] >= LEVEL) & jumps["epoch_10"].notna()]
    return sorted(hit["n"].unique())


def outside(epoch: float, lo: float, hi: float) -> float:
    """How many epochs ``epoch`` lies outside [lo, hi] (0 inside)."""
    return float(max(0.0, lo - epoch, epoch - hi))


def record_step(lc) -> float:
    """The spacing of the curves' records (epochs)."""
    epochs = np.unique(lc.frame["epoch"].to_numpy(dtype=float))
    return float(np.diff(epochs).min()) if epochs.size > 1 else math.nan


def _joint_jump_claim(claim, lc) -> dict:
    """Fig. 7C: where the student identifies the teacher, the midpoint of the rise of its train
    accuracy lies inside the 10%-90% window of the rise of its held-out accuracy."""
    from softleak.compare.claims import judge_bound, untested

    criterion = (
        "epochs by which acc_train^S's 50% rise lies outside acc_test^S's 10%-90% rise window, "
        "at most one curve record"
    )
    if lc is None:
        return untested(claim, "no learning curves in this run", criterion=criterion)
    ns = identifying(lc)
    if not ns:
        return untested(
            claim,
            f"at no n of this preset does the student's mean held-out accuracy reach {LEVEL:g} "
            "after a rise; the quick preset (n = 1,000 and 2,000) tests it",
            criterion=criterion,
        )
    test = normal_rows(lc.jumps("student_test_acc")).set_index("n")
    train = normal_rows(lc.jumps("student_train_acc")).set_index("n")
    gaps, notes = {}, []
    for n in ns:
        t, s = test.loc[n], train.loc[n]
        # A train accuracy that does not rise (it was fitted from the start) counts as outside by
        # the whole run.
        gaps[int(n)] = (
            outside(s["epoch_50"], t["epoch_10"], t["epoch_90"])
            if np.isfinite(s["epoch_50"])
            else float(lc.frame["epoch"].max())
        )
        notes.append(
            f"n = {int(n):,}: test rises 10-90% over epochs {t['epoch_10']:.0f}-"
            f"{t['epoch_90']:.0f}, train 50% at {s['epoch_50']:.0f}"
        )
    step = record_step(lc)
    # Tolerance: one record of the curves (epochs between two recorded points).
    return judge_bound(
        claim,
        max(gaps.values()),
        at_most=step,
        what="epochs by which acc_train^S's 50% rise lies outside acc_test^S's 10%-90% rise "
        f"window (worst of n = {', '.join(f'{n:,}' for n in gaps)}; tolerance: one curve "
        f"record, {step:g} epochs)",
        note="; ".join(notes) + " (the paper's t ~ 100 has no stated unit: not compared)",
        why_not="the student memorizes its set before its held-out accuracy jumps (finite "
        "training at this scale); the paper preset (d = 1000) tests it",
    )
