"""Phase classification (paper Figs. 4B, 7A; cut-offs from docs/reference.md) and phase diagrams."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from softleak.compare.phases import (
    FULL,
    MATCH,
    NEITHER,
    NO_LEAK,
    PHASES,
    UNKNOWN,
    WEAK,
    WEAK_NO_MEM,
    classify,
    default_weak_cutoff,
    phase_diagram,
)

# (student train, student test, teacher train, match-teacher test acc) -> phase, for c = 2
CELLS = [
    ((1.00, 1.00, 1.00, 1.00), FULL),
    ((0.99, 0.99, 1.00, 1.00), FULL),  # cut-offs are inclusive
    ((1.00, 0.80, 1.00, 0.80), WEAK),
    ((1.00, 0.55, 1.00, 0.55), WEAK),  # 0.55 = REFERENCE's weak cut-off for c = 2
    ((1.00, 0.54, 1.00, 0.54), NO_LEAK),
    ((1.00, 0.50, 0.95, 0.50), NO_LEAK),  # student fits: teacher accuracy not consulted
    ((0.90, 0.70, 1.00, 0.70), WEAK_NO_MEM),  # MLP light blue: teacher fits, student does not
    ((0.90, 0.50, 1.00, 0.50), NO_LEAK),
    ((0.93, 0.93, 0.93, 1.00), MATCH),  # teacher fails, student matches it
    ((0.93, 0.60, 0.93, 0.70), NEITHER),
]


@pytest.mark.parametrize(("metrics", "phase"), CELLS)
def test_hand_made_cells(metrics, phase):
    tr, te, tt, match = metrics
    assert classify(tr, te, tt, match=match, c=2) == phase


def test_vectorized_and_unknown_cells():
    tr = np.array([[1.0, 0.9], [np.nan, 0.9]])
    te = np.array([[1.0, 0.5], [1.0, 0.5]])
    tt = np.array([[1.0, 0.9], [1.0, 0.9]])
    match = np.array([[1.0, np.nan], [1.0, 0.2]])
    out = classify(tr, te, tt, match=match)
    assert out.shape == (2, 2)
    assert out[0, 0] == FULL
    assert out[0, 1] == UNKNOWN  # teacher failed, no match metric to decide
    assert out[1, 0] == UNKNOWN  # no student train accuracy
    assert out[1, 1] == NEITHER


def test_weak_cutoff_is_relative_to_chance():
    assert default_weak_cutoff(2) == pytest.approx(0.55)  # docs/reference.md
    assert default_weak_cutoff(100) == pytest.approx(0.06)
    # 0.2 test accuracy is weak leakage for c = 10 (chance 0.1) but not for c = 2
    assert classify(1.0, 0.2, 1.0, c=10) == WEAK
    assert classify(1.0, 0.2, 1.0, c=2) == NO_LEAK
    assert classify(1.0, 0.2, 1.0, c=2, weak_cutoff=0.15) == WEAK


def test_mse_rule_replaces_match_accuracy():
    # teacher fails; match accuracy says "no match" but MSE to the teacher logits is tiny
    assert classify(0.9, 0.9, 0.9, match=0.5, mse=0.01, mse_cutoff=0.1) == MATCH
    assert classify(0.9, 0.9, 0.9, match=1.0, mse=0.5, mse_cutoff=0.1) == NEITHER
    assert classify(0.9, 0.9, 0.9, match=1.0, mse=0.5) == MATCH  # default: match accuracy


def test_teacher_unknown_follows_reference_rule():
    # no teacher accuracy: every student-train < 0.99 cell is split by match accuracy
    assert classify(0.9, 0.7, None, match=1.0) == MATCH
    assert classify(0.9, 0.7, None, match=0.5) == NEITHER


def pinv_like_table(d: int = 100, seeds: int = 2, taus=(float("nan"),)) -> pd.DataFrame:
    """Synthetic logistic-pinv sweep: recovery once rho alpha >= 1, teacher fails past alpha 2."""
    rows = []
    for seed in range(seeds):
        for a in np.linspace(0.5, 3.0, 11):
            for rho in np.linspace(0.1, 0.9, 9):
                for tau in taus:
                    teacher = 1.0 if a <= 2.0 else 0.9
                    ra = rho * a
                    test = 1.0 if ra >= 1 else 0.5 + 0.5 * ra
                    if teacher < 1:
                        test = 0.9 if ra >= 1 else 0.6
                    rows.append(
                        dict(
                            experiment="logistic-pinv",
                            d=d,
                            c=2,
                            alpha=a,
                            rho=rho,
                            tau=tau,
                            seed=seed,
                            shuffle=False,
                            teacher_train_acc=teacher,
                            student_train_acc=teacher,
                            student_test_acc=test,
                            match_teacher_test_acc=1.0 if ra >= 1 else 0.7,
                        )
                    )
    return pd.DataFrame(rows)


def test_phase_diagram_grid_and_regimes():
    diagram = phase_diagram(pinv_like_table())
    assert diagram.labels.shape == (9, 11)
    assert diagram.x_name == "alpha" and diagram.y_name == "rho"
    assert diagram.label_at(1.5, 0.9) == FULL  # rho alpha = 1.35
    assert diagram.label_at(0.5, 0.1) == NO_LEAK  # test 0.525
    assert diagram.label_at(1.5, 0.5) == WEAK  # test 0.875
    assert diagram.label_at(3.0, 0.9) == MATCH
    assert diagram.label_at(2.5, 0.1) == NEITHER
    assert set(diagram.counts()) <= set(PHASES)
    assert int(diagram.n_seeds.min()) == 2
    # theory: alpha_id = 1/rho line in (alpha, rho) coordinates, alpha_label_T = 2 vertical
    lines = {t.name: t for t in diagram.theory_lines}
    assert set(lines) == {"alpha_id", "alpha_label_T"}
    x, y = np.array(lines["alpha_id"].x), np.array(lines["alpha_id"].y)
    np.testing.assert_allclose(x * y, 1.0, rtol=1e-12)
    assert set(lines["alpha_label_T"].x) == {2.0}
    frame = diagram.to_frame()
    assert len(frame) == 99 and {"alpha", "rho", "phase"} <= set(frame.columns)
    assert json.dumps(diagram.to_dict(), allow_nan=False)


def test_phase_diagram_needs_one_condition():
    df = pinv_like_table(taus=(1.0, 10.0))
    with pytest.raises(ValueError, match="tau"):
        phase_diagram(df)
    diagram = phase_diagram(df, where={"tau": 10.0})
    assert diagram.labels.shape == (9, 11)
    tau_diagram = phase_diagram(df, x="alpha", y="tau", where={"rho": 0.9})
    assert tau_diagram.labels.shape == (2, 11)
    with pytest.raises(ValueError):
        phase_diagram(df, x="alpha", y="alpha")


def test_phase_diagram_plot_writes_a_figure(tmp_path):
    from softleak.compare.style import new_figure, save_figure

    diagram = phase_diagram(pinv_like_table())
    fig, (ax,) = new_figure(panel=(6.5, 4.0))
    diagram.plot(ax=ax, hatch=True)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert FULL in labels and any("alpha" in lab for lab in labels)
    # the mesh drawn is the diagram: each cell's colour index is its phase's position in PHASES
    from matplotlib.collections import QuadMesh

    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    codes = np.ma.filled(mesh.get_array().astype(float), np.nan).reshape(diagram.labels.shape)
    for k, phase in enumerate(PHASES):
        assert np.all(codes[diagram.labels == phase] == k), phase
    path = save_figure(fig, tmp_path / "phase.png")
    assert path.is_file()
    assert not list(tmp_path.glob(".phase*"))  # no temporary file left behind
