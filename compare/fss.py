"""Finite-size scaling: extrapolating thresholds to d -> infinity and collapsing curves.

Two tools (no dependency on the ``fssa`` package):

- :func:`fit_threshold_scaling` fits ``alpha(d) = alpha_inf + a d^(-1/nu)`` (optionally with the
  next analytic correction ``+ b d^(-2/nu)``) to thresholds measured at several d, and gives
  ``alpha_inf`` with a confidence interval.
- :func:`collapse` finds ``alpha_c`` and ``nu`` such that curves ``y_d(alpha)`` at several d fall
  on one master curve of ``x = d^(1/nu) (alpha - alpha_c)``, by minimizing the quality function of
  Houdayer & Hartmann, Phys. Rev. B 70, 014418 (2004).

Validation oracle (tests): Cover's P(n = alpha d, d) = P[Bin(n - 1, 1/2) <= d - 1]. Its
crossing of 1/2 is alpha = 2 exactly at every d; its crossing of 0.99 (the experiments' cut-off)
moves as ``2 - z_0.99 sqrt(2/d) + O(1/d)`` (normal approximation: P ~ Phi((2 - alpha)
sqrt(d/alpha))), so alpha_inf = 2 and nu = 2, and the curves collapse with alpha_c = 2, nu = 2.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from softleak.compare.table import jsonable

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Threshold extrapolation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FSSFit:
    """Fit of ``alpha(d) = alpha_inf + a d^(-1/nu) [+ b d^(-2/nu)]`` to thresholds at several d."""

    d: np.ndarray  # (K,) sizes
    alpha: np.ndarray  # (K,) measured thresholds
    alpha_err: np.ndarray | None  # (K,) their standard errors (None: unweighted fit)
    alpha_inf: float  # extrapolated threshold
    alpha_inf_se: float  # its standard error from the covariance
    ci_low: float  # confidence interval of alpha_inf from the covariance (t or normal)
    ci_high: float
    a: float  # amplitude of the leading correction
    a_se: float
    nu: float  # width exponent: the shift scales as d^(-1/nu)
    nu_se: float  # NaN when nu was fixed
    b: float  # amplitude of the d^(-2/nu) correction (0 when not fitted)
    b_se: float
    nu_fixed: bool
    level: float  # confidence level
    chi2: float  # weighted (or plain) residual sum of squares
    dof: int
    boot_ci: tuple[float, float] = (math.nan, math.nan)  # parametric bootstrap interval
    n_boot: int = 0

    def predict(self, d: Any) -> np.ndarray:
        """The fitted alpha(d) (``d = inf`` gives alpha_inf)."""
        u = np.asarray(d, dtype=float) ** (-1.0 / self.nu)
        return self.alpha_inf + self.a * u + self.b * u**2

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fit and its data."""
        return jsonable(
            {
                "alpha_inf": self.alpha_inf,
                "alpha_inf_se": self.alpha_inf_se,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "level": self.level,
                "a": self.a,
                "a_se": self.a_se,
                "nu": self.nu,
                "nu_se": self.nu_se,
                "nu_fixed": self.nu_fixed,
                "b": self.b,
                "b_se": self.b_se,
                "chi2": self.chi2,
                "dof": self.dof,
                "boot_ci": list(self.boot_ci),
                "n_boot": self.n_boot,
                "d": self.d,
                "alpha": self.alpha,
                "alpha_err": self.alpha_err,
            }
        )

    def plot(self, ax: Any = None, color: str = "#0072B2", label: str | None = None) -> Any:
        """alpha vs d^(-1/nu) with error bars, the fitted line extrapolated to 0, and alpha_inf's
        interval at the origin. Returns the axes."""
        from softleak.compare.style import axes_or_new

        ax = axes_or_new(ax)
        u = self.d ** (-1.0 / self.nu)
        ax.errorbar(
            u,
            self.alpha,
            yerr=self.alpha_err,
            fmt="o",
            color=color,
            ms=4,
            capsize=2,
            label=label or "measured",
        )
        grid = np.linspace(0.0, float(u.max()) * 1.05, 200)
        with np.errstate(divide="ignore", over="ignore"):  # huge nu: d -> inf there
            d_grid = np.where(grid > 0, grid ** (-self.nu), np.inf)
        ax.plot(grid, self.predict(d_grid), color=color, lw=1.2, ls="-", label="fit")
        if math.isfinite(self.ci_low) and math.isfinite(self.ci_high):
            ax.errorbar(
                [0.0],
                [self.alpha_inf],
                yerr=[[self.alpha_inf - self.ci_low], [self.ci_high - self.alpha_inf]],
                fmt="s",
                color="black",
                capsize=3,
                ms=5,
                label=rf"$\alpha_\infty = {self.alpha_inf:.3f}$",
            )
        ax.axvline(0.0, color="0.6", lw=0.8)
        nu_txt = f"{self.nu:.2f}" + ("" if self.nu_fixed else rf" \pm {self.nu_se:.2f}")
        ax.set_xlabel(rf"$d^{{-1/\nu}}$,  $\nu = {nu_txt}$")
        ax.set_ylabel(r"threshold $\alpha$")
        ax.legend(fontsize="small", frameon=False)
        return ax


