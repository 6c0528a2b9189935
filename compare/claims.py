"""Paper claims and their measured verdicts: the one home of "does this run support the paper?".

A recipe declares the statements of the paper it checks (:class:`Claim`: an id such as
``fig7.fall_before_jump``, the claim in one sentence citing its section or figure, the paper's own
value where there is one) and, after its run, judges each with one of the functions below, which
return the record ``summary.json`` carries under ``claims``::

    {id, claim, measured, criterion, paper, verdict, holds, note}

``verdict`` is ``holds``, ``fails`` or ``untested`` (the scale, the seeds or the budget cannot test
it; ``note`` says what would); ``holds`` is True only for ``holds``. ``criterion`` is a short text
naming the rule and its numbers (a tolerance, a confidence level, the test used). Every judge takes
``note`` (always shown) and ``why_not`` (shown when the claim does not hold: the recipe's reason --
finite training, scale -- and what preset would test it). Recipes compute
the measured quantities (accuracies, thresholds, seed-level differences) and pass them here; the
rules -- tolerances applied, intervals, tests -- live only in this module.

**Tolerance rules** (the named ones every recipe uses; a claim's comment says which and why):
:func:`tol_grid_step` (one step of the grid a crossing is interpolated on), :func:`tol_binomial`
(k binomial standard errors of accuracies counted on a finite held-out set), :func:`tol_seed_se`
(k standard errors of a seed mean) and :data:`SAME_ACCURACY` (what we read as "the same
accuracy" where the paper gives no number). Per-seed tables come from
``compare.table.seed_means``.

A claim about a difference is judged over seeds (:func:`judge_sign`: a t interval, at least
``MIN_SEEDS`` seeds, since with 2 a 95% t interval is 12.7 standard errors wide) or across cells
(:func:`judge_paired`: a one-sided paired sign-flip test). Claims we dispute are declared with
the paper's sentence in ``disputed`` and judged as we measured them.

Imports numpy and scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

VERDICTS = ("holds", "fails", "untested")
MIN_SEEDS = 3  # the fewest seeds a claim about a difference is judged on
MIN_CELLS = 5  # the fewest paired cells (2^-4 > 0.05: no sign-flip test of 4 reaches 5%)
CONFIDENCE = 0.95  # of the intervals and tests below, unless a claim says otherwise
#: "The same accuracy" where the paper gives no number: five accuracy points on its 0-1 axis (a
#: choice, stated in every criterion that uses it).
SAME_ACCURACY = 0.05


# --------------------------------------------------------------------------------------------
# Tolerance rules
# --------------------------------------------------------------------------------------------


def tol_grid_step(grid: Iterable[float], at: float | None = None) -> float:
    """One step of a grid (``compare.crossings.grid_step``): at ``at`` the step of the interval
    holding it, else the largest. The resolution of a crossing interpolated between grid points:
    two crossings closer than that are not told apart."""
    from softleak.compare.crossings import grid_step

    return grid_step(grid, at=at)


def tol_binomial(acc, trials, k: float = 2.0, *, combine: str = "max") -> float:
    """``k`` binomial standard errors of accuracies counted on finite sets: per cell
    sqrt(p (1 - p) / trials), p the accuracy, ``trials`` the predictions it counts (held-out
    samples times seeds).

    Args:
        acc: accuracies, shape (K,) or scalar.
        trials: predictions behind each, shape (K,) or scalar.
        k: how many standard errors.
        combine: ``"max"``: the noisiest cell's standard error (steps along a curve smaller than
            that are counting noise); ``"sum"``: the standard error of a sum or difference of the
            cells (sqrt of the summed variances).

    Returns:
        The tolerance; 0 without cells (NaN cells are left out).
    """
    p = np.atleast_1d(np.asarray(acc, dtype=float))
    var = p * (1 - p) / np.asarray(trials, dtype=float)
    var = var[np.isfinite(var)]
    if var.size == 0:
        return 0.0
    if combine == "max":
        return k * float(np.sqrt(var).max())
    if combine == "sum":
        return k * math.sqrt(float(var.sum()))
    raise ValueError(f"combine must be 'max' or 'sum', got {combine!r}")


def tol_seed_se(sem, k: float = 1.0) -> float:
    """``k`` standard errors of a seed mean, the largest of ``sem`` (e.g. the ``<metric>_sem``
    column of ``compare.table.seed_stats``, one per cell): differences smaller than that are
    within the seeds' noise. NaN entries (one seed) are left out; 0 when none is finite."""
    x = np.atleast_1d(np.asarray(sem, dtype=float))
    x = x[np.isfinite(x)]
    return k * float(x.max()) if x.size else 0.0


