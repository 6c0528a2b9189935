"""Argument types for the command line: validated once, at the boundary.

Each type raises ``argparse.ArgumentTypeError`` with a short message; the parser turns that into one
line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import decimal
import math

import numpy as np


def _number(text: str, kind: type) -> float | int:
    try:
        if kind is int:
            # exact decimal arithmetic: 99999999999999999999999 and 1e23 are themselves (a float
            # would make them 99999999999999991611392); 1e3 and 2.0 are integers too
            exact = decimal.Decimal(text.strip())
            if not exact.is_finite():
                raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
            if exact.adjusted() > 4300:  # Python's own limit on an integer's digits
                raise argparse.ArgumentTypeError(f"{text!r} is too large")
            if exact != exact.to_integral_value():
                raise ValueError
            return int(exact)
        value = float(text)
    except (ValueError, decimal.InvalidOperation):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(value)


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(value)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return float(value)


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (e.g. a weight decay)."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return float(value)


def fraction(text: str) -> float:
    """A number strictly between 0 and 1 (a student's training fraction rho)."""
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a fraction strictly between 0 and 1, got {text!r}"
        )
    return float(value)


def widths(text: str) -> list[int]:
    """Hidden-layer widths: comma-separated positive integers, e.g. ``500`` or ``500,200``."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected widths like 500 or 500,200, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"widths must be positive integers, got {text!r}")
    return values


def grid_values(text: str) -> list[float]:
    """Parse a grid: ``a,b,c`` (a list), ``start:stop:num`` (inclusive linspace) or
    ``log:start:stop:num`` (``num`` values from 10**start to 10**stop)."""
    text = text.strip()
    try:
        if text.startswith("log:"):
            parts = text[4:].split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, num = float(parts[0]), float(parts[1]), _count(parts[2])
            if max(abs(start), abs(stop)) > 300:  # 10**308 is a float's largest power of ten
                raise argparse.ArgumentTypeError(
                    f"grid {text!r}: log exponents must lie within -300 ... 300"
                )
            values = np.logspace(start, stop, num)
        elif ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, num = float(parts[0]), float(parts[1]), _count(parts[2])
            values = np.linspace(start, stop, num)
        else:
            values = np.array([float(v) for v in text.split(",") if v.strip() != ""])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad grid {text!r}: use a list 'a,b', a range 'start:stop:num' "
            "or a log range 'log:start:stop:num'"
        ) from None
    if values.size == 0:
        raise argparse.ArgumentTypeError(f"empty grid {text!r}")
    if not np.all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"grid {text!r} has non-finite values")
    # Round away float noise from linspace so that values print and compare cleanly.
    return [float(f"{v:.12g}") for v in values]


def _count(text: str) -> int:
    value = float(text)
    if not value.is_integer() or value < 1:
        raise ValueError
    return int(value)


def grid_of(check, what: str):
    """A grid type whose every value must pass ``check`` (e.g. rho in (0, 1))."""

    def parse(text: str) -> list[float]:
        values = grid_values(text)
        bad = [v for v in values if not check(v)]
        if bad:
            raise argparse.ArgumentTypeError(f"{what}, got {bad[0]:g} in {text!r}")
        return values

    return parse


positive_grid = grid_of(lambda v: v > 0, "every value must be > 0")
fraction_grid = grid_of(lambda v: 0 < v < 1, "every value must lie strictly between 0 and 1")
fraction0_grid = grid_of(lambda v: 0 <= v < 1, "every value must lie in [0, 1)")
int_grid = grid_of(
    lambda v: float(v).is_integer() and v >= 1, "every value must be an integer >= 1"
)
