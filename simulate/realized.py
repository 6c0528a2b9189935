"""Grid values realized exactly or refused: n from alpha, the student split's rows from rho.

A sweep asks for real numbers -- sample complexities alpha, student fractions rho -- and runs on
integers: the teacher set size n = alpha d c (alpha d for the single logit) rounded to a multiple
of c, and per class ``int(rho n/c)`` training rows for a class-stratified student (``round(rho n)``
rows for the random splits of modular addition and GPT-2). Rounding to the nearest value the
integers can represent is what a grid on a finite d means (the table records the realized n and
alpha); anything else would relabel a row silently, so it is refused in one line (ValueError;
exit code 2 on the command line) that says what was asked, what would be realized and the
nearest values that are realized exactly:

- an alpha whose n rounds below one sample per class (it used to be clamped up to c);
- two alphas that realize one n, or two rhos that realize one training-row count (two rows of
  the table labelled differently but computed on the same data);
- a rho whose student trains on no row, or holds none out.

The checks run when a spec is built, before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def _g(value: float) -> str:
    return f"{value:.6g}"


def _near(values: Iterable[float], step: float, low: int, high: int) -> str:
    """The exactly realized values k * step (low <= k <= high) on either side of ``values``."""
    ks = {min(max(j, low), high) for v in values for j in (int(v / step), int(v / step) + 1)}
    return ", ".join(_g(j * step) for j in sorted(ks))


def realized_n(alpha: float, d: int, c: int, single_logit: bool) -> int:
    """n = alpha d c (single logit: alpha d) rounded to the nearest multiple of c (0 possible)."""
    raw = alpha * d if single_logit else alpha * d * c
    return int(round(raw / c)) * c


def check_sizes(alphas: Iterable[float], d: int, c: int, single_logit: bool) -> dict[int, float]:
    """{n: alpha} of an alpha grid at one (d, c); ValueError (one line) when an alpha would be
    clamped (n below one per class) or two alphas realize one n."""
    step = c / d if single_logit else 1 / d  # alpha of one more multiple of c
    formula = "alpha d" if single_logit else "alpha d c"
    where = f"d = {d}" if single_logit else f"d = {d}, c = {c}"
    out: dict[int, float] = {}
    for alpha in alphas:
        n = realized_n(alpha, d, c, single_logit)
        if n < c:
            raw = alpha * d if single_logit else alpha * d * c
            raise ValueError(
                f"alpha = {_g(alpha)} at {where} asks n = {formula} = {_g(raw)}, below one "
                f"sample per class; the smallest alpha realized here is {_g(step)} (n = {c})"
            )
        if n in out:
            raise ValueError(
                f"alpha = {_g(out[n])} and {_g(alpha)} both give n = {n} at {where} (n = "
                f"{formula} rounded to a multiple of {c}); alphas realized exactly near them: "
                f"{_near((out[n], alpha), step, 1, 10**12)}"
            )
        out[n] = alpha
    return out


def check_fractions(
    rhos: Iterable[float],
    total: int,
    rows: Callable[[float], int],
    *,
    what: str,
    rule: str,
) -> None:
    """ValueError (one line) when a student fraction trains on no row or holds none out, or two
    fractions realize one row count.

    total: the rows a fraction is taken of (per class for a stratified split, else n);
    rows: rho -> realized training rows out of ``total``; what: where (``"n = 500, c = 100 (5 per
    class)"``); rule: how rows are realized (``"int(rho n/c) per class"``).
    """
    seen: dict[int, float] = {}
    for rho in rhos:
        k = rows(rho)
        if k < 1 or k >= total:
            side = "trains on no row" if k < 1 else "holds no row out"
            if total < 2:
                raise ValueError(
                    f"rho = {_g(rho)} at {what} {side}: one row cannot be split; use a larger n"
                )
            raise ValueError(
                f"rho = {_g(rho)} at {what} {side} ({rule} = {k} of {total}); the rhos realized "
                f"here run from {_g(1 / total)} to {_g((total - 1) / total)} in steps of "
                f"{_g(1 / total)}"
            )
        if k in seen:
            raise ValueError(
                f"rho = {_g(seen[k])} and {_g(rho)} both train on {k} of {total} rows at {what} "
                f"({rule}); rhos realized exactly near them: "
                f"{_near((seen[k], rho), 1 / total, 1, total - 1)}"
            )
        seen[k] = rho
