"""Finite-size scaling, part two: collapsing curves at several d onto one master curve.

:func:`collapse` finds ``alpha_c`` and ``nu`` such that curves ``y_d(alpha)`` at several d fall on
one master curve of ``x = d^(1/nu) (alpha - alpha_c)``, by minimizing the quality function
(:func:`quality`) of Houdayer & Hartmann, Phys. Rev. B 70, 014418 (2004). Re-exported by
:mod:`softleak.compare.fss` (which describes the validation oracle).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

from softleak.compare.table import jsonable

Curves = Mapping[float, tuple[Any, ...]]


def _prepare(
    curves: Curves, dy_default: float
) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for d, data in sorted(curves.items()):
        if len(data) not in (2, 3):
            raise ValueError("each curve must be (alpha, y) or (alpha, y, yerr)")
        a = np.asarray(data[0], dtype=float)
        y = np.asarray(data[1], dtype=float)
        e = (
            np.full_like(y, dy_default)
            if len(data) == 2 or data[2] is None
            else np.asarray(data[2], dtype=float)
        )
        if not (a.shape == y.shape == e.shape) or a.ndim != 1:
            raise ValueError(f"curve at d={d}: alpha, y and yerr must be 1-D of equal length")
        ok = np.isfinite(a) & np.isfinite(y) & np.isfinite(e)
        order = np.argsort(a[ok])
        e_ok = np.where(e[ok] > 0, e[ok], dy_default)
        out.append((float(d), a[ok][order], y[ok][order], e_ok[order]))
    if len(out) < 2:
        raise ValueError("a collapse needs curves at two or more sizes")
    return out


def quality(
    prepared: Sequence[tuple[float, np.ndarray, np.ndarray, np.ndarray]],
    alpha_c: float,
    nu: float,
    x_window: tuple[float, float] | None = None,
) -> tuple[float, int]:
    """Houdayer-Hartmann quality S and the number N of terms.

    For each point (x_ij, y_ij, dy_ij) of curve i, with ``x = d^(1/nu) (alpha - alpha_c)``, the
    master curve is estimated from the two points of every other curve that bracket x_ij: a
    weighted straight-line fit through them gives Y_ij and its standard error dY_ij. Then
    ``S = (1/N) sum (y_ij - Y_ij)^2 / (dy_ij^2 + dY_ij^2)`` over the N points that have at least one
    bracketing curve (and lie in ``x_window`` when given).
    """
    if not (nu > 0 and math.isfinite(nu)):
        return math.inf, 0
    scaled = [(d ** (1.0 / nu) * (a - alpha_c), y, e) for d, a, y, e in prepared]
    total = 0.0
    count = 0
    for i, (xi, yi, ei) in enumerate(scaled):
        mask_i = np.ones(xi.shape, dtype=bool)
        if x_window is not None:
            mask_i = (xi >= x_window[0]) & (xi <= x_window[1])
        if not mask_i.any():
            continue
        x0 = xi[mask_i]
        # Sums of the weighted line fit over neighbours, one accumulator per target point.
        s0 = np.zeros_like(x0)
        sx = np.zeros_like(x0)
        sy = np.zeros_like(x0)
        sxx = np.zeros_like(x0)
        sxy = np.zeros_like(x0)
        for k, (xk, yk, ek) in enumerate(scaled):
            if k == i or xk.size < 2:
                continue
            j = np.searchsorted(xk, x0, side="right") - 1
            inside = (j >= 0) & (j < xk.size - 1)
            j = np.clip(j, 0, xk.size - 2)
            for jj in (j, j + 1):
                w = np.where(inside, 1.0 / ek[jj] ** 2, 0.0)
                xv, yv = xk[jj], yk[jj]
                s0 += w
                sx += w * xv
                sy += w * yv
                sxx += w * xv * xv
                sxy += w * xv * yv
        delta = s0 * sxx - sx * sx
        valid = (s0 > 0) & (delta > 1e-300 * np.maximum(s0 * sxx, 1.0))
        if not valid.any():
            continue
        xv = x0[valid]
        s0v, sxv, syv, sxxv, sxyv, dv = (
            s0[valid],
            sx[valid],
            sy[valid],
            sxx[valid],
            sxy[valid],
            delta[valid],
        )
        big_y = (sxxv * syv - sxv * sxyv) / dv + xv * (s0v * sxyv - sxv * syv) / dv
        d_y2 = (sxxv - 2.0 * xv * sxv + xv * xv * s0v) / dv
        yv = yi[mask_i][valid]
        ev = ei[mask_i][valid]
        total += float(np.sum((yv - big_y) ** 2 / (ev**2 + np.clip(d_y2, 0.0, None))))
        count += int(valid.sum())
    if count == 0:
        return math.inf, 0
    return total / count, count


@dataclass(frozen=True, eq=False)
class Collapse:
    """Result of a data collapse: alpha_c, nu, their uncertainties and the curves."""

    alpha_c: float
    alpha_c_err: float  # half-width of the interval where S <= S_min + delta_s (alpha_c only)
    nu: float
    nu_err: float
    s_min: float  # quality at the optimum (in units of the given or rescaled errors)
    n_terms: int  # N of the quality function at the optimum
    delta_s: float  # rise of S used for the uncertainties
    errors_given: bool  # False: constant dy, rescaled so that S_min = 1
    curves: tuple[tuple[float, np.ndarray, np.ndarray, np.ndarray], ...] = field(repr=False)
    x_window: tuple[float, float] | None = None
    success: bool = True  # optimizer converged to a finite nu (< 1e3; else no size dependence)

    def scaled(self) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """``{d: (d^(1/nu) (alpha - alpha_c), y)}`` at the optimum."""
        return {d: (d ** (1.0 / self.nu) * (a - self.alpha_c), y) for d, a, y, _ in self.curves}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the estimates."""
        return jsonable(
            {
                "alpha_c": self.alpha_c,
                "alpha_c_err": self.alpha_c_err,
                "nu": self.nu,
                "nu_err": self.nu_err,
                "s_min": self.s_min,
                "n_terms": self.n_terms,
                "delta_s": self.delta_s,
                "errors_given": self.errors_given,
                "sizes": [d for d, *_ in self.curves],
                "x_window": self.x_window,
                "success": self.success,
            }
        )

    def plot(self, ax: Any = None, ylabel: str = "accuracy") -> Any:
        """y vs ``d^(1/nu) (alpha - alpha_c)``, one colour per d (darker = larger). Returns ax."""
        from softleak.compare.style import axes_or_new, sequence_colors

        ax = axes_or_new(ax)
        colors = sequence_colors(len(self.curves), "viridis_r")
        for (d, a, y, e), color in zip(self.curves, colors, strict=True):
            x = d ** (1.0 / self.nu) * (a - self.alpha_c)
            if self.errors_given:
                ax.errorbar(
                    x,
                    y,
                    yerr=e,
                    color=color,
                    marker="o",
                    ms=2.5,
                    lw=1.0,
                    capsize=0,
                    label=f"d = {d:g}",
                )
            else:
                ax.plot(x, y, color=color, marker="o", ms=2.5, lw=1.0, label=f"d = {d:g}")
        ax.set_xlabel(
            rf"$d^{{1/\nu}}(\alpha - \alpha_c)$, $\alpha_c = {self.alpha_c:.3f}$, "
            rf"$\nu = {self.nu:.2f}$"
        )
        ax.set_ylabel(ylabel)
        if self.x_window is not None:
            ax.set_xlim(*self.x_window)
        ax.legend(fontsize="small", frameon=False)
        return ax


