"""examples/quickstart.ipynb runs from top to bottom (so it cannot rot): executed with nbclient in
a fresh folder, every cell without an error, the API's results where the notebook shows them."""

from __future__ import annotations

from pathlib import Path

from notebook_runner import run_notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path):
    text = run_notebook(NOTEBOOK, tmp_path)
    assert "alpha_id = 1.250" in text  # theory at rho = 0.8
    assert "alpha_label_T" in text and "alpha_id_S" in text  # the thresholds table
    assert "alpha_inf =" in text  # the scaling fit
    for d in (25, 50, 100, 200):  # each sweep left its run directory
        assert (tmp_path / "runs" / "quickstart" / f"d{d}" / "results.parquet").is_file()