def fit_threshold_scaling(
    d: Sequence[float],
    alpha: Sequence[float],
    alpha_err: Sequence[float] | None = None,
    *,
    nu: float | None = None,
    nu0: float = 2.0,
    corrections: int = 0,
    level: float = 0.95,
    n_boot: int = 0,
    seed: int | np.random.Generator | None = 0,
) -> FSSFit:
    """Fit ``alpha(d) = alpha_inf + a d^(-1/nu) [+ b d^(-2/nu)]`` (scipy ``curve_fit``).

    Args:
        d: sizes, shape (K,), > 0, at least (number of parameters + 1) distinct values.
        alpha: thresholds at each size, shape (K,).
        alpha_err: standard errors of ``alpha`` (weighted fit with absolute errors and a normal
            interval); None for an unweighted fit whose covariance is scaled by the residuals (t
            interval with K - p degrees of freedom).
        nu: fix the exponent (e.g. 2 for Cover's curve); None fits it (started at ``nu0``).
        corrections: 0, or 1 to add the next analytic correction ``b d^(-2/nu)``.
        level: confidence level.
        n_boot: parametric-bootstrap resamples (0: none): data redrawn around the fit with the
            given errors (or the residual scale) and refitted; percentile interval in ``boot_ci``.
        seed: seed or generator of the bootstrap.

    Returns:
        An :class:`FSSFit`.

    Raises:
        ValueError: too few points, non-positive d or errors, or a fit that does not converge.
    """
    d_arr = np.asarray(d, dtype=float)
    a_arr = np.asarray(alpha, dtype=float)
    err = None if alpha_err is None else np.asarray(alpha_err, dtype=float)
    keep = np.isfinite(d_arr) & np.isfinite(a_arr)
    if err is not None:
        keep &= np.isfinite(err)
    d_arr, a_arr = d_arr[keep], a_arr[keep]
    err = None if err is None else err[keep]
    order = np.argsort(d_arr)
    d_arr, a_arr = d_arr[order], a_arr[order]
    err = None if err is None else err[order]
    if corrections not in (0, 1):
        raise ValueError(f"corrections must be 0 or 1, got {corrections}")
    n_par = 2 + (nu is None) + corrections
    if len(np.unique(d_arr)) < n_par + 1 - (err is not None):
        raise ValueError(
            f"need at least {n_par + 1 - (err is not None)} sizes for this fit, "
            f"got {len(np.unique(d_arr))}"
        )
    if np.any(d_arr <= 0):
        raise ValueError("sizes d must be > 0")
    if err is not None and np.any(err <= 0):
        raise ValueError("alpha_err must be > 0")

    params, cov, model = _fit(d_arr, a_arr, err, nu, nu0, corrections)
    resid = a_arr - model(d_arr, *params)
    chi2 = float(np.sum((resid / (1.0 if err is None else err)) ** 2))
    dof = len(a_arr) - n_par
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None)) if np.all(np.isfinite(cov)) else None
    if se is None:
        se = np.full(n_par, np.inf)
    if err is None:
        q = stats.t.ppf(0.5 + level / 2, dof) if dof > 0 else math.inf
    else:
        q = stats.norm.ppf(0.5 + level / 2)
    names = ["alpha_inf", "a"] + (["theta"] if nu is None else []) + (["b"] if corrections else [])
    val = dict(zip(names, params, strict=True))
    err_of = dict(zip(names, se, strict=True))
    theta = val.get("theta", 1.0 / nu if nu is not None else math.nan)
    nu_hat = 1.0 / theta
    nu_se = err_of["theta"] / theta**2 if nu is None else math.nan
    alpha_inf = float(val["alpha_inf"])
    half = q * err_of["alpha_inf"]

    boot_ci = (math.nan, math.nan)
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        scale = err if err is not None else np.full_like(a_arr, math.sqrt(chi2 / max(dof, 1)))
        centre = model(d_arr, *params)
        draws = []
        for _ in range(n_boot):
            fake = centre + rng.standard_normal(a_arr.shape) * scale
            try:
                p_b, _, _ = _fit(d_arr, fake, err, nu, nu0, corrections, start=params)
            except ValueError:
                continue
            draws.append(p_b[0])
        if draws:
            lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
            boot_ci = (float(lo), float(hi))
        if len(draws) < n_boot:
            log.info("%d/%d bootstrap fits failed", n_boot - len(draws), n_boot)

    return FSSFit(
        d=d_arr,
        alpha=a_arr,
        alpha_err=err,
        alpha_inf=alpha_inf,
        alpha_inf_se=float(err_of["alpha_inf"]),
        ci_low=alpha_inf - half,
        ci_high=alpha_inf + half,
        a=float(val["a"]),
        a_se=float(err_of["a"]),
        nu=float(nu_hat),
        nu_se=float(nu_se),
        b=float(val.get("b", 0.0)),
        b_se=float(err_of.get("b", math.nan)),
        nu_fixed=nu is not None,
        level=level,
        chi2=chi2,
        dof=dof,
        boot_ci=boot_ci,
        n_boot=n_boot,
    )


