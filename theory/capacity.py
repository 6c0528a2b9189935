"""Capacity and identifiability bounds in the paper's units, each labelled with where it comes from.

Every function returns a :class:`Bound` whose ``provenance`` says how much to trust it:

- ``"exact"``: a theorem for the stated finite-size setting (Cover 1965 at P = 1/2; Phuong & Lampert
  2019 for linear identifiability);
- ``"asymptotic"``: exact in the proportional limit n, d -> infinity (Cover 1965: alpha -> 2);
- ``"heuristic"``: parameter counting; the right order of magnitude, not a theorem.

Units. Linear thresholds are alphas in the scale of the experiment (``identifiability.alpha_scale``):
alpha = n/d for a binary model with one logit, alpha = n/(d c) for c logits through a softmax. The MLP
functions return sample counts (n, or the student's rho * n), since an MLP has no single d.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from softleak.theory.cover import alpha_half
from softleak.theory.identifiability import _check_c, _single_logit, alpha_id

__all__ = [
    "Bound",
    "alpha_id_bound",
    "alpha_label_T",
    "mlp_identifiability_rho_n",
    "mlp_memorization_n",
    "mlp_param_count",
]

PROVENANCES = ("exact", "asymptotic", "heuristic")


@dataclass(frozen=True)
class Bound:
    """A threshold value with its provenance.

    Attributes:
        value: the number, in the units stated in ``formula``/``note``.
        provenance: "exact", "asymptotic" or "heuristic" (see the module docstring).
        formula: the closed form, e.g. "alpha = n/d = 2".
        note: where it comes from and when it applies.
    """

    value: float
    provenance: str
    formula: str
    note: str

    def __post_init__(self) -> None:
        if self.provenance not in PROVENANCES:
            raise ValueError(f"provenance must be one of {PROVENANCES}, got {self.provenance!r}")


def alpha_label_T(
    c: int = 2, d: int | None = None, single_logit: bool | None = None, bias: bool = False
) -> Bound:
    """Teacher memorization capacity alpha_label^T: the largest alpha at which random labels fit.

    - c = 2, single logit (alpha = n/d): Cover (1965): a random dichotomy of n points in R^d is
      linearly separable with probability P(n, d), which drops from 1 to 0 around n = 2d. For
      ``d=None`` the proportional limit 2 ("asymptotic"); for finite d, ``cover.alpha_half(d, bias)``,
      the alpha where P = 1/2 exactly (2, or 2 (d + 1)/d with a bias; "exact" as the median point of a
      transition of width ~3.6/sqrt(d)).
    - c = 2, two logits through a softmax (alpha = n/(d c)): the same problem (only w_1 - w_2
      matters), so the value halves: 1 ("asymptotic"), alpha_half(d, bias)/2 at finite d ("exact").
    - c > 2 (alpha = n/(d c)): the large-c heuristic alpha ~ 1/(2 ln c) ("heuristic"; not a theorem).
      For reference, counting 2 samples per effective parameter as in Cover's binary case gives the
      upper estimate n log2(c) <= 2 (c - 1) d, alpha <= 2 ln 2 (c - 1)/(c ln c) ~ 1.39/ln c, and the
      paper measured alpha ln c ~ 0.92 at finite size (d in {100, 1000}, Fig. 5B), between the two.
      ``d`` and ``bias`` do not enter.

    Args:
        c: number of classes, >= 2.
        d: input dimension, or None for the d -> infinity value.
        single_logit: one logit for c = 2 (default for c = 2).
        bias: affine model (d -> d + 1 in Cover's count; only matters at finite d).
    """
    c = _check_c(c)
    single = _single_logit(c, single_logit)
    integral = isinstance(d, int) or (d is not None and float(d).is_integer())  # int: any size
    if d is not None and (d < 1 or not integral):
        raise ValueError(f"d must be an integer >= 1 or None, got {d!r}")
    cite = "Cover (1965) function counting"
    if c == 2:
        scale, div = ("n/d", 1.0) if single else ("n/(d c)", 2.0)
        if d is None:
            return Bound(
                value=2.0 / div,
                provenance="asymptotic",
                formula=f"alpha = {scale} -> {2.0 / div:g}",
                note=f"{cite}: P(n, d) -> 1/2 at n = 2d as n, d -> infinity",
            )
        value = alpha_half(d, bias) / div
        formula = "2 (d + 1) / d" if bias else "2"
        return Bound(
            value=value,
            provenance="exact",
            formula=f"alpha = {scale} = {formula}" + (" / 2" if div == 2.0 else ""),
            note=f"{cite}: P(n, d) = 1/2 exactly at n = 2 d_eff (d = {d}, bias = {bias})",
        )
    return Bound(
        value=1.0 / (2.0 * math.log(c)),
        provenance="heuristic",
        formula="alpha = n/(d c) ~ 1/(2 ln c)",
        note=(
            "large-c counting heuristic; 2-samples-per-parameter counting gives <= 1.39/ln c and "
            "the paper measured alpha ln c ~ 0.92 at d in {100, 1000} (Fig. 5B)"
        ),
    )


def alpha_id_bound(rho: float, c: int = 2, single_logit: bool | None = None) -> Bound:
    """Identifiability threshold of a linear teacher as a :class:`Bound` ("exact").

    1/rho in alpha = n/d for one logit; 1/(rho c) in alpha = n/(d c) for c logits through a softmax
    (see ``identifiability.alpha_id``; Phuong & Lampert 2019).
    """
    value = alpha_id(float(rho), c, single_logit)
    single = _single_logit(_check_c(c), single_logit)
    return Bound(
        value=float(value),
        provenance="exact",
        formula="alpha = n/d = 1/rho" if single else "alpha = n/(d c) = 1/(rho c)",
        note=(
            "linear teacher and student: the rho n student samples determine the teacher iff "
            "rho n >= d (Phuong & Lampert 2019); any finite tau, until the softmax saturates"
        ),
    )


def _widths(hidden: int | Sequence[int]) -> tuple[int, ...]:
    widths = (hidden,) if isinstance(hidden, (int, np.integer)) else tuple(hidden)
    for h in widths:
        if isinstance(h, bool) or not float(h).is_integer() or h < 1:
            raise ValueError(f"hidden widths must be integers >= 1, got {hidden!r}")
    return tuple(int(h) for h in widths)


def mlp_param_count(d: int, hidden: int | Sequence[int], c: int, bias: bool = True) -> int:
    """Number of trainable parameters of a fully connected net d -> hidden... -> c.

    Args:
        d: input dimension, >= 1.
        hidden: one width or a sequence of widths (empty: a linear model d -> c).
        c: number of outputs (>= 1 here: pass 1 for a single-logit binary model).
        bias: every layer has a bias.

    Returns:
        sum over layers of fan_in * fan_out (+ fan_out with biases).
    """
    if isinstance(d, bool) or not float(d).is_integer() or d < 1:
        raise ValueError(f"d must be an integer >= 1, got {d!r}")
    if isinstance(c, bool) or not float(c).is_integer() or c < 1:
        raise ValueError(f"the number of outputs c must be an integer >= 1, got {c!r}")
    sizes = (int(d), *_widths(hidden), int(c))
    fan = zip(sizes[:-1], sizes[1:], strict=True)  # (fan_in, fan_out) of each layer
    return sum(a * b + (b if bias else 0) for a, b in fan)


def _shift_free(d: int, hidden: int | Sequence[int], bias: bool) -> int:
    """Parameters of the output layer made redundant by the softmax shift (W -> W + 1 u^T)."""
    widths = _widths(hidden)
    fan_in = widths[-1] if widths else int(d)
    return fan_in + (1 if bias else 0)


def mlp_memorization_n(d: int, hidden: int | Sequence[int], c: int, bias: bool = True) -> Bound:
    """Counting estimate of how many random labels an MLP can memorize (a sample count n).

    - c = 2: Cover-type counting, 2 samples per free parameter (a linear classifier with d weights
      memorizes n = 2d, Cover 1965): n ~ 2 * #params of the single-logit net (``c=1`` in
      ``mlp_param_count``; the same as the two-logit count minus the softmax-redundant output
      parameters). For a linear model (``hidden=()``) this is exactly Cover's 2d (2(d + 1) with bias).
    - c > 2: the linear large-c heuristic alpha = n/(d c) ~ 1/(2 ln c) with #params in place of d c:
      n ~ #params / (2 ln c).

    Provenance "heuristic": hidden-layer symmetries, depth and the training algorithm are ignored
    (storage per weight of two-layer nets grows slowly with width, e.g. Mitchison & Durbin 1989).

    Args:
        d: input dimension; hidden: width(s) (empty for linear); c: classes (>= 2); bias: biases.
    """
    c = _check_c(c)
    if c == 2:
        p1 = mlp_param_count(d, hidden, 1, bias)
        return Bound(
            value=2.0 * p1,
            provenance="heuristic",
            formula="n ~ 2 #params (single logit)",
            note=f"Cover-type counting, 2 samples per parameter; #params = {p1}",
        )
    p = mlp_param_count(d, hidden, c, bias)
    return Bound(
        value=p / (2.0 * math.log(c)),
        provenance="heuristic",
        formula="n ~ #params / (2 ln c)",
        note=f"large-c linear heuristic alpha ~ 1/(2 ln c) with #params = {p} in place of d c",
    )


def mlp_identifiability_rho_n(
    d: int, hidden: int | Sequence[int], c: int, bias: bool = True
) -> Bound:
    """Counting estimate of the student-set size rho * n from which an MLP teacher is determined.

    Each student sample gives c - 1 equations (its soft label up to the softmax shift) and the
    teacher has #params unknowns, of which the output layer's shift W_out -> W_out + 1 u^T
    (fan_in + 1 with a bias) is unobservable: rho n (c - 1) >= #params - shift, i.e.
    rho n = (#params - fan_in(out) - bias) / (c - 1). For a linear model (``hidden=()``) this is
    exactly d (d + 1 with a bias), the linear identifiability threshold (Phuong & Lampert 2019).
    Provenance "heuristic": it ignores the ReLU rescaling and permutation symmetries of hidden units
    (which lower the count slightly) and whether gradient descent finds the solution.

    Args:
        d: input dimension; hidden: width(s) (empty for linear); c: classes (>= 2); bias: biases.

    Returns:
        A :class:`Bound` whose value is the sample count rho * n.
    """
    c = _check_c(c)
    p = mlp_param_count(d, hidden, c, bias)
    free = p - _shift_free(d, hidden, bias)
    return Bound(
        value=free / (c - 1),
        provenance="heuristic",
        formula="rho n = (#params - shift) / (c - 1)",
        note=f"parameter counting: #params = {p}, {p - free} fixed by the softmax shift",
    )


def mlp_identifiability_alpha(d: int, c: int, p: int, rho: float) -> float:
    """alpha = n/(d c) at which rho n (c - 1) soft-label equations equal the free parameters of a
    width-p student (``mlp_identifiability_rho_n``; the width studies' dashed lines)."""
    return mlp_identifiability_rho_n(d, p, c).value / rho / (d * c)


def mlp_memorization_alpha(d: int, c: int, p: int) -> float:
    """alpha = n/(d c) up to which a width-p teacher memorizes random labels, by counting
    (``mlp_memorization_n``)."""
    return mlp_memorization_n(d, p, c).value / (d * c)


def mlp_widest_identifiable(d: int, c: int, rho_n: float) -> float:
    """The width p at which a student's free parameters equal its rho n (c - 1) equations
    (inverts ``mlp_identifiability_rho_n``, which is affine in p); wider students are
    under-determined by their soft labels. May be below 1 (no width is)."""
    at1 = mlp_identifiability_rho_n(d, 1, c).value
    slope = mlp_identifiability_rho_n(d, 2, c).value - at1
    return 1.0 + (rho_n - at1) / slope
