"""When do a linear teacher's outputs on the student's samples determine the teacher?

The student sees the teacher's outputs (logits, or soft labels softmax(z / tau)) on rho * n of the
teacher's n training inputs x_i ~ N(0, I_d). For a linear teacher z = W x this is a linear system in the
unknown weights, and the student recovers the teacher (functionally, hence also on the held-out
rho-complement) as soon as the system has a unique solution: the identifiability threshold alpha_id of
the paper (section 5.1), found for linear networks by Phuong & Lampert (2019), "Towards Understanding
Knowledge Distillation", ICML, Theorem 1 (the distilled linear student converges to the teacher
projected on the span of the transfer inputs, which is all of R^d once there are >= d of them).

Also here: the logit gaps at which a softmax saturates or underflows in a given float type
(``softmax_limits``), beyond which soft labels stop carrying more than hard labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["SoftmaxLimits", "alpha_id", "alpha_scale", "softmax_limits"]


#: The most classes the closed forms accept (beyond, c itself overflows float64 arithmetic).
MAX_CLASSES = 1e300


def _check_c(c: int) -> int:
    if isinstance(c, int) and not isinstance(c, bool) and c > MAX_CLASSES:
        raise ValueError(
            f"the number of classes c must be at most {MAX_CLASSES:g}, got a "
            f"{len(str(c))}-digit number"
        )
    if isinstance(c, bool) or not float(c).is_integer() or not 2 <= c <= MAX_CLASSES:
        raise ValueError(
            f"the number of classes c must be an integer from 2 to {MAX_CLASSES:g}, got {c!r}"
        )
    return int(c)


def _single_logit(c: int, single_logit: bool | None) -> bool:
    if single_logit is None:
        return c == 2
    if single_logit and c != 2:
        raise ValueError(f"a single logit only describes c = 2 classes, got c = {c}")
    return bool(single_logit)


def alpha_scale(c: int, single_logit: bool | None = None) -> str:
    """The sample-complexity scale the paper uses for this model: ``"n/d"`` or ``"n/(d c)"``.

    Binary models with one logit (sign of w . x, paper section 5.1) use alpha = n/d; models with c
    logits read through a softmax (multinomial regression, MLPs) use alpha = n/(d c), n per parameter
    of the c x d weight matrix.

    Args:
        c: number of classes, >= 2.
        single_logit: one logit for c = 2 (default for c = 2: True); must be False/None for c > 2.
    """
    c = _check_c(c)
    return "n/d" if _single_logit(c, single_logit) else "n/(d c)"


def alpha_id(rho: ArrayLike, c: int = 2, single_logit: bool | None = None) -> float | np.ndarray:
    """Identifiability threshold of a linear teacher from its outputs on rho * n samples.

    Single logit (c = 2, z = w . x, alpha = n/d): the student's rho n logits z_i = w . x_i form a
    linear system for w in R^d with a Gaussian (full-rank) design, uniquely solvable iff rho n >= d,
    i.e. alpha = n/d >= alpha_id = 1/rho (the pseudo-inverse student w = X^+ z equals w exactly from
    there on; Phuong & Lampert 2019, Theorem 1).

    c logits through a softmax (z = W x, W in R^{c x d}, alpha = n/(d c)): the soft label
    softmax(z / tau) determines z only up to a per-sample shift (softmax(z + t 1) = softmax(z)), so each
    sample gives c - 1 equations (the log-ratios z_k - z_c), not c. Dropping that degree of freedom per
    sample does not move the threshold, because W is itself determined only up to the same invariance:
    W -> W + 1 u^T (add a common vector u to every row) shifts every sample's logits by u . x and changes
    nothing observable. Quotienting both sides, the unknowns are the (c - 1) d entries of the row
    differences and the equations are (c - 1) rho n, so identifiability needs rho n >= d, i.e.
    alpha = n/(d c) >= alpha_id = 1/(rho c). (For c = 2 with two logits this is 1/(2 rho) in n/(d c),
    the same condition as the single logit, 1/rho in n/d.) At finite tau the map from logit
    differences to soft labels is invertible, so tau does not enter, until float saturation
    (``softmax_limits``).

    Args:
        rho: student's training fraction, 0 < rho < 1 (scalar or array).
        c: number of classes, >= 2.
        single_logit: one logit for c = 2 (default for c = 2), else c logits through a softmax.

    Returns:
        alpha_id with the shape of ``rho`` (a float for scalar rho), in the scale ``alpha_scale(c,
        single_logit)``.
    """
    c = _check_c(c)
    single = _single_logit(c, single_logit)
    r = np.asarray(rho, dtype=np.float64)
    if not np.all((r > 0) & (r < 1)):
        raise ValueError(f"rho must lie strictly between 0 and 1, got {rho!r}")
    with np.errstate(over="ignore"):
        out = 1.0 / r if single else 1.0 / (r * c)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"rho = {rho!r} is too small: alpha_id = 1/(rho c) overflows a float")
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class SoftmaxLimits:
    """Logit gaps at which a softmax at temperature ``tau`` stops resolving in float type ``dtype``.

    Attributes:
        tau: softmax temperature (soft labels softmax(z / tau)).
        dtype: the float type, as a numpy name ("float16", "float32", "float64").
        gap_saturate: logit gap z_max - z_other beyond which the largest probability is exactly 1.
        gap_underflow: logit gap beyond which the smaller probability is exactly 0.
        subnormals: whether the underflow gap assumes gradual underflow (IEEE subnormals).
    """

    tau: float
    dtype: str
    gap_saturate: float
    gap_underflow: float
    subnormals: bool = True


def softmax_limits(
    tau: float = 1.0, dtype: str = "float32", subnormals: bool = True
) -> SoftmaxLimits:
    """Logit gaps beyond which soft labels computed in ``dtype`` lose information.

    Two classes with logit gap g = z_max - z_other and a numerically stable softmax (subtract the
    max): e = exp(-g / tau), p_max = 1 / (1 + e), p_other = e / (1 + e).

    - ``gap_saturate`` = tau ln(2 / eps), eps the machine epsilon of ``dtype`` (tau * 16.64 in
      float32, tau * 36.74 in float64): for e <= eps/2, 1 + e rounds to 1 (round half to even), so
      p_max is exactly 1 and 1 - p_max, the information in the large entry, is lost. The small
      entry still carries it (in relative precision) until:
    - ``gap_underflow`` = tau ln(2 / tiny), with tiny the smallest positive subnormal of ``dtype``
      (2^-149 in float32: tau * 103.97; 2^-1074 in float64: tau * 745.13): below tiny/2 the exponential
      rounds to 0. With ``subnormals=False`` (flush-to-zero, as on many GPU kernels) tiny is the
      smallest normal number and anything below it is flushed (gap tau ln(1 / tiny), float32:
      tau * 87.34).

    Beyond ``gap_underflow`` the soft label is exactly the one-hot hard label in that dtype, so it
    carries no more information than the hard label: every threshold that relies on soft-label
    information (alpha_id, alpha_label^S) then moves to its hard-label value. Between the two gaps
    only losses that read the small entries (cross-entropy with probability targets, log-softmax)
    still see the teacher's logits. For c > 2 classes with several runners-up at the same gap, the
    sum 1 + (c - 1) e saturates later (gap tau ln(2 (c - 1)/eps)); the limits here are for one
    runner-up, the tightest case.

    Args:
        tau: temperature, > 0.
        dtype: "float16", "float32" or "float64".
        subnormals: assume IEEE gradual underflow (numpy on CPU) rather than flush-to-zero.
    """
    tau = float(tau)
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a finite number > 0, got {tau}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"unknown dtype {dtype!r}") from None
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating type, got {dtype!r}")
    info = np.finfo(dt)
    if subnormals:  # round to nearest: values below half the smallest subnormal become 0
        log_zero = math.log(2.0) - math.log(float(info.smallest_subnormal))
    else:  # flush-to-zero: any result below the smallest normal becomes 0
        log_zero = -math.log(float(info.smallest_normal))
    return SoftmaxLimits(
        tau=tau,
        dtype=dt.name,
        gap_saturate=tau * math.log(2.0 / float(info.eps)),
        gap_underflow=tau * log_zero,
        subnormals=bool(subnormals),
    )