def collapse(
    curves: Curves,
    alpha_c0: float,
    nu0: float,
    *,
    x_window: tuple[float, float] | None = None,
    dy: float = 1e-3,
    delta_s: float = 1.0,
) -> Collapse:
    """Choose alpha_c and nu that best collapse ``y_d(alpha)`` onto ``F(d^(1/nu)(alpha - alpha_c))``.

    Minimizes the Houdayer-Hartmann quality :func:`quality` with Nelder-Mead from
    ``(alpha_c0, nu0)``. Uncertainties: each parameter is moved (the other held at its optimum)
    until S rises by ``delta_s`` (Houdayer & Hartmann use 1; S is a mean chi^2, so
    ``delta_s = 1/N`` gives the Delta chi^2 = 1 interval instead); the reported error is the mean
    of the two one-sided distances.

    Args:
        curves: ``{d: (alpha, y)}`` or ``{d: (alpha, y, yerr)}`` with 1-D arrays.
        alpha_c0, nu0: starting point.
        x_window: only points with scaled x in this interval enter S (e.g. the transition region).
        dy: constant error used when a curve has no ``yerr``; S is then rescaled by its minimum
            (errors estimated from the scatter, so S_min = 1) before the uncertainties are taken.
        delta_s: rise of S that defines the uncertainties.

    Returns:
        A :class:`Collapse`.
    """
    prepared = _prepare(curves, dy)
    errors_given = all(len(data) == 3 and data[2] is not None for data in curves.values())
    total_points = sum(a.size for _, a, _, _ in prepared)
    min_terms = max(3, total_points // 10)

    def objective(p: np.ndarray) -> float:
        s, n = quality(prepared, p[0], p[1], x_window)
        return s if n >= min_terms else 1e12

    start = np.array([alpha_c0, nu0], dtype=float)
    simplex = np.array(
        [start, start + [0.05 * max(abs(alpha_c0), 0.1), 0.0], start + [0.0, 0.2 * nu0]]
    )
    res = optimize.minimize(
        objective,
        start,
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 1e-6, "fatol": 1e-10, "maxiter": 4000},
    )
    alpha_c, nu = float(res.x[0]), float(res.x[1])
    s_min, n_terms = quality(prepared, alpha_c, nu, x_window)
    scale = 1.0
    if not errors_given and s_min > 0 and math.isfinite(s_min):
        scale = s_min  # rescale constant errors so that S_min = 1

    def rise(p: np.ndarray) -> float:
        return objective(p) / scale - s_min / scale - delta_s

    errs = []
    for k, step0 in ((0, 1e-3 * max(abs(alpha_c), 0.1)), (1, 1e-3 * nu)):
        sides = []
        for sign in (-1.0, 1.0):
            sides.append(_distance_to_rise(rise, res.x, k, sign, step0))
        finite = [s for s in sides if math.isfinite(s)]
        errs.append(float(np.mean(finite)) if finite else math.inf)
    return Collapse(
        alpha_c=alpha_c,
        alpha_c_err=errs[0],
        nu=nu,
        nu_err=errs[1],
        s_min=float(s_min / scale),
        n_terms=int(n_terms),
        delta_s=delta_s,
        errors_given=errors_given,
        curves=tuple(prepared),
        x_window=x_window,
        success=bool(res.success) and 0 < nu < 1e3,
    )


def _distance_to_rise(rise, x0: np.ndarray, k: int, sign: float, step: float) -> float:
    """Distance along coordinate k (direction ``sign``) where ``rise`` changes sign (bisection)."""
    lo = 0.0
    hi = step
    for _ in range(60):
        p = x0.copy()
        p[k] += sign * hi
        if k == 1 and p[k] <= 0:
            return math.inf
        if rise(p) >= 0:
            break
        lo, hi = hi, hi * 2.0
    else:
        return math.inf
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        p = x0.copy()
        p[k] += sign * mid
        if rise(p) >= 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)
