"""examples/real_data_audit.ipynb runs from top to bottom (digits, a CNN student from a factory,
canaries, the audit report): executed with nbclient in a fresh folder. Needs scikit-learn (the
bundled digits, extra ``real``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_runner import run_notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "real_data_audit.ipynb"


def test_real_data_notebook_runs(tmp_path):
    pytest.importorskip("sklearn")
    text = run_notebook(NOTEBOOK, tmp_path)
    assert "1797 images of shape (1, 8, 8) in 10 classes" in text
    assert "held-out canaries recovered" in text and "| shuffle |" in text
    assert "epsilon_lb (soft):" in text
    for run in ("canaries", "audit"):
        assert (tmp_path / "runs" / run / "results.parquet").is_file()
