"""PhaseDiagram.plot_metric: a heatmap of one seed-mean cell metric (Figs. 13-15 panels)."""

from __future__ import annotations

import numpy as np
import pytest
from test_compare_phases import pinv_like_table

from softleak.compare.phases import phase_diagram


def test_plot_metric_draws_the_cell_means_on_log_tau_edges(tmp_path):
    from matplotlib.collections import QuadMesh

    from softleak.compare.style import new_figure, save_figure

    df = pinv_like_table(taus=(1.0, 10.0, 100.0))
    diagram = phase_diagram(df, x="tau", y="alpha", where={"rho": 0.9})
    fig, (ax,) = new_figure()
    diagram.plot_metric("student_test_acc", ax=ax, label="test acc", theory=True)
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)][-1]
    values = np.ma.getdata(mesh.get_array()).reshape(diagram.labels.shape)
    np.testing.assert_allclose(values, diagram.metrics["student_test_acc"])
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_xlim()
    assert lo == pytest.approx(10**-0.5) and hi == pytest.approx(10**2.5)  # geometric half-steps
    assert len(fig.axes) == 2  # the colour bar
    assert save_figure(fig, tmp_path / "heat.png").stat().st_size > 2000
    with pytest.raises(ValueError, match="no metric"):
        diagram.plot_metric("no_such_metric", ax=ax)
