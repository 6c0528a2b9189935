"""Which law in the number of classes c does a threshold follow? (paper section 5.1, Fig. 5B)

The paper reports, at rho = 0.55 and tau = 10, alpha_id^S ~ 1/c, alpha_label^T ~ alpha_label^S ~
1/ln c and alpha_label^{S-shuffle} ~ 1/sqrt(c), in alpha = n/(d c). This module fits the three
candidate laws alpha(c) = A f(c) + B, f in {1/c, 1/ln c, 1/sqrt c}, by (weighted) linear least
squares and ranks them by the Akaike information criterion.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["LAWS", "ClassScalingFit", "ScalingModel", "fit_class_scaling"]

LAWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "1/c": lambda c: 1.0 / c,
    "1/ln c": lambda c: 1.0 / np.log(c),
    "1/sqrt c": lambda c: 1.0 / np.sqrt(c),
}
"""The candidate f(c) of alpha(c) = A f(c) + B, by name."""

_K = 2  # fitted parameters per law (A and B) in the AIC penalty


@dataclass(frozen=True)
class ScalingModel:
    """One fitted law alpha(c) = A f(c) + B.

    Attributes:
        name: the law's key in ``LAWS`` ("1/c", "1/ln c", "1/sqrt c").
        A, B: least-squares coefficients; A_se, B_se their standard errors (square roots of the
            diagonal of the parameter covariance: sigma^2 (X^T W X)^-1 with the given sigma, or
            s^2 (X^T X)^-1 with s^2 = rss/(m - 2) when sigma is None; m the number of points).
        rss: residual sum of squares, weighted by 1/sigma^2 when sigma is given (then it is chi^2).
        aic: m ln(rss/m) + 2k without sigma (Gaussian likelihood, unknown variance), chi^2 + 2k with
            sigma; k = 2. Lower is better; -inf for an exact fit.
    """

    name: str
    A: float
    A_se: float
    B: float
    B_se: float
    rss: float
    aic: float

    def predict(self, c: ArrayLike) -> float | np.ndarray:
        """alpha(c) = A f(c) + B, shape of ``c``."""
        out = self.A * LAWS[self.name](np.asarray(c, dtype=np.float64)) + self.B
        return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True)
class ClassScalingFit:
    """The candidate laws fitted to one threshold curve alpha(c), best (lowest AIC) first.

    Attributes:
        models: tuple of :class:`ScalingModel`, sorted by AIC, best first.
        c, alpha: the data, shape (m,); sigma: their standard errors, or None.
    """

    models: tuple[ScalingModel, ...]
    c: tuple[float, ...]
    alpha: tuple[float, ...]
    sigma: tuple[float, ...] | None = None

    @property
    def best(self) -> ScalingModel:
        """The law with the lowest AIC."""
        return self.models[0]

    def model(self, name: str) -> ScalingModel:
        """The fitted law called ``name``."""
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"no law {name!r}; fitted: {[m.name for m in self.models]}")

    def predict(self, c: ArrayLike, name: str | None = None) -> float | np.ndarray:
        """alpha(c) under the law ``name`` (the best law when None), shape of ``c``."""
        return (self.best if name is None else self.model(name)).predict(c)


def fit_class_scaling(
    c: ArrayLike,
    alpha: ArrayLike,
    sigma: ArrayLike | None = None,
    laws: Sequence[str] | None = None,
) -> ClassScalingFit:
    """Fit alpha(c) = A f(c) + B for each law f and rank the laws by AIC (paper Fig. 5B).

    Args:
        c: numbers of classes, shape (m,), each >= 2, m >= 3.
        alpha: the threshold at each c, shape (m,).
        sigma: standard errors of alpha, scalar or shape (m,), > 0; None for unweighted least
            squares with the noise variance estimated from the residuals.
        laws: names from ``LAWS`` to fit (default: all three).

    Returns:
        A :class:`ClassScalingFit` with the models sorted by AIC (ties keep the order of ``laws``).
    """
    cc = np.asarray(c, dtype=np.float64).ravel()
    yy = np.asarray(alpha, dtype=np.float64).ravel()
    if cc.shape != yy.shape:
        raise ValueError(f"c and alpha must have the same length, got {cc.size} and {yy.size}")
    m = cc.size
    if m < 3:
        raise ValueError(f"need at least 3 points to fit and compare laws, got {m}")
    if not (np.all(np.isfinite(cc)) and np.all(np.isfinite(yy))):
        raise ValueError("c and alpha must be finite")
    if np.any(cc < 2):
        raise ValueError(f"every c must be >= 2, got {cc.min():g}")
    if sigma is None:
        w = np.ones(m)
        ss = None
    else:
        ss = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (m,))
        if not (np.all(np.isfinite(ss)) and np.all(ss > 0)):
            raise ValueError("sigma must be finite and > 0")
        w = 1.0 / ss
    names = tuple(LAWS) if laws is None else tuple(laws)
    for name in names:
        if name not in LAWS:
            raise ValueError(f"unknown law {name!r}; choose from {list(LAWS)}")
    fitted = []
    for name in names:
        f = LAWS[name](cc)
        if np.ptp(f) == 0:
            raise ValueError("need at least two distinct values of c")
        X = np.column_stack([f, np.ones(m)])  # (m, 2)
        Xw, yw = X * w[:, None], yy * w
        coef, *_ = np.linalg.lstsq(Xw, yw, rcond=None)
        resid = yw - Xw @ coef
        rss = float(resid @ resid)
        xtx_inv = np.linalg.inv(Xw.T @ Xw)
        if ss is None:
            cov = xtx_inv * (rss / (m - _K))
            aic = m * math.log(rss / m) + 2 * _K if rss > 0 else -math.inf
        else:
            cov = xtx_inv
            aic = rss + 2 * _K
        se = np.sqrt(np.diag(cov))
        fitted.append(
            ScalingModel(
                name=name,
                A=float(coef[0]),
                A_se=float(se[0]),
                B=float(coef[1]),
                B_se=float(se[1]),
                rss=rss,
                aic=float(aic),
            )
        )
    order = sorted(range(len(fitted)), key=lambda i: (fitted[i].aic, i))
    return ClassScalingFit(
        models=tuple(fitted[i] for i in order),
        c=tuple(float(v) for v in cc),
        alpha=tuple(float(v) for v in yy),
        sigma=None if ss is None else tuple(float(v) for v in ss),
    )