@dataclass(frozen=True)
class Claim:
    """One statement of the paper a recipe checks."""

    id: str  # "<figure>.<short_name>"
    claim: str  # one sentence, citing the paper's section or figure
    paper: object = None  # the paper's own value (number, text or dict), when it reports one
    disputed: str | None = None  # the paper's sentence, quoted, where our analysis disputes it
    # why its verdict may differ between CPU kinds (a criterion at its margin, float32 kernels
    # that differ): such a claim is reported as machine-sensitive and not held to a reference
    # verdict (``paper_figs.verdicts``)
    machine_sensitive: str | None = None

    def __post_init__(self):
        if "." not in self.id or " " in self.id:
            raise ValueError(f"a claim id is '<figure>.<name>', got {self.id!r}")


def record(claim: Claim, *, measured, criterion: str, verdict: str, note: str = "") -> dict:
    """The claims entry of summary.json (the one place its fields are assembled)."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    note = note or ""
    if claim.disputed:
        quoted = f'the paper: "{claim.disputed}"'
        note = f"{note}; {quoted}" if note else quoted
    if claim.machine_sensitive:
        sensitive = f"machine-sensitive: {claim.machine_sensitive}"
        note = f"{note}; {sensitive}" if note else sensitive
    return {
        "id": claim.id,
        "claim": claim.claim,
        "measured": _plain(measured),
        "criterion": criterion,
        "paper": _plain(claim.paper),
        "verdict": verdict,
        "holds": verdict == "holds",
        "note": note,
    }


def untested(claim: Claim, note: str, *, measured=None, criterion: str = "") -> dict:
    """A claim this run cannot test; ``note`` says why and what preset would."""
    return record(claim, measured=measured, criterion=criterion, verdict="untested", note=note)


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(np.isnan(value))
    except TypeError:
        return False


def judge_close(
    claim: Claim,
    measured,
    target: float,
    tol: float,
    *,
    what: str = "",
    note: str = "",
    why_not: str = "",
) -> dict:
    """holds when |measured - target| <= tol (``what`` names the quantity in the criterion)."""
    criterion = f"{what + ' ' if what else ''}within {tol:g} of {target:g}".strip()
    if _missing(measured):
        why = _why(False, note, why_not, "not measured at this preset")
        return untested(claim, why, criterion=criterion)
    ok = abs(float(measured) - float(target)) <= tol + 1e-12  # 0.55 - 0.5 > 0.05 in floats
    note = _why(
        ok, note, why_not, f"{float(measured):.4g} is {abs(float(measured) - target):.3g} away"
    )
    return record(claim, measured=measured, criterion=criterion, verdict=_v(ok), note=note)


def judge_bound(
    claim: Claim,
    measured,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    what: str = "",
    note: str = "",
    why_not: str = "",
) -> dict:
    """holds when at_least <= measured <= at_most (either side may be open)."""
    if at_least is None and at_most is None:
        raise ValueError("judge_bound needs at_least or at_most")
    parts = []
    if at_least is not None:
        parts.append(f">= {at_least:g}")
    if at_most is not None:
        parts.append(f"<= {at_most:g}")
    criterion = f"{what + ' ' if what else ''}{' and '.join(parts)}".strip()
    if _missing(measured):
        why = _why(False, note, why_not, "not measured at this preset")
        return untested(claim, why, criterion=criterion)
    m = float(measured)
    ok = (at_least is None or m >= at_least) and (at_most is None or m <= at_most)
    note = _why(ok, note, why_not, f"measured {m:.4g}")
    return record(claim, measured=measured, criterion=criterion, verdict=_v(ok), note=note)


def t_interval(
    values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Two-sided t interval of the mean of ``values`` (at least 2)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError("a t interval needs at least 2 values")
    mean = float(x.mean())
    se = float(x.std(ddof=1) / math.sqrt(x.size))
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * se
    return mean - half, mean + half


def judge_sign(
    claim: Claim,
    diffs: Iterable[float],
    *,
    sign: int,
    what: str = "difference",
    confidence: float = CONFIDENCE,
    note: str = "",
    why_not: str = "",
) -> dict:
    """A difference with a sign, over seeds: holds when the two-sided ``confidence`` t interval of
    the mean of the seed-level ``diffs`` lies on the ``sign`` side of 0 (sign +1: > 0; -1: < 0);
    fails when it does not (the interval holds 0 or lies on the other side); untested with fewer
    than ``MIN_SEEDS`` seeds."""
    if sign not in (1, -1):
        raise ValueError("sign must be +1 or -1")
    x = np.asarray([float(v) for v in diffs if not _missing(v)], dtype=float)
    side = "> 0" if sign > 0 else "< 0"
    criterion = (
        f"mean {what} {side}: {100 * confidence:g}% t interval over seeds excludes 0 "
        f"(>= {MIN_SEEDS} seeds)"
    )
    if x.size < MIN_SEEDS:
        # too few seeds: the count is the reason (``why_not`` says why a tested claim fails)
        return untested(
            claim,
            _why(False, note, "", f"{x.size} seed(s): a difference is judged on >= {MIN_SEEDS}"),
            measured={"mean": float(x.mean()) if x.size else None, "seeds": int(x.size)},
            criterion=criterion,
        )
    lo, hi = t_interval(x, confidence)
    measured = {"mean": float(x.mean()), "interval": [lo, hi], "seeds": int(x.size)}
    ok = lo > 0 if sign > 0 else hi < 0
    where = "the interval holds 0" if lo <= 0 <= hi else "the interval is on the other side"
    note = _why(ok, note, why_not, where)
    return record(claim, measured=measured, criterion=criterion, verdict=_v(ok), note=note)


def sign_flip_p(diffs: Sequence[float] | np.ndarray, sign: int = 1, draws: int = 20_000) -> float:
    """One-sided p-value of a paired sign-flip (permutation) test that the mean of ``diffs`` is
    on the ``sign`` side of 0: exact over all 2^k flips for k <= 16 cells, else ``draws`` seeded
    random flips, counting the observed one, so p >= 1 / (draws + 1) (the same p for the same
    input)."""
    x = np.asarray(diffs, dtype=float) * sign
    k = x.size
    if k == 0:
        return 1.0
    observed = x.mean()
    if k <= 16:
        flips = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1) * 2 - 1
        means = (flips * np.abs(x)).mean(axis=1)
        return float(np.mean(means >= observed - 1e-12))  # the identity flip is among them
    flips = np.random.default_rng(0).choice((-1, 1), size=(draws, k))
    means = (flips * np.abs(x)).mean(axis=1)
    # the observed sign pattern counts as one draw: a Monte Carlo p is never 0
    return float((np.sum(means >= observed - 1e-12) + 1) / (draws + 1))


def judge_paired(
    claim: Claim,
    diffs: Iterable[float],
    *,
    sign: int,
    what: str = "paired difference",
    alpha: float = 1 - CONFIDENCE,
    note: str = "",
    why_not: str = "",
    min_cells: int = MIN_CELLS,
) -> dict:
    """A difference with a sign across paired cells (e.g. bf16 - fp32, or shuffle - not, per grid
    point): holds when a one-sided sign-flip test gives p < alpha; untested with fewer than
    ``min_cells`` cells (then no test can reach alpha = 0.05: 2^-4 = 0.0625; the note then gives
    the count, not ``why_not``)."""
    x = np.asarray([float(v) for v in diffs if not _missing(v)], dtype=float)
    side = "> 0" if sign > 0 else "< 0"
    criterion = f"mean {what} {side}: one-sided paired sign-flip test across cells, p < {alpha:g}"
    if x.size < min_cells:
        return untested(
            claim,
            _why(False, note, "", f"{x.size} cell(s): the test needs >= {min_cells}"),
            measured={"cells": int(x.size)},
            criterion=criterion,
        )
    p = sign_flip_p(x, sign)
    measured = {"mean": float(x.mean()), "p": p, "cells": int(x.size)}
    ok = p < alpha
    note = _why(ok, note, why_not, f"p = {p:.3g}: not significant at {alpha:g}")
    return record(claim, measured=measured, criterion=criterion, verdict=_v(ok), note=note)


def judge_present(
    claim: Claim,
    counts: dict,
    wanted: Sequence[str],
    *,
    note: str = "",
    why_not: str = "",
) -> dict:
    """holds when every regime (phase) in ``wanted`` has at least one cell in ``counts``
    ({regime: cells}); the note names the missing ones."""
    present = [w for w in wanted if counts.get(w, 0) > 0]
    missing = [w for w in wanted if w not in present]
    if missing:
        note = "; ".join(t for t in (note, f"missing: {', '.join(missing)}") if t)
    return judge_bound(
        claim,
        len(present),
        at_least=len(wanted),
        what=f"number of the {len(wanted)} regimes with a cell on the grid",
        note=note,
        why_not=why_not,
    )


def judge_monotone(
    claim: Claim,
    values: Sequence[float],
    *,
    increasing: bool,
    tol: float = 0.0,
    what: str = "values",
    note: str = "",
    why_not: str = "",
) -> dict:
    """holds when ``values`` (in axis order) never move against the direction by more than tol."""
    x = [float(v) for v in values]
    word = "increase" if increasing else "decrease"
    criterion = f"{what} {word} along the axis (no step against it larger than {tol:g})"
    if len(x) < 2 or any(_missing(v) for v in x):
        why = _why(False, note, why_not, "fewer than 2 measured points")
        return untested(claim, why, measured=x, criterion=criterion)
    steps = np.diff(x) * (1 if increasing else -1)
    ok = bool((steps >= -tol).all())
    note = _why(ok, note, why_not, f"a step of {float(-steps.min()):.3g} against it")
    return record(claim, measured=x, criterion=criterion, verdict=_v(ok), note=note)


def judge_spread(
    claim: Claim,
    reaches: Mapping[str, dict],
    grids: Mapping[str, Sequence],
    *,
    what: str,
    over: str,
    why_not: str,
    note: str = "",
) -> dict:
    """The crossings ``reaches`` (label -> ``compare.reach.first_reach`` entry, e.g. "p = 25")
    of every condition within one grid step of each other: max/min of those on the grid against
    the largest step ratio (``compare.reach.grid_ratio``) of the ``grids`` (label -> that
    condition's x grid) at the crossings. When some crossings are off the grid, the lower bound
    on max/min they give (``compare.reach.bounded_ratio``) is judged instead: past the tolerance
    it fails the claim, within it the claim is untested. ``note`` is added to the note."""
    from softleak.compare.reach import bounded_ratio, grid_ratio

    found = {k: r["value"] for k, r in reaches.items() if r["value"] is not None}
    censored = {k: r for k, r in reaches.items() if r["value"] is None}
    text = "crossings: " + (", ".join(f"{k}: {v:.3g}" for k, v in found.items()) or "none")
    if censored:
        text += "; off the grid (left out): " + "; ".join(
            f"{k}: {r['note'] or 'not measured'}" for k, r in censored.items()
        )
        bound = bounded_ratio(reaches)
        if math.isfinite(bound) and found:
            text += f"; with them as the grid ends they lie beyond, max/min >= {bound:.3g}"
    if note:
        text += f"; {note}"
    criterion = f"max/min over {over} of the {what} (tolerance: one grid step)"
    if len(found) < 2:
        return untested(
            claim, f"{text}; fewer than 2 crossings on the grid; {why_not}", criterion=criterion
        )
    # Tolerance: one grid step (the largest ratio x_{i+1}/x_i of the grid interval holding a
    # crossing): two crossings closer than that are not told apart by the interpolation.
    tol = max(grid_ratio(grids[k], v) for k, v in found.items())
    if censored:
        # the true max/min is only bounded below: a bound past the tolerance fails the claim,
        # one within it cannot confirm it
        bound = bounded_ratio(reaches)
        if not (math.isfinite(bound) and bound > tol):
            return untested(
                claim,
                f"{text}; crossings off the grid: max/min is only known to be >= "
                f"{bound:.3g}, within the tolerance {tol:.3g}; {why_not}",
                measured=bound if math.isfinite(bound) else None,
                criterion=criterion,
            )
        return judge_bound(
            claim,
            bound,
            at_most=tol,
            what=f"max/min over {over} of the {what}, a lower bound from the crossings off the "
            f"grid (tolerance: one grid step, {tol:.3g})",
            note=text,
            why_not=why_not,
        )
    return judge_bound(
        claim,
        max(found.values()) / min(found.values()),
        at_most=tol,
        what=f"max/min over {over} of the {what} (interpolated, crossings on the grid; "
        f"tolerance: one grid step, the largest ratio of the grid interval holding a crossing, "
        f"{tol:.3g})",
        note=text,
        why_not=why_not,
    )


def count(records: Iterable[dict]) -> dict:
    """{verdict: count} over claim records, every verdict present."""
    out = dict.fromkeys(VERDICTS, 0)
    for r in records:
        out[r["verdict"]] += 1
    return out


def summary_line(records: Iterable[dict]) -> str:
    """One line counting claim records by verdict (the summaries' text)."""
    n = count(records)
    return f"claims: {n['holds']} hold, {n['fails']} fail, {n['untested']} untested"


def _why(ok: bool, note: str, why_not: str, default: str) -> str:
    """A record's note: ``note`` always; where the claim does not hold, ``why_not`` (the recipe's
    reason: finite training, scale, what preset would test it) or else what the rule found."""
    if ok:
        return note
    return "; ".join(t for t in (note, why_not or default) if t)


def _v(ok: bool) -> str:
    return "holds" if ok else "fails"


def _plain(value):
    """JSON-ready as ``compare.table.jsonable`` (NaN and +-inf -> None), floats rounded to 6
    decimals for the report's cells."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    if isinstance(value, np.floating | float):
        return round(float(value), 6) if math.isfinite(float(value)) else None
    return value
