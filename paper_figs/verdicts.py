"""A run's verdicts against a reference list: does this machine reproduce the committed verdicts?

The quick suite's verdicts are committed (``tests/fixtures/quick_verdicts.json``: one full ``figs
all --preset quick`` run, its machine and date) so that a change of code, of preset or of machine
that moves one is seen. Same seeds give the same numbers on one machine; on another CPU kind
float32 kernels round differently, and a claim whose criterion sits at its margin may flip: such
claims say so (``compare.claims.Claim.machine_sensitive``) and are listed, not held, here.

``softleak figs report ROOT --expect FILE`` prints the moves and exits 1 when a verdict that is
not machine-sensitive moved.
"""

from __future__ import annotations

import json
from pathlib import Path


class VerdictsError(ValueError):
    """A reference file that cannot be read (one line)."""


def run_verdicts(entries: list[dict]) -> dict[str, str]:
    """Claim id -> verdict of a run (``paper_figs.report.collect``'s entries; failed figures
    contribute nothing)."""
    out = {}
    for entry in entries:
        for claim in (entry.get("summary") or {}).get("claims", []):
            out[claim["id"]] = claim["verdict"]
    return out


def machine_sensitive() -> dict[str, str]:
    """Claim id -> why its verdict may differ between CPU kinds, over every recipe."""
    from softleak.paper_figs.registry import load_recipes

    return {
        c.id: c.machine_sensitive
        for recipe in load_recipes().values()
        for c in recipe.claims
        if c.machine_sensitive
    }


def read_reference(path: str | Path) -> dict[str, str]:
    """The ``verdicts`` of a reference file (claim id -> verdict)."""
    try:
        data = json.loads(Path(path).read_text())
        verdicts = data["verdicts"]
        if not isinstance(verdicts, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise VerdictsError(f"{path} is not a verdicts file ({type(err).__name__})") from None
    return {str(k): str(v) for k, v in verdicts.items()}


def moves(found: dict[str, str], expected: dict[str, str]) -> list[dict]:
    """Every claim whose verdict differs (``found`` None: not in the run; ``expected`` None: not
    in the reference), with its machine-sensitivity; sorted by id."""
    sensitive = machine_sensitive()
    out = []
    for cid in sorted(set(found) | set(expected)):
        a, b = expected.get(cid), found.get(cid)
        if a != b:
            out.append({"id": cid, "expected": a, "found": b, "sensitive": sensitive.get(cid)})
    return out
