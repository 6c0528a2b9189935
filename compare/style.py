"""Shared plot styling: colours, line styles, axes creation and atomic figure saving.

Colours follow the paper's legend (green / pink / blue / red thresholds; green / blue / grey /
orange / red phases) but use colour-blind-safe hues (Okabe-Ito and Paul Tol) whose lightness
differs from one phase to the next, so a greyscale print still separates neighbouring phases.
Theory is always drawn in black with dashed or dotted lines, data in colour with markers.

Nothing here imports ``matplotlib.pyplot`` at module import; :func:`axes_or_new` does so only when
the caller passes no axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Threshold colours (the paper's green / pink / blue / red), Okabe-Ito / Tol hues.
THRESHOLD_COLORS: dict[str, str] = {
    "alpha_label_T": "#228833",  # green (Tol bright)
    "alpha_label_S": "#CC79A7",  # reddish purple / pink (Okabe-Ito)
    "alpha_id_S": "#0072B2",  # blue (Okabe-Ito)
    "alpha_label_S_shuffle": "#D55E00",  # vermillion (Okabe-Ito)
}

#: Threshold labels for legends.
THRESHOLD_LABELS: dict[str, str] = {
    "alpha_label_T": r"$\alpha^T_{\rm label}$",
    "alpha_label_S": r"$\alpha^S_{\rm label}$",
    "alpha_id_S": r"$\alpha^S_{\rm id}$",
    "alpha_label_S_shuffle": r"$\alpha^{S{\rm -shuffle}}_{\rm label}$",
}

#: Metric colours for accuracy curves.
METRIC_COLORS: dict[str, str] = {
    "teacher_train_acc": "#228833",  # green, like alpha_label_T
    "student_train_acc": "#CC79A7",  # pink, like alpha_label_S
    "student_test_acc": "#0072B2",  # blue, like alpha_id_S
    "certified_leaked_fraction": "#E69F00",  # orange
}

#: Metric labels for legends.
METRIC_LABELS: dict[str, str] = {
    "teacher_train_acc": r"teacher train ${\rm acc}^T_*$",
    "student_train_acc": r"student train ${\rm acc}^S_{\rm train}$",
    "student_test_acc": r"student test ${\rm acc}^S_{\rm test}$",
    "certified_leaked_fraction": "certified leaked fraction",
}

#: Phase colours, ordered from dark to light in greyscale (relative luminance in the comment).
PHASE_COLORS: dict[str, str] = {
    "neither": "#882255",  # wine (Tol muted), Y~0.07: teacher fails, student does not match
    "weak leakage": "#0072B2",  # blue, Y~0.15
    "full recovery": "#009E73",  # bluish green, Y~0.26
    "teacher fails, student matches": "#E69F00",  # orange, Y~0.42
    "weak leakage without memorization": "#9CCFEA",  # light blue, Y~0.58
    "no leakage": "#E5E5E5",  # light grey, Y~0.78
}

#: Optional hatches (greyscale aid): the two phases where the teacher failed to memorize.
PHASE_HATCHES: dict[str, str] = {
    "teacher fails, student matches": "//",
    "neither": "xx",
}

#: Style of theory lines: black, drawn over data.
THEORY_STYLE: dict[str, Any] = {"color": "black", "linestyle": "--", "linewidth": 1.3, "zorder": 5}

#: Marker style for data points with error bars.
DATA_STYLE: dict[str, Any] = {"marker": "o", "markersize": 3.5, "capsize": 2, "linewidth": 1.2}

SAVE_SUFFIXES: tuple[str, ...] = (".png", ".pdf", ".svg")


def class_colors(cs: Sequence[float], cmap: str = "cividis_r") -> dict[float, tuple]:
    """One colour per number of classes c, darker for larger c (perceptually uniform map)."""
    from matplotlib import colormaps

    values = sorted(set(float(c) for c in cs))
    colormap = colormaps[cmap]
    if len(values) == 1:
        return {values[0]: colormap(0.75)}
    positions = np.linspace(0.2, 1.0, len(values))
    return {c: colormap(p) for c, p in zip(values, positions, strict=True)}


def sequence_colors(n: int, cmap: str = "viridis") -> list[tuple]:
    """``n`` distinct colours from a perceptually uniform map (for rho or d series)."""
    from matplotlib import colormaps

    colormap = colormaps[cmap]
    return [colormap(p) for p in np.linspace(0.05, 0.85, max(n, 1))][:n]


def axes_or_new(ax: Any = None, figsize: tuple[float, float] = (5.0, 3.6)) -> Any:
    """``ax`` itself, or a new axes on a new pyplot figure when ``ax`` is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def new_figure(ncols: int = 1, nrows: int = 1, panel: tuple[float, float] = (4.6, 3.5)):
    """A pyplot-free ``Figure`` with a grid of axes (for saving from scripts and the CLI).

    Returns:
        ``(fig, axes)`` with ``axes`` a flat list of length ``nrows * ncols``.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [a for row in axes for a in row]


def check_figure_path(path: str | Path) -> Path:
    """Validate an output figure path's suffix; raises ``ValueError`` with one line."""
    path = Path(path)
    if path.suffix.lower() not in SAVE_SUFFIXES:
        raise ValueError(
            f"unsupported figure type {path.suffix or '(none)'!r} for {str(path)!r}: "
            f"use one of {', '.join(SAVE_SUFFIXES)}"
        )
    return path


def save_figure(fig: Any, path: str | Path, dpi: int = 150) -> Path:
    """Save ``fig`` atomically (``simulate.store.atomic_write_bytes``: a temporary file in the
    target folder, then ``os.replace``; the mode follows the user's umask).

    The format follows the suffix (``.png``, ``.pdf``, ``.svg``). The parent folder is created.
    """
    import io

    from softleak.simulate.store import atomic_write_bytes

    path = check_figure_path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lower().lstrip("."), dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, with the user's umask (as ``save_figure``)."""
    from softleak.simulate.store import atomic_write_bytes

    return atomic_write_bytes(Path(path), text.encode())


def log_ticks(axis: Any) -> None:
    """Plain numbers at 1, 2, 5 x 10^k on a log axis, no minor labels (no crowding)."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())
