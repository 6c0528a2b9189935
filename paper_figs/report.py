"""The reproduction report: every figure's claims and verdicts, figures and settings on one page.

``softleak figs report ROOT`` (and ``softleak figs all`` at its end) reads the layout ``figs all
--out ROOT`` writes -- ``ROOT/<figure>/summary.json``, or ``ROOT/<figure>/error.txt`` for a recipe
that failed -- and writes ``ROOT/report.html`` and ``ROOT/report.md`` with ``compare.document``:
a claims table first (claim, paper, measured, verdict; how many hold), then each figure with its
caption, its claims, its preset's settings and run time, and its images by relative path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from softleak.compare.claims import count
from softleak.compare.document import Document

log = logging.getLogger(__name__)

ERROR_FILE = "error.txt"  # ROOT/<figure>/error.txt: the one line of a recipe that failed


def collect(root: str | Path) -> list[dict]:
    """One entry per figure folder under ``root``, in the paper's order: ``{figure, status
    ("ok" or "failed"), summary, error}``. A summary that does not parse is a failure too."""
    from softleak.paper_figs.registry import load_recipes

    root = Path(root)
    order = list(load_recipes())
    folders = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    folders.sort(key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))
    entries: list[dict[str, Any]] = []
    for folder in folders:
        error, summary = folder / ERROR_FILE, folder / "summary.json"
        if error.is_file():
            entries.append(
                {"figure": folder.name, "status": "failed", "summary": None,
                 "error": error.read_text().strip()}
            )  # fmt: skip
        elif summary.is_file():
            try:
                data = json.loads(summary.read_text())
                problem = summary_problem(data)
                if problem:
                    raise ValueError(problem)
            except (ValueError, OSError) as err:
                entries.append(
                    {"figure": folder.name, "status": "failed", "summary": None,
                     "error": f"{summary} does not read: {err}", "damaged": True}
                )  # fmt: skip
                continue
            entries.append({"figure": folder.name, "status": "ok", "summary": data, "error": None})
    return entries


#: The text fields of a claim record (``compare.claims.record``) the report prints.
CLAIM_TEXT = ("id", "claim", "criterion", "note")


def summary_problem(data) -> str | None:
    """Why a parsed summary.json cannot be reported (a user may edit it): None when its fields
    have the types ``registry.run_recipe`` writes."""
    from softleak.compare.claims import VERDICTS

    if not isinstance(data, dict):
        return f"not a JSON object but {type(data).__name__}"
    for key in ("preset", "title", "text"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"{key!r} is {type(data[key]).__name__}, not text"
    run_s = data.get("run_s", 0)
    if isinstance(run_s, bool) or not isinstance(run_s, int | float):
        return f"'run_s' is {type(run_s).__name__}, not a number of seconds"
    for key in ("files", "claims"):
        if not isinstance(data.get(key, []), list):
            return f"{key!r} is {type(data[key]).__name__}, not a list"
    if not all(isinstance(f, str) for f in data.get("files", [])):
        return "'files' holds something other than file names"
    for i, claim in enumerate(data.get("claims", [])):
        if not isinstance(claim, dict):
            return f"claim {i} is {type(claim).__name__}, not a record"
        if claim.get("verdict") not in VERDICTS:
            return f"claim {i}'s verdict is {claim.get('verdict')!r}, not one of {VERDICTS}"
        for key in CLAIM_TEXT:
            if not isinstance(claim.get(key, ""), str):
                return f"claim {i}'s {key!r} is {type(claim[key]).__name__}, not text"
    return None


def fmt(value, digits: int = 3) -> str:
    """A measured or paper value in one short cell."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fmt(v, digits)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        items = [fmt(v, digits) for v in value[:8]]
        return "[" + ", ".join(items) + (", ..." if len(value) > 8 else "") + "]"
    return str(value)


def build(root: str | Path, entries: list[dict]) -> Document:
    """The report's document (see the module docstring)."""
    from softleak.paper_figs.registry import load_recipes

    root = Path(root)
    recipes = load_recipes()
    claims = [c for e in entries if e["summary"] for c in e["summary"].get("claims", [])]
    tally = count(claims)
    failed = [e for e in entries if e["status"] == "failed"]
    presets = sorted({e["summary"].get("preset", "?") for e in entries if e["summary"]})
    doc = Document("softleak reproduction report")
    doc.paragraph(
        f"{len(entries)} figure(s) under {root.name or root} (preset {', '.join(presets) or '-'}); "
        f"{tally['holds']} of {len(claims)} claims hold, {tally['fails']} fail, "
        f"{tally['untested']} untested at this scale"
        + (f"; {len(failed)} figure(s) failed to run." if failed else ".")
    )
    doc.heading("Claims")
    doc.table(
        ["claim", "statement", "paper", "measured", "verdict", "note"],
        [
            [c["id"], c["claim"], fmt(c["paper"]), fmt(c["measured"]), c["verdict"], c["note"]]
            for c in claims
        ],
        marks=[c["verdict"] for c in claims],
        mark_column=4,
    )
    if failed:
        doc.heading("Figures that failed")
        doc.table(
            ["figure", "error"],
            [[e["figure"], e["error"]] for e in failed],
            marks=["failed"] * len(failed),
        )
    for e in entries:
        s, name = e["summary"], e["figure"]
        recipe = recipes.get(name)
        title = (s or {}).get("title") or (recipe.title if recipe else "")
        doc.heading(f"{name}: {title}" if title else name, anchor=name)
        if e["status"] == "failed":
            doc.paragraph(f"This figure failed: {e['error']}")
            continue
        for line in str(s.get("text") or "").strip().splitlines():
            if line.strip():
                doc.paragraph(line.strip())
        preset = s.get("preset", "?")
        note = ""
        if recipe is not None and preset in recipe.presets:
            note = recipe.presets[preset].note
        doc.paragraph(
            f"Preset {preset}" + (f" ({note})" if note else "") + f"; {s.get('run_s', 0):.0f} s "
            "of simulation."
        )
        own = s.get("claims", [])
        if own:
            doc.table(
                ["claim", "criterion", "measured", "verdict", "note"],
                [
                    [c["id"], c["criterion"], fmt(c["measured"]), c["verdict"], c["note"]]
                    for c in own
                ],
                marks=[c["verdict"] for c in own],
                mark_column=3,
            )
        for image in images(root, name, s):
            doc.image(image, f"{name} ({preset})")
    return doc


def images(root: Path, name: str, summary: dict) -> list[str]:
    """The figure's PNGs as paths relative to ``root`` (files named in the summary that exist
    under the figure's folder; absolute paths from the run are re-rooted by name)."""
    out = []
    for f in summary.get("files", []):
        path = Path(f)
        if path.suffix != ".png":
            continue
        local = root / name / path.name
        if local.is_file():
            out.append(f"{name}/{path.name}")
    return out


def write_report(root: str | Path, entries: list[dict] | None = None) -> dict[str, Path]:
    """Write ``ROOT/report.html`` and ``ROOT/report.md`` (``entries``: :func:`collect`'s, read
    here when None); ValueError when ROOT holds no figure."""
    root = Path(root)
    entries = collect(root) if entries is None else entries
    if not entries:
        raise ValueError(
            f"{root} holds no figure folders with a summary.json (run 'softleak figs all --out {root}')"
        )
    paths = build(root, entries).write(root, "report")
    log.info("report written: %s", ", ".join(str(p) for p in paths.values()))
    return paths
