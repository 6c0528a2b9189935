"""The closed forms of ``theory`` as sympy expressions, for checking and for printing as LaTeX.

Each ``*_expr`` function returns a sympy expression (the right-hand side) in the symbols of
``SYMBOLS``; ``substitute(expr, n=10, d=3)`` plugs in numbers by name, and ``latex(name)`` gives a
full equation for a named threshold. The numeric functions live in ``theory.cover``,
``theory.identifiability`` and ``theory.class_scaling``; the tests check that both agree.

Sources: Cover (1965), Theorem 1 (count and separability probability); Phuong & Lampert (2019) and the
paper's section 5.1 (identifiability alpha_id = 1/rho, or 1/(rho c) in n/(d c)); the paper's Fig. 5B
(class-scaling laws).
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "LATEX_NAMES",
    "SYMBOLS",
    "alpha_id_expr",
    "alpha_label_T_expr",
    "class_scaling_expr",
    "cover_count_expr",
    "latex",
    "normal_approx_expr",
    "p_separable_beta_expr",
    "p_separable_expr",
    "softmax_expr",
    "substitute",
]

_n, _d, _c = sp.symbols("n d c", positive=True)
_k = sp.Symbol("k", integer=True, nonnegative=True)
_i, _j = sp.symbols("i j", integer=True, positive=True)
_rho, _tau = sp.symbols("rho tau", positive=True)
_A, _B = sp.symbols("A B", real=True)
_z = sp.IndexedBase("z")

SYMBOLS: dict[str, sp.Basic] = {
    "n": _n,  # number of samples (teacher's training set)
    "d": _d,  # input dimension
    "c": _c,  # number of classes
    "k": _k,  # summation index
    "i": _i,  # class index of a softmax output
    "j": _j,  # summation index over classes
    "rho": _rho,  # student's training fraction
    "tau": _tau,  # softmax temperature
    "A": _A,  # class-scaling amplitude
    "B": _B,  # class-scaling offset
    "z": _z,  # logits z_1..z_c
}
"""The symbols used by the expressions, by name."""


def cover_count_expr() -> sp.Expr:
    """C(n, d) = 2 sum_{k=0}^{d-1} binom(n - 1, k) (Cover 1965, Theorem 1); n, d integers >= 1."""
    return 2 * sp.Sum(sp.binomial(_n - 1, _k), (_k, 0, _d - 1))


def p_separable_expr() -> sp.Expr:
    """P(n, d) = C(n, d) / 2^n = 2^(1-n) sum_{k=0}^{d-1} binom(n - 1, k) (Cover 1965)."""
    return 2 ** (1 - _n) * sp.Sum(sp.binomial(_n - 1, _k), (_k, 0, _d - 1))


def p_separable_beta_expr() -> sp.Expr:
    """P(n, d) = I_{1/2}(n - d, d), the regularized incomplete beta (continuous in n and d)."""
    return sp.betainc_regularized(_n - _d, _d, 0, sp.Rational(1, 2))


def normal_approx_expr() -> sp.Expr:
    """P(n, d) ~ Phi((2d - n)/sqrt(n - 1)) = (1 + erf((2d - n)/sqrt(2(n - 1))))/2 (de Moivre-Laplace
    with continuity correction)."""
    zscore = (2 * _d - _n) / sp.sqrt(_n - 1)
    return (1 + sp.erf(zscore / sp.sqrt(2))) / 2


def alpha_id_expr(single_logit: bool = False) -> sp.Expr:
    """Identifiability threshold of a linear teacher (Phuong & Lampert 2019; paper section 5.1).

    1/(rho c) in alpha = n/(d c) for c logits through a softmax (default); 1/rho in alpha = n/d for a
    single logit (``single_logit=True``).
    """
    return 1 / _rho if single_logit else 1 / (_rho * _c)


def alpha_label_T_expr(large_c: bool = False) -> sp.Expr:
    """Teacher memorization capacity: 2 in n/d (c = 2, d -> infinity; Cover 1965), or the large-c
    heuristic 1/(2 ln c) in n/(d c) (``large_c=True``)."""
    return 1 / (2 * sp.log(_c)) if large_c else sp.Integer(2)


_LAWS = {"1/c": 1 / _c, "1/ln c": 1 / sp.log(_c), "1/sqrt c": 1 / sp.sqrt(_c)}


def class_scaling_expr(name: str) -> sp.Expr:
    """A f(c) + B for the class-scaling law ``name`` in {"1/c", "1/ln c", "1/sqrt c"} (Fig. 5B)."""
    try:
        return _A * _LAWS[name] + _B
    except KeyError:
        raise ValueError(f"unknown law {name!r}; choose from {list(_LAWS)}") from None


def softmax_expr() -> sp.Expr:
    """Soft label p_i = exp(z_i / tau) / sum_{j=1}^{c} exp(z_j / tau) (paper equation 1)."""
    return sp.exp(_z[_i] / _tau) / sp.Sum(sp.exp(_z[_j] / _tau), (_j, 1, _c))


def substitute(expr: sp.Expr, **values) -> sp.Expr:
    """Substitute numbers for symbols by name (keys of ``SYMBOLS``) and evaluate sums (``doit``).

    Example: ``substitute(cover_count_expr(), n=10, d=3)`` is the integer 92.
    """
    unknown = set(values) - set(SYMBOLS)
    if unknown:
        raise ValueError(f"unknown symbol(s) {sorted(unknown)}; known: {sorted(SYMBOLS)}")
    return expr.subs({SYMBOLS[name]: value for name, value in values.items()}).doit()


def _tex(expr: sp.Expr) -> str:
    return sp.latex(expr, ln_notation=True)


def _equations() -> dict[str, str]:
    single = _tex(alpha_id_expr(single_logit=True))
    multi = _tex(alpha_id_expr())
    return {
        "cover_count": rf"C(n, d) = {_tex(cover_count_expr())}",
        "p_separable": (
            rf"P(n, d) = \frac{{C(n, d)}}{{2^n}} = {_tex(p_separable_expr())}"
            r" = I_{1/2}(n - d,\, d)"
        ),
        "normal_approx": (
            r"P(n, d) \approx \Phi\left(\frac{2 d - n}{\sqrt{n - 1}}\right)"
            rf" = {_tex(normal_approx_expr())}"
        ),
        "alpha_id": (
            rf"\alpha^{{S}}_{{\mathrm{{id}}}}(\rho) = {single}"
            r"\ \ (\alpha = n/d,\ \text{one logit});\quad "
            rf"\alpha^{{S}}_{{\mathrm{{id}}}}(\rho) = {multi}\ \ (\alpha = n/(d c))"
        ),
        "alpha_label_T": (
            rf"\alpha^{{T}}_{{\mathrm{{label}}}} = {_tex(alpha_label_T_expr())}"
            r"\ \ (\alpha = n/d,\ c = 2,\ d \to \infty);\quad "
            rf"\alpha^{{T}}_{{\mathrm{{label}}}} \sim {_tex(alpha_label_T_expr(large_c=True))}"
            r"\ \ (\alpha = n/(d c),\ c \gg 1,\ \text{heuristic})"
        ),
        "softmax": rf"p_i = {_tex(softmax_expr())}",
    }


LATEX_NAMES = (
    "alpha_id",
    "alpha_label_T",
    "p_separable",
    "cover_count",
    "normal_approx",
    "softmax",
)
"""Names accepted by ``latex``."""


def latex(name: str) -> str:
    """LaTeX of the named closed form as an equation (left-hand side included).

    Args:
        name: one of ``LATEX_NAMES``: "alpha_id", "alpha_label_T", "p_separable", "cover_count",
            "normal_approx", "softmax".
    """
    if name not in LATEX_NAMES:
        raise ValueError(f"unknown name {name!r}; choose from {list(LATEX_NAMES)}")
    return _equations()[name]
