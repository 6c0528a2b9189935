"""examples/real_data_audit.ipynb runs from top to bottom (digits, a CNN student from a factory,
canaries, the audit report): executed with nbclient in a fresh folder. Needs scikit-learn (the
bundled digits, extra ``real``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "real_data_audit.ipynb"


def test_real_data_notebook_runs(tmp_path):
    pytest.importorskip("sklearn")
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
    assert "1797 images of shape (1, 8, 8) in 10 classes" in text
    assert "held-out canaries recovered" in text and "| shuffle |" in text
    assert "epsilon_lb (soft):" in text
    for run in ("canaries", "audit"):
        assert (tmp_path / "runs" / run / "results.parquet").is_file()
