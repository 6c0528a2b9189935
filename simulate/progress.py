"""The progress bar of every resumable runner (sweeps, modular addition, GPT-2, the audit)."""

from __future__ import annotations

import sys


def student_bar(total: int, done: int, desc: str, progress: bool | None = None):
    """A tqdm bar counting students: ``total`` of the run, ``done`` already finished (a resumed
    run starts there). ``progress``: show it (None: only when stderr is a terminal, so CI logs
    stay quiet)."""
    from tqdm.auto import tqdm

    if progress is None:
        progress = sys.stderr.isatty()
    return tqdm(total=total, initial=done, unit="student", disable=not progress, desc=desc)
