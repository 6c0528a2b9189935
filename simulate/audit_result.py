"""What an audit returns: the per-student rows and the per-example scores (torch-free).

``simulate.audit`` returns an :class:`AuditResult`; ``compare.report_audit`` takes it (or the rows
alone, for the accuracy-based report without per-example statistics). A finished audit folder
reads back into the same object with :meth:`AuditResult.read`.

``examples`` holds, for every held-out member and every non-member, per setting, seed and rho,
what the student trained on that setting's released labels says about the example:

- ``index``: the row in its group's input array (the members' or the holdout's);
- ``group``: ``heldout_member`` or ``nonmember``;
- ``label``: its true label;
- ``score``: the student's probability of the true label;
- ``correct``: whether the student's argmax is the true label;
- ``confidence``: the student's probability of its own prediction (its largest probability);
- ``setting``, ``seed``, ``rho``: the student.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: The columns of :attr:`AuditResult.examples`, in order.
EXAMPLE_COLUMNS = (
    "index",
    "group",
    "label",
    "score",
    "correct",
    "confidence",
    "setting",
    "seed",
    "rho",
)
GROUPS = ("heldout_member", "nonmember")


@dataclass(eq=False)
class AuditResult:
    """The rows (one per trained student) and per-example scores of one audit."""

    rows: pd.DataFrame
    examples: pd.DataFrame = field(default_factory=lambda: empty_examples())
    config: dict = field(default_factory=dict)

    @classmethod
    def read(cls, directory: str | Path) -> AuditResult:
        """A finished audit folder, read without writing (ValueError, one line, otherwise)."""
        from softleak.simulate.store import read_results, read_side_table

        found = read_results(directory)
        if found.config.get("experiment") != "audit":
            raise ValueError(f"{str(directory)!r} does not hold an audit")
        if found.complete is False:
            raise ValueError(f"the audit in {str(directory)!r} is not finished: rerun it to resume")
        examples = read_side_table(directory, "examples", found.done)
        return cls(found.frame, empty_examples() if examples is None else examples, found.config)


def empty_examples() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float) for c in EXAMPLE_COLUMNS})


def example_table(
    group: str,
    index: np.ndarray,
    labels: np.ndarray,
    scored: tuple[np.ndarray, np.ndarray, np.ndarray],
    settings: list[str],
    seed: int,
    rho: float,
) -> pd.DataFrame:
    """The examples of one group scored by R students, one row per (student, example).

    ``scored``: (prediction, score, confidence), each (R, rows): the students' argmax, their
    probability of ``labels`` and their largest probability; ``settings`` their R names."""
    pred, score, confidence = scored
    R, n = pred.shape
    labels = np.asarray(labels, dtype=np.int64)
    return pd.DataFrame(
        {
            "index": np.tile(np.asarray(index, dtype=np.int64), R),
            "group": pd.Categorical([group] * (R * n), categories=GROUPS),
            "label": np.tile(labels, R),
            "score": score.reshape(-1).astype(np.float64),
            "correct": (pred == labels[None]).reshape(-1),
            "confidence": confidence.reshape(-1).astype(np.float64),
            "setting": np.repeat(np.asarray(settings, dtype=object), n),
            "seed": np.full(R * n, seed, dtype=np.int64),
            "rho": np.full(R * n, rho, dtype=float),
        },
        columns=list(EXAMPLE_COLUMNS),
    )
