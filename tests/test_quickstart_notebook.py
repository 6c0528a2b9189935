"""examples/quickstart.ipynb runs from top to bottom (so it cannot rot): executed with nbclient in
a fresh folder, every cell without an error, the API's results where the notebook shows them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    nb = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    text = "\n".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert "alpha_id = 1.250" in text  # theory at rho = 0.8
    assert "alpha_label_T" in text and "alpha_id_S" in text  # the thresholds table
    assert "alpha_inf =" in text  # the scaling fit
    for d in (25, 50, 100, 200):  # each sweep left its run directory
        assert (tmp_path / "runs" / "quickstart" / f"d{d}" / "results.parquet").is_file()
