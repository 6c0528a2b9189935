"""Claims of the linear recipes (fig4, fig5a/fig15, fig5b, fss) judged on hand-made tables.

The tiny preset the figure tests run has 2 seeds and thinned grids, so several judging paths
(>= 3 seeds for a difference, rho = 0.8, three classes with located thresholds, converged fits)
are only reached at quick scale. Here each is fed a table where its claims hold by construction
and one where they fail, and the verdicts are checked.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from softleak.compare import collapse, find_thresholds, fit_threshold_scaling
from softleak.paper_figs import fig4, fig5a, fig5b, fss, temperature_claims

SEEDS = (0, 1, 2, 3)


def verdicts(records) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in records}


def step_up(alpha: np.ndarray, at: float, low: float, high: float = 1.0) -> np.ndarray:
    """``low`` below ``at``, ``high`` from ``at`` on."""
    return np.where(alpha >= at - 1e-9, high, low)


def step_down(alpha: np.ndarray, at: float, low: float = 0.9) -> np.ndarray:
    """1 up to ``at``, ``low`` past it."""
    return np.where(alpha <= at + 1e-9, 1.0, low)


# --------------------------------------------------------------------------------------------
# fig5a / fig15: the temperature claims, the shuffle direction on >= 3 seeds
# --------------------------------------------------------------------------------------------

ALPHAS_5A = np.round(np.arange(0.30, 1.2501, 0.05), 4)  # the quick grid's step, n/(d c)
TAUS = (0.316, 3162.0)


def temperature_table(shuffle_small: float, shuffle_large: float) -> pd.DataFrame:
    """c = 2, d = 100, rho = 0.8: teacher and students memorize up to 0.85, the student
    identifies from 0.65 (theory 0.625); the shuffled student fits up to ``shuffle_small`` at
    the small tau and ``shuffle_large`` at the large one, one grid step later on odd seeds."""
    rows = []
    for seed in SEEDS:
        jitter = 0.05 * (seed % 2)
        for tau in TAUS:
            end = shuffle_small if tau == TAUS[0] else shuffle_large
            for shuffle in (False, True):
                a = ALPHAS_5A
                train = step_down(a, end + jitter) if shuffle else step_down(a, 0.85)
                test = step_up(a, 0.65, 0.6) * step_down(a, 0.85)
                for alpha, tr, te, t in zip(a, train, test, step_down(a, 0.85), strict=True):
                    rows.append(
                        dict(
                            experiment="multinomial", d=100, c=2, n=int(round(alpha * 200)),
                            alpha=alpha, rho=0.8, tau=tau, shuffle=shuffle, seed=seed,
                            teacher_train_acc=t, student_train_acc=tr, student_test_acc=te,
                            student_epochs=5000,
                        )
                    )  # fmt: skip
    return pd.DataFrame(rows)


def judge_5a(df: pd.DataFrame) -> dict[str, str]:
    from softleak.theory.capacity import alpha_label_T

    table = find_thresholds(df, cutoff=fig5a.CUTOFF, n_boot=0)
    theory = {
        "alpha_id": 1 / (0.8 * 2),
        "alpha_label_T": alpha_label_T(2, d=100, single_logit=False).value,
    }
    return verdicts(temperature_claims.judge_temperature(fig5a.CLAIMS, df, table, theory, None))


def test_fig5a_shuffle_falling_with_tau_holds():
    """Shuffle threshold at alpha_label^T (0.85) for tau = 0.3 and at alpha_id (0.6) for
    tau = 3162: the measured direction holds, and every other claim too."""
    v = judge_5a(temperature_table(shuffle_small=0.85, shuffle_large=0.6))
    assert set(v.values()) == {"holds"}, v


def test_fig5a_paper_direction_fails():
    """The paper's sentence's direction (from alpha_id at small tau to alpha_label^T at large):
    the shuffle claims fail; the teacher's and the unshuffled student's still hold."""
    v = judge_5a(temperature_table(shuffle_small=0.6, shuffle_large=0.85))
    assert v["fig5a.shuffle_falls_with_tau"] == "fails"
    assert v["fig5a.shuffle_small_tau_at_label_T"] == "fails"
    assert v["fig5a.shuffle_large_tau_at_id"] == "fails"
    for name in ("label_T_cover", "id_S_at_theory", "label_S_small_tau"):
        assert v[f"fig5a.{name}"] == "holds", (name, v)


def test_fig5a_direction_untested_on_two_seeds():
    df = temperature_table(shuffle_small=0.85, shuffle_large=0.6)
    v = judge_5a(df[df.seed < 2])
    assert v["fig5a.shuffle_falls_with_tau"] == "untested"


def test_fig5a_record_quotes_the_disputed_sentence():
    df = temperature_table(shuffle_small=0.85, shuffle_large=0.6)
    table = find_thresholds(df, cutoff=fig5a.CUTOFF, n_boot=0)
    records = temperature_claims.judge_temperature(
        fig5a.CLAIMS, df, table, {"alpha_id": 0.625, "alpha_label_T": 1.0}, None
    )
    shuffle = next(r for r in records if r["id"] == "fig5a.shuffle_falls_with_tau")
    assert temperature_claims.SHUFFLE_SENTENCE in shuffle["note"]
    assert shuffle["measured"]["seeds"] == len(SEEDS)


# --------------------------------------------------------------------------------------------
# fig4: alpha_id^S = 1/rho at rho = 0.8 and across rho
# --------------------------------------------------------------------------------------------

ALPHAS_4 = np.round(np.arange(0.25, 3.0001, 0.125), 4)  # the quick grid


class Phases:
    """A phase diagram's ``counts`` (all five of Fig. 4B's regimes present)."""

    def counts(self):
        return dict.fromkeys(fig4.FIG4B_PHASES, 3)


def pinv_table(id_shift: float) -> pd.DataFrame:
    """d = 200: the teacher memorizes up to alpha = 1.75; the student's test accuracy jumps to
    the teacher's at 1/rho + ``id_shift``; its train accuracy is the teacher's."""
    rows = []
    for seed in SEEDS[:3]:
        for rho in (0.65, 0.8, 0.95):
            teacher = step_down(ALPHAS_4, 1.75)
            test = step_up(ALPHAS_4, 1 / rho + id_shift, 0.6) * teacher
            for alpha, t, te in zip(ALPHAS_4, teacher, test, strict=True):
                rows.append(
                    dict(
                        experiment="logistic-pinv", d=200, c=2, n=int(round(alpha * 200)),
                        alpha=alpha, rho=rho, shuffle=False, seed=seed, teacher_epochs=10_000,
                        teacher_train_acc=t, student_train_acc=t, student_test_acc=te,
                    )
                )  # fmt: skip
    return pd.DataFrame(rows)


def judge_4(df: pd.DataFrame) -> dict[str, str]:
    return verdicts(fig4.judge(df, find_thresholds(df, n_boot=0), Phases()))


def test_fig4_identification_at_one_over_rho_holds():
    v = judge_4(pinv_table(id_shift=0.0))
    assert set(v.values()) == {"holds"}, v


def test_fig4_late_identification_fails():
    """Identification half a unit past 1/rho (4 grid steps): both alpha_id^S claims fail."""
    v = judge_4(pinv_table(id_shift=0.5))
    assert v["fig4.id_S_at_one_over_rho"] == "fails"
    assert v["fig4.id_S_tracks_one_over_rho"] == "fails"
    assert v["fig4.label_T_near_cover"] == "holds"


# --------------------------------------------------------------------------------------------
# fig5b: the class-scaling constants
# --------------------------------------------------------------------------------------------


def class_frame(scale: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Thresholds on the paper's laws (times ``scale``) at the quick classes, and a table with
    each c's quick alpha grid."""
    laws = {
        "alpha_label_T": lambda c: 0.92 / math.log(c),
        "alpha_label_S": lambda c: 0.92 / math.log(c),
        "alpha_id_S": lambda c: 1 / (fig5b.RHO * c),
        "alpha_label_S_shuffle": lambda c: 0.66 / math.sqrt(c),
    }
    frame = pd.DataFrame(
        [
            {"name": name, "c": c, "value": scale * law(c)}
            for name, law in laws.items()
            for c in fig5b.QUICK_CLASSES
        ]
    )
    grid = pd.DataFrame(
        [{"c": c, "alpha": a} for c in fig5b.QUICK_CLASSES for a in fig5b.alpha_grid(c, 16)]
    )
    return frame, grid