def _fit(
    d: np.ndarray,
    alpha: np.ndarray,
    err: np.ndarray | None,
    nu: float | None,
    nu0: float,
    corrections: int,
    start: np.ndarray | None = None,
):
    """One least-squares fit; returns (params, covariance, model)."""
    if nu is None:

        def model(x, ai, a, *rest):  # rest: theta, then the correction
            u = x ** (-rest[0])
            return ai + a * u + (rest[1] * u**2 if len(rest) > 1 else 0.0)

        theta0 = 1.0 / nu0
    else:
        theta_fixed = 1.0 / float(nu)

        def model(x, ai, a, *b):
            u = x ** (-theta_fixed)
            return ai + a * u + (b[0] * u**2 if b else 0.0)

        theta0 = theta_fixed
    if start is None:
        u = d ** (-theta0)
        span = u[0] - u[-1] if u[0] != u[-1] else 1.0
        a0 = (alpha[0] - alpha[-1]) / span
        ai0 = alpha[-1] - a0 * u[-1]
        start = np.array([ai0, a0] + ([theta0] if nu is None else []) + [0.0] * corrections)
    lower = [-np.inf, -np.inf] + ([1e-3] if nu is None else []) + [-np.inf] * corrections
    upper = [np.inf, np.inf] + ([10.0] if nu is None else []) + [np.inf] * corrections
    try:
        params, cov = optimize.curve_fit(
            model,
            d,
            alpha,
            p0=start,
            sigma=err,
            absolute_sigma=err is not None,
            bounds=(lower, upper) if nu is None else (-np.inf, np.inf),
            maxfev=20000,
        )
    except (RuntimeError, optimize.OptimizeWarning) as exc:
        raise ValueError(f"threshold scaling fit did not converge: {exc}") from exc
    return params, cov, model


# --------------------------------------------------------------------------------------------
# Data collapse (Houdayer & Hartmann 2004)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Thresholds at several sizes
# --------------------------------------------------------------------------------------------


def thresholds_by_d(
    dfs: pd.DataFrame | Iterable[pd.DataFrame],
    rules: Iterable[str] | None = None,
    cutoff: float = 0.99,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Thresholds of one or several sweeps, one row per (rule, condition, d).

    Args:
        dfs: a results table spanning several d, or several tables (one per d).
        rules, cutoff, n_boot, seed, level: as in :func:`compare.thresholds.find_thresholds`.

    Returns:
        ``ThresholdTable.to_frame()`` columns plus ``err``: a standard error from the bootstrap
        interval (its half-width divided by the normal quantile), NaN when the interval is not
        finite. Sorted by rule, condition and d.
    """
    from softleak.compare.thresholds import find_thresholds

    frame = dfs if isinstance(dfs, pd.DataFrame) else pd.concat(list(dfs), ignore_index=True)
    table = find_thresholds(
        frame, rules=rules, cutoff=cutoff, n_boot=n_boot, seed=seed, level=level, theory=False
    )
    out = table.to_frame()
    if out.empty:
        return out
    z = stats.norm.ppf(0.5 + level / 2)
    out["err"] = (out["ci_high"] - out["ci_low"]) / (2.0 * z)
    out.loc[~np.isfinite(out["err"]) | (out["err"] <= 0), "err"] = np.nan
    keys = [c for c in ("name", "experiment", "c", "rho", "tau", "d") if c in out.columns]
    return out.sort_values(keys, na_position="first").reset_index(drop=True)


def fit_thresholds_by_d(
    by_d: pd.DataFrame, min_sizes: int = 3, nu: float | None = None, **kwargs: Any
) -> list[tuple[dict[str, Any], FSSFit]]:
    """Fit :func:`fit_threshold_scaling` to each condition of a :func:`thresholds_by_d` table.

    Conditions with fewer than ``min_sizes`` finite thresholds at distinct d are skipped. Errors
    are used when every point has one. Returns ``[(condition, fit), ...]``.
    """
    if by_d.empty:
        return []
    group_cols = [c for c in ("name", "experiment", "c", "rho", "tau") if c in by_d.columns]
    fits = []
    for key, group in by_d.groupby(group_cols, dropna=False, sort=True):
        group = group[np.isfinite(group["value"])]
        if group["d"].nunique() < min_sizes:
            continue
        err = group["err"].to_numpy(dtype=float) if "err" in group else None
        if err is not None and not np.all(np.isfinite(err)):
            err = None
        cond = dict(zip(group_cols, key if isinstance(key, tuple) else (key,), strict=True))
        try:
            fit = fit_threshold_scaling(
                group["d"].to_numpy(dtype=float),
                group["value"].to_numpy(dtype=float),
                err,
                nu=nu,
                **kwargs,
            )
        except ValueError as exc:
            log.warning("no scaling fit for %s: %s", cond, exc)
            continue
        fits.append((jsonable(cond), fit))
    return fits
