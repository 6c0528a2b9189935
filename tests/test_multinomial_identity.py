"""Multinomial soft-label students from zero (issue 25, item 5): gradient methods that keep the
row-space invariance converge to W_S = (I - 11^T/c) W P_S / tau (the student's own logits are not
divided by tau), so their held-out argmax is the pseudo-inverse student's at every tau; Adam does
not keep the invariance."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from softleak.simulate import protocol
from softleak.simulate.data import student_split
from softleak.simulate.spec import SweepSpec

D, C, N, RHO = 30, 3, 30, 0.5  # rho n = 15 < d: the student's inputs do not span R^d
SPEC = SweepSpec(
    "multinomial",
    d=(D,),
    c=(C,),
    n=(N,),
    rho=(RHO,),
    tau=(3.0, 10.0),
    teacher_epochs=2000,
    teacher_lr=1e-2,
    student_epochs=500,
    solver="lbfgs",
    student_init="zero",
    dtype="float64",
    n_val=10,
)


@pytest.fixture(scope="module")
def teacher():
    (t,) = protocol.train_teachers(SPEC, [(D, C, N, 0)], threads=1)
    return t


def _projection(teacher):
    train, test = student_split(teacher.data.y, RHO, C)
    XS = teacher.data.X[train]
    return XS.T @ np.linalg.solve(XS @ XS.T, XS), test  # (d, d) P_S


def test_lbfgs_from_zero_converges_to_the_projected_teacher(teacher):
    P, test = _projection(teacher)
    W = teacher.model.params[0][0].numpy()  # (c, d)
    centre = np.eye(C) - 1.0 / C
    runs = protocol.student_runs(SPEC, teacher.key)
    rows, _, model = protocol.gradient_students(SPEC, teacher, runs, threads=1)
    X = teacher.data.X
    for r, run in enumerate(runs):
        W_S = model.params[0][r].numpy()
        want = centre @ W @ P / run.tau
        # converged L-BFGS in float64: round-off and the solver's tolerance (measured ~2e-7)
        assert np.linalg.norm(W_S - want) <= 1e-5 * np.linalg.norm(want), run
        held = (X[test] @ W_S.T).argmax(1)
        assert np.array_equal(held, (X[test] @ (W @ P).T).argmax(1))  # tau-free held-out argmax
        if not run.shuffle:
            acc = np.mean(held == teacher.data.y[test])
            assert rows[r]["student_test_acc"] == pytest.approx(acc)


def test_adam_from_zero_leaves_the_row_space(teacher):
    """Plain gradient steps lie in span(X_S rows); Adam's per-coordinate scaling does not, so its
    students carry a null-space part the soft labels never determine. (Adam breaks the class-sum
    invariance too, which no argmax sees.)"""
    P, _ = _projection(teacher)
    spec = dataclasses.replace(SPEC, solver="adam", student_lr=1e-2, student_epochs=300)
    runs = protocol.student_runs(spec, teacher.key)
    _, _, model = protocol.gradient_students(spec, teacher, runs, threads=1)
    for r in range(len(runs)):
        W_S = model.params[0][r].numpy()
        assert np.linalg.norm(W_S - W_S @ P) > 0.05 * np.linalg.norm(W_S)
