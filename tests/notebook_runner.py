"""Execute an example notebook in a fresh folder (the tests that keep the examples from rotting)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def run_notebook(notebook: Path, folder: Path) -> str:
    """Run ``notebook`` top to bottom with nbclient in ``folder`` (a copy; every cell without an
    error, else ``CellExecutionError``); returns the text of all its outputs. Skips the test
    without nbformat, nbclient or ipykernel."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    shutil.copy(notebook, folder / notebook.name)
    nb = nbformat.read(folder / notebook.name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return "\n".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
