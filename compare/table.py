"""Reading a sweep directory: the results table written by ``simulate`` (docs/design.md contract).

A sweep directory holds ``results.parquet`` (one row per student run) and ``config.json`` (the
resolved sweep spec). This module reads both, checks the columns an analysis needs, and fills the
optional config columns with their "does not apply" values so that every analysis can group by them:

- ``rho``, ``tau``: NaN when absent (e.g. ``tau`` for the pseudo-inverse student);
- ``shuffle``: ``False`` when absent; ``ablation``: ``"none"``; ``solver``: ``""``.

Group-bys in ``compare`` use ``dropna=False`` so that NaN keys (``tau`` of a pseudo-inverse sweep)
stay in the table.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

RESULTS_FILE = "results.parquet"
CONFIG_FILE = "config.json"

#: Config columns every results table must carry (docs/design.md).
REQUIRED_COLUMNS: tuple[str, ...] = ("experiment", "d", "c", "alpha", "seed")

#: Config columns that identify one experimental condition besides alpha and the seed. Analyses
#: group by those present in the table.
CONDITION_COLUMNS: tuple[str, ...] = (
    "experiment",
    "d",
    "c",
    "rho",
    "tau",
    "p_teacher",
    "p_student",
    "teacher_epochs",
    "student_epochs",
    "teacher_lr",
    "student_lr",
    "solver",
    "ablation",
    "teacher",  # logistic-pinv's exact teachers (svm, minnorm); absent: a trained teacher
)

#: The subset of condition columns that configure the teacher (the teacher does not see rho, tau).
TEACHER_COLUMNS: tuple[str, ...] = (
    "experiment",
    "d",
    "c",
    "p_teacher",
    "teacher_epochs",
    "teacher_lr",
    "teacher",
)

#: The sweep experiments whose tables these analyses read: ``simulate.spec.EXPERIMENTS``
#: restated (compare reads simulate only through its store; a test keeps the two equal).
SWEEP_EXPERIMENTS: tuple[str, ...] = ("logistic-pinv", "multinomial", "mlp")

#: Experiments whose alpha is n/d (one output logit); all others use n/(d c).
SINGLE_LOGIT_EXPERIMENTS: frozenset[str] = frozenset({"logistic-pinv"})

# Defaults filled in for optional config columns (the "does not apply" value of each).
_FILL: dict[str, Any] = {"rho": np.nan, "tau": np.nan, "shuffle": False, "ablation": "none"}
_FILL_STR: dict[str, str] = {"solver": "", "precision": "fp32"}  # tables before precisions: fp32


class Sweep(NamedTuple):
    """A loaded sweep: the results table and the sweep's resolved config (``{}`` if absent)."""

    frame: pd.DataFrame
    config: dict[str, Any]


def load_sweep(path: str | Path, required: Iterable[str] = ()) -> Sweep:
    """Read a sweep directory's table and ``config.json`` (writing nothing).

    The table is ``results.parquet`` when it holds every finished unit; after an interrupted run
    (the manifest lists units it lacks) the finished parts themselves are read
    (``simulate.store.read_results``). A sweep whose grid is not finished is logged as a warning;
    ``frame.attrs["complete"]`` says whether it is (None when the folder does not record its
    grid), ``frame.attrs["units"]`` / ``["units_done"]`` count the grid's units.

    Args:
        path: the sweep directory (a path to ``results.parquet`` itself is accepted too).
        required: columns the caller needs beyond :data:`REQUIRED_COLUMNS`.

    Returns:
        ``Sweep(frame, config)``; unpacks as ``df, config = load_sweep(path)``.

    Raises:
        ValueError: one-line message when the folder or the table is missing, unreadable, empty,
            or lacks a required column.
    """
    from softleak.simulate.store import read_results

    path = Path(path)
    if path.is_file() and path.suffix == ".parquet":
        frame = _read_table(path)
        frame.attrs.update(complete=None, units=None, units_done=None)
        frame = normalize(frame, required=required, source=str(path))
        _refuse_other_runs(frame, path)
        return Sweep(frame, _read_config(path.parent))
    if not path.is_dir():
        if path.exists():
            raise ValueError(f"{str(path)!r} is a file, not a sweep directory")
        raise ValueError(f"sweep directory {str(path)!r} does not exist")
    if not (path / RESULTS_FILE).is_file() and not (path / "parts").is_dir():
        raise ValueError(f"no {RESULTS_FILE} in {str(path)!r}: is it a finished sweep directory?")
    try:
        found = read_results(path)
    except ValueError as err:
        raise ValueError(str(err).splitlines()[0]) from err
    frame = found.frame
    if frame.empty:
        raise ValueError(f"{str(path / RESULTS_FILE)!r} has no rows")
    for unit in found.damaged:
        log.warning("%s: the part of unit %s does not read; left out (rerun the sweep)", path, unit)
    if found.complete is False:
        log.warning(
            "%s holds %d of its %d units: the sweep is not finished (rerun its command to "
            "complete it); results are partial",
            path,
            len(found.done),
            len(found.units or ()),
        )
    frame = normalize(frame, required=required, source=str(path / RESULTS_FILE))
    _refuse_other_runs(frame, path)
    frame.attrs.update(
        complete=found.complete,
        units=None if found.units is None else len(found.units),
        units_done=len(found.done),
    )
    return Sweep(frame, found.config)