def test_fig5b_paper_laws_hold():
    frame, grid = class_frame(1.0)
    v = verdicts(fig5b.judge(frame, grid, {}))
    assert set(v.values()) == {"holds"}, v


def test_fig5b_off_constants_fail():
    frame, grid = class_frame(1.5)
    v = verdicts(fig5b.judge(frame, grid, {}))
    assert set(v.values()) == {"fails"}, v


def test_fig5b_two_classes_untested():
    frame, grid = class_frame(1.0)
    v = verdicts(fig5b.judge(frame[frame.c <= 5], grid, {}))
    assert set(v.values()) == {"untested"}, v


# --------------------------------------------------------------------------------------------
# fss: limits and exponents
# --------------------------------------------------------------------------------------------

SIZES = np.array([50.0, 100.0, 200.0, 400.0])


def fss_inputs(label_inf: float, id_inf: float, shift: float):
    """Fits of exact power laws (alpha_label^T with nu = 2 free, alpha_id^S with nu = 1 fixed)
    and the collapse of Cover's P(n, d) with alpha moved by ``shift``."""
    from softleak.theory.cover import p_separable

    label = label_inf - 2.3 * SIZES**-0.5
    ident = id_inf - 0.5 / SIZES
    fits = {
        "alpha_label_T": fit_threshold_scaling(SIZES, label, np.full(4, 0.005)),
        "alpha_id_S": fit_threshold_scaling(SIZES, ident, np.full(4, 0.005), nu=1.0),
    }
    alpha = np.linspace(1.2, 2.8, 41)
    curves = {float(d): (alpha + shift, p_separable(alpha * d, d)) for d in SIZES}
    return fits, collapse(curves, alpha_c0=1.8 + shift, nu0=1.5)


@pytest.fixture(scope="module")
def cover_inputs():
    return fss_inputs(2.0, 1.25, 0.0)


def test_fss_cover_limits_and_exponents_hold(cover_inputs):
    v = verdicts(fss.judge(*cover_inputs, sizes=[50, 400], epochs=10_000))
    assert set(v.values()) == {"holds"}, v


def test_fss_shifted_limits_fail():
    fits, col = fss_inputs(1.9, 1.2, -0.2)
    v = verdicts(fss.judge(fits, col, sizes=[50, 400]))
    assert v["fss.label_T_limit"] == "fails"
    assert v["fss.id_S_limit"] == "fails"
    assert v["fss.collapse_alpha_c"] == "fails"
    assert v["fss.label_T_shift_exponent"] == "holds"  # the exponent does not move
    assert v["fss.collapse_nu"] == "holds"


def test_fss_without_fits_untested():
    v = verdicts(fss.judge({}, None))
    assert v["fss.label_T_shift_exponent"] == "untested"
    assert v["fss.collapse_alpha_c"] == "untested" and v["fss.collapse_nu"] == "untested"
    assert v["fss.label_T_limit"] == "untested"
