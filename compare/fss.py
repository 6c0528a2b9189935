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

The fit lives in :mod:`softleak.compare.fss_fit`, the collapse in
:mod:`softleak.compare.fss_collapse`; both are re-exported here. This module measures the
thresholds at several sizes and fits each condition.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from softleak.compare.fss_collapse import Collapse, Curves, collapse, quality
from softleak.compare.fss_collapse import _prepare as _prepare  # re-exported (tests use it)
from softleak.compare.fss_fit import FSSFit, fit_threshold_scaling
from softleak.compare.table import jsonable

log = logging.getLogger(__name__)

__all__ = [
    "Collapse",
    "Curves",
    "FSSFit",
    "collapse",
    "fit_threshold_scaling",
    "fit_thresholds_by_d",
    "quality",
    "thresholds_by_d",
]


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