def _refuse_other_runs(frame: pd.DataFrame, path: Path) -> None:
    """ValueError (one line) for a table of another family (toy2d, modadd, gpt2, an audit):
    thresholds, phases and overlays of it would be meaningless (e.g. +-inf thresholds)."""
    others = sorted(set(frame["experiment"].astype(str)) - set(SWEEP_EXPERIMENTS))
    if others:
        raise ValueError(
            f"{str(path)!r} holds a {others[0]} run, not a sweep: these analyses read "
            f"{', '.join(SWEEP_EXPERIMENTS)} sweeps"
        )


def _read_table(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise ValueError(f"cannot read {str(path)!r}: {err}".splitlines()[0]) from err
    if frame.empty:
        raise ValueError(f"{str(path)!r} has no rows")
    return frame


def _read_config(folder: Path) -> dict[str, Any]:
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        log.info("no %s in %s; continuing with the table alone", CONFIG_FILE, folder)
        return {}
    try:
        return json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {str(config_path)!r}: {err}") from err


def normalize(
    frame: pd.DataFrame, required: Iterable[str] = (), source: str = "results table"
) -> pd.DataFrame:
    """Check the contract's required columns and fill optional config columns (a copy).

    Raises:
        ValueError: when a required column is missing.
    """
    require_columns(frame, tuple(REQUIRED_COLUMNS) + tuple(required), source)
    out = frame.copy()
    for name, value in _FILL.items():
        if name not in out.columns:
            out[name] = value
    for name, value in _FILL_STR.items():
        if name not in out.columns:
            out[name] = value
    out["precision"] = out["precision"].fillna("fp32").astype(str)  # parts from before precisions
    out["shuffle"] = out["shuffle"].fillna(False).astype(bool)
    out["ablation"] = out["ablation"].fillna("none").astype(str)
    out["experiment"] = out["experiment"].astype(str)
    for name in ("alpha", "rho", "tau"):
        out[name] = out[name].astype(float)
    return out


def require_columns(frame: pd.DataFrame, columns: Iterable[str], source: str = "table") -> None:
    """Raise ``ValueError`` naming every missing column, in one line."""
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise ValueError(f"{source} lacks column(s) {', '.join(missing)}")


def is_single_logit(experiment: str) -> bool:
    """Whether ``experiment`` uses one output logit (alpha = n/d) rather than c (alpha = n/(dc))."""
    return str(experiment) in SINGLE_LOGIT_EXPERIMENTS


def alpha_label(experiment: str | None) -> str:
    """Axis label for alpha with its unit for ``experiment``."""
    if experiment is not None and is_single_logit(experiment):
        return r"$\alpha = n/d$"
    return r"$\alpha = n/(d\,c)$"


def present(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The columns of ``columns`` that ``frame`` has, in order."""
    return [c for c in columns if c in frame.columns]


def select(frame: pd.DataFrame, where: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rows of ``frame`` matching every ``column == value`` in ``where``.

    Floats compare with ``math.isclose`` (relative 1e-9) so that ``rho=0.8`` matches a stored
    ``0.8000000000000002``; ``float('nan')`` matches NaN.

    Raises:
        ValueError: for an unknown column or when no row matches.
    """
    if not where:
        return frame
    mask = np.ones(len(frame), dtype=bool)
    for name, value in where.items():
        if name not in frame.columns:
            raise ValueError(f"cannot select on {name!r}: the table has no such column")
        col = frame[name]
        if isinstance(value, float) and math.isnan(value):
            mask &= col.isna().to_numpy()
        elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
            mask &= np.isclose(vals, float(value), rtol=1e-9, atol=1e-12)
        else:
            mask &= (col == value).to_numpy()
    out = frame[mask]
    if out.empty:
        cond = ", ".join(f"{k}={v!r}" for k, v in where.items())
        raise ValueError(f"no rows with {cond}")
    return out


def single_value(frame: pd.DataFrame, column: str) -> Any:
    """The one value of ``column`` in ``frame`` (None if the column is absent or all NaN).

    Raises:
        ValueError: when the column holds several distinct values.
    """
    if column not in frame.columns:
        return None
    values = frame[column].dropna().drop_duplicates()
    if values.empty:
        return None
    if len(values) > 1:
        shown = ", ".join(str(v) for v in sorted(values.tolist(), key=str)[:6])
        raise ValueError(
            f"the table spans several {column} values ({shown}); select one "
            f"(where={{'{column}': ...}}, or --where {column}=VALUE on the command line)"
        )
    value = values.iloc[0]
    return value.item() if hasattr(value, "item") else value


def seed_means(
    frame: pd.DataFrame,
    keys: Sequence[str],
    metrics: str | Sequence[str],
    *,
    wide: bool = False,
    seed: str = "seed",
) -> pd.DataFrame:
    """The per-seed table: each metric averaged over the rows sharing (keys, seed), so that each
    teacher replicate counts once (several students under one teacher, one teacher repeated on
    several student rows). The one home of this step for ``compare`` and the figure recipes.

    NaN values are left out of each mean (a (keys, seed) whose values are all NaN stays NaN); NaN
    keys form their own group (``tau`` of a pseudo-inverse sweep), rows with a NaN seed are
    dropped.

    Args:
        frame: a results table with a ``seed`` column.
        keys: the cell columns, e.g. ``("n", "rho")``.
        metrics: one column name or several.
        wide: (one metric) one column per seed instead of a ``seed`` index level.
        seed: the replicate column (``student_seed`` where one teacher serves every student).

    Returns:
        Index ``(*keys, seed)`` sorted, one column per metric; with ``wide``, index ``keys`` and
        one column per seed (NaN where a seed has no run in a cell).
    """
    keys = list(keys)
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if wide and len(names) != 1:
        raise ValueError("wide=True takes one metric")
    rows = frame.dropna(subset=[seed])
    per = rows.groupby([*keys, seed], dropna=False, sort=True)[names].mean()
    if wide:
        return per[names[0]].unstack(seed)
    return per


def seed_stats(per_seed: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Seed mean and standard error per cell of a :func:`seed_means` table (long form).

    Returns:
        Index ``keys``; for each metric ``<metric>`` (the mean over seeds) and ``<metric>_sem``
        (sample standard deviation / sqrt(seeds with a value): NaN with one), and ``n_seeds`` (the
        seeds with a row in the cell).
    """
    g = per_seed.groupby(level=list(range(len(list(keys)))), dropna=False)
    mean = g.mean()
    sem = (g.std(ddof=1) / np.sqrt(g.count().to_numpy())).add_suffix("_sem")
    out = pd.concat([mean, sem], axis=1)
    out["n_seeds"] = g.size().to_numpy()
    return out


def seed_matrix(
    frame: pd.DataFrame, metric: str, x: str = "alpha"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-seed means of ``metric`` on the grid of ``x`` (:func:`seed_means`, wide).

    Returns:
        ``(xs, seeds, M)`` with ``xs`` sorted, shape (A,); ``seeds`` shape (S,); ``M`` shape (A, S)
        with NaN where a seed has no run at that x. Grid points whose metric is NaN for every seed
        (and rows without an x) are dropped.
    """
    per = seed_means(frame.dropna(subset=[x]), [x], metric, wide=True).sort_index()
    per = per[per.notna().any(axis=1)]
    return (
        per.index.to_numpy(dtype=float),
        per.columns.to_numpy(),
        per.to_numpy(dtype=float),
    )


def jsonable(value: Any) -> Any:
    """Convert numpy scalars and non-finite floats for ``json.dumps`` (NaN/inf -> None)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


#: The accuracies :func:`cell_means` summarizes.
CELL_METRICS = ("teacher_train_acc", "student_train_acc", "student_test_acc", "student_val_acc")


def cell_means(df: pd.DataFrame, keys=("n", "rho")) -> pd.DataFrame:
    """Seed means and SEMs of the accuracies per cell of ``keys`` (unshuffled, unablated runs;
    :func:`seed_means` and :func:`seed_stats`): columns ``<metric>``, ``<metric>_sem``,
    ``n_seeds`` and ``alpha = n / (d c)``."""
    df = df[(~df["shuffle"]) & (df["ablation"] == "none")]
    out = seed_stats(seed_means(df, keys, CELL_METRICS), keys).reset_index()
    first = df.iloc[0]
    out["alpha"] = out["n"] / (int(first["d"]) * int(first["c"]))
    return out
