"""The sympy closed forms agree with the numeric functions; LaTeX renders for every name."""

import math

import numpy as np
import pytest
import sympy as sp

from softleak.theory import class_scaling, cover, identifiability, symbolic
from softleak.theory.symbolic import SYMBOLS, substitute

# sympy evaluates to 30 digits; the numeric side is float64 good to a few ulps.
RTOL = 1e-12


@pytest.mark.parametrize("n, d", [(1, 1), (3, 5), (10, 3), (40, 7), (100, 50)])
def test_cover_count_expr_equals_big_int(n, d):
    value = substitute(symbolic.cover_count_expr(), n=n, d=d)
    assert value == cover.cover_count_exact(n, d)
    assert value.is_Integer


@pytest.mark.parametrize("n, d", [(10, 3), (60, 20), (200, 100), (300, 20)])
def test_p_separable_exprs_equal_numeric(n, d):
    exact = substitute(symbolic.p_separable_expr(), n=n, d=d)
    assert exact == sp.Rational(cover.cover_count_exact(n, d), 2**n)
    np.testing.assert_allclose(float(exact), cover.p_separable(n, d), rtol=RTOL)
    beta = substitute(symbolic.p_separable_beta_expr(), n=n, d=d).evalf(30)
    np.testing.assert_allclose(float(beta), cover.p_separable(n, d), rtol=RTOL)


def test_p_separable_beta_expr_continuous_n():
    n, d = 10.5, 3
    value = substitute(symbolic.p_separable_beta_expr(), n=sp.Rational(21, 2), d=d).evalf(30)
    np.testing.assert_allclose(float(value), cover.p_separable(n, d), rtol=RTOL)


def test_normal_approx_expr_equals_numeric():
    for n, d in [(2000, 1000), (1900, 1000), (50, 30)]:
        value = substitute(symbolic.normal_approx_expr(), n=n, d=d).evalf(30)
        np.testing.assert_allclose(float(value), cover.p_separable_normal(n, d), rtol=RTOL)


def test_alpha_id_expr_equals_numeric():
    for rho in [0.2, 0.55, 0.8]:
        single = substitute(symbolic.alpha_id_expr(single_logit=True), rho=sp.Float(rho))
        np.testing.assert_allclose(float(single), identifiability.alpha_id(rho), rtol=RTOL)
        for c in [2, 10]:
            multi = substitute(symbolic.alpha_id_expr(), rho=sp.Float(rho), c=c)
            want = identifiability.alpha_id(rho, c, single_logit=False)
            np.testing.assert_allclose(float(multi), want, rtol=RTOL)


def test_alpha_label_T_expr():
    assert symbolic.alpha_label_T_expr() == 2
    value = substitute(symbolic.alpha_label_T_expr(large_c=True), c=10)
    np.testing.assert_allclose(float(value), 1 / (2 * math.log(10)), rtol=RTOL)


@pytest.mark.parametrize("name", list(class_scaling.LAWS))
def test_class_scaling_expr_equals_law(name):
    c = np.array([2.0, 7.0, 50.0])
    for cv in c:
        value = substitute(
            symbolic.class_scaling_expr(name), A=sp.Float(0.9), B=sp.Float(0.1), c=cv
        )
        want = 0.9 * class_scaling.LAWS[name](np.array(cv)) + 0.1
        np.testing.assert_allclose(float(value), want, rtol=RTOL)
    with pytest.raises(ValueError):
        symbolic.class_scaling_expr("c^2")


def test_softmax_expr_equals_numeric():
    z = np.array([1.3, -0.2, 0.5])
    tau = 2.0
    want = np.exp(z / tau) / np.exp(z / tau).sum()
    zs = SYMBOLS["z"]
    for i in range(3):
        expr = substitute(symbolic.softmax_expr(), i=i + 1, c=3, tau=sp.Float(tau))
        value = expr.subs({zs[k + 1]: sp.Float(z[k]) for k in range(3)}).evalf(30)
        np.testing.assert_allclose(float(value), want[i], rtol=RTOL)


@pytest.mark.parametrize("name", symbolic.LATEX_NAMES)
def test_latex_names(name):
    text = symbolic.latex(name)
    assert isinstance(text, str) and "=" in text
    assert text.count("{") == text.count("}")  # balanced braces


def test_latex_content_and_errors():
    assert r"\frac{1}{\rho}" in symbolic.latex("alpha_id")
    assert r"\binom{n - 1}{k}" in symbolic.latex("cover_count")
    assert r"\ln" in symbolic.latex("alpha_label_T")
    with pytest.raises(ValueError, match="unknown name"):
        symbolic.latex("alpha_nonsense")
    with pytest.raises(ValueError, match="unknown symbol"):
        substitute(symbolic.cover_count_expr(), m=3)
