"""Finite-size scaling, part one: extrapolating thresholds measured at several d to d -> infinity.

:func:`fit_threshold_scaling` fits ``alpha(d) = alpha_inf + a d^(-1/nu)`` (optionally with the
next analytic correction ``+ b d^(-2/nu)``) to thresholds measured at several d, and gives
``alpha_inf`` with a confidence interval. Re-exported by :mod:`softleak.compare.fss` (which
describes the validation oracle).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from softleak.compare.table import jsonable

log = logging.getLogger(__name__)


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
    d_arr, a_arr, err = _finite_sorted(d, alpha, alpha_err)
    n_par = _check_points(d_arr, err, nu, corrections)

    spec = (err, nu, nu0, corrections)
    params, cov, model = _fit(d_arr, a_arr, *spec)
    resid = a_arr - model(d_arr, *params)
    chi2 = float(np.sum((resid / (1.0 if err is None else err)) ** 2))
    dof = len(a_arr) - n_par
    val, err_of = _named_estimates(params, cov, n_par, nu, corrections)
    q = _quantile(err, level, dof)
    theta = val.get("theta", 1.0 / nu if nu is not None else math.nan)
    nu_hat = 1.0 / theta
    nu_se = err_of["theta"] / theta**2 if nu is None else math.nan
    alpha_inf = float(val["alpha_inf"])
    half = q * err_of["alpha_inf"]

    boot_ci = (math.nan, math.nan)
    if n_boot > 0:
        scale = err if err is not None else np.full_like(a_arr, math.sqrt(chi2 / max(dof, 1)))
        centre = model(d_arr, *params)
        boot_ci = _bootstrap(d_arr, centre, scale, spec, params, level, n_boot, seed)

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


def _finite_sorted(
    d: Sequence[float], alpha: Sequence[float], alpha_err: Sequence[float] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The points with finite d, alpha (and error), as float arrays sorted by d."""
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
    return d_arr, a_arr, err


def _check_points(
    d_arr: np.ndarray, err: np.ndarray | None, nu: float | None, corrections: int
) -> int:
    """The number of fitted parameters; ``ValueError`` when the points cannot support the fit."""
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
    return n_par


def _named_estimates(
    params: np.ndarray, cov: np.ndarray, n_par: int, nu: float | None, corrections: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fitted parameters and their standard errors by name (``alpha_inf``, ``a``, ``theta`` =
    1/nu when fitted, ``b`` with the correction); errors are infinite when the covariance is not
    finite."""
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None)) if np.all(np.isfinite(cov)) else None
    if se is None:
        se = np.full(n_par, np.inf)
    names = ["alpha_inf", "a"] + (["theta"] if nu is None else []) + (["b"] if corrections else [])
    val = dict(zip(names, params, strict=True))
    err_of = dict(zip(names, se, strict=True))
    return val, err_of


def _quantile(err: np.ndarray | None, level: float, dof: int) -> Any:
    """Two-sided quantile of the interval: t with ``dof`` (no errors given), else normal."""
    if err is None:
        q = stats.t.ppf(0.5 + level / 2, dof) if dof > 0 else math.inf
    else:
        q = stats.norm.ppf(0.5 + level / 2)
    return q


def _bootstrap(
    d_arr: np.ndarray,
    centre: np.ndarray,
    scale: np.ndarray,
    spec: tuple[np.ndarray | None, float | None, float, int],
    params: np.ndarray,
    level: float,
    n_boot: int,
    seed: int | np.random.Generator | None,
) -> tuple[float, float]:
    """Parametric-bootstrap percentile interval of alpha_inf: data redrawn around the fit
    (``centre``) with standard deviations ``scale`` and refitted ``n_boot`` times (``spec``:
    ``_fit``'s ``err, nu, nu0, corrections``)."""
    boot_ci = (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        fake = centre + rng.standard_normal(centre.shape) * scale
        try:
            p_b, _, _ = _fit(d_arr, fake, *spec, start=params)
        except ValueError:
            continue
        draws.append(p_b[0])
    if draws:
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
        boot_ci = (float(lo), float(hi))
    if len(draws) < n_boot:
        log.info("%d/%d bootstrap fits failed", n_boot - len(draws), n_boot)
    return boot_ci


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
