"""The agreement checks of every registered family (``simulate.families``): each experiment's
``check_spec`` run on the CPU and on the device, compared in float64 and by outcome in
float32."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from benchmarks.check_profiles import Profile
from benchmarks.check_report import Report, last_line
from benchmarks.table_agreement import compare_float64, compare_outcomes

RUN_NEEDS = ("pandas", "pyarrow")  # what every run directory needs


def family_spec(command: str, kind: str, prof: Profile):
    """The spec of an experiment's agreement run (its family's ``check_spec``): ``kind``
    "float64" (short) or "float32" (longer, several seeds, settings clearly inside their
    phases); None where the family declares none."""
    from softleak.simulate.families import for_command

    return for_command(command).check_spec(command, kind, scale=prof.scale, seeds=prof.seeds)


def family_needs(command: str) -> tuple[str, ...]:
    """The modules a check of ``command`` needs: a run directory's and its family's."""
    from softleak.simulate.families import for_command

    return (*RUN_NEEDS, *for_command(command).needs)


def run_table(spec, device: str, root: Path, tag: str):
    """The results table of ``spec`` run on ``device`` into a fresh folder under ``root``."""
    from softleak import simulate

    spec = dataclasses.replace(spec, device=device)
    out = root / f"{tag}-{device.replace(':', '')}"
    return simulate.run(spec, out=out, progress=False, restart=True)


def check_families(report: Report, prof: Profile, device: str, root: Path) -> None:
    """Every experiment of every registered family (``simulate.families``)."""
    from softleak.simulate.families import FAMILIES, family

    for name in FAMILIES:
        try:
            commands = family(name).commands()
        except Exception as err:  # a family whose modules do not import here
            report.add(f"agree/{name}", None, f"skipped: {last_line(err)}")
            continue
        for command in commands:
            for kind in ("float64", "float32"):
                _check_agreement(report, prof, device, root, command, kind)


def _check_agreement(report, prof, device, root, command: str, kind: str) -> None:
    """Check ``agree-<kind>/<command>``: the family's check run on the CPU and on ``device``."""
    name = f"agree-{kind}/{command}"
    if report.wanted(name) and family_spec(command, kind, prof) is None:
        report.add(name, None, f"skipped: its family declares no {kind} run")
        return

    def check():
        spec = family_spec(command, kind, prof)
        t0 = time.perf_counter()
        cpu = run_table(spec, "cpu", root, f"{command}-{kind}-ref")
        t1 = time.perf_counter()
        dev = run_table(spec, device, root, f"{command}-{kind}")
        t2 = time.perf_counter()
        ok, detail = (compare_float64 if kind == "float64" else compare_outcomes)(cpu, dev)
        return ok, f"{detail} (CPU {t1 - t0:.1f} s, {device} {t2 - t1:.1f} s)"

    report.run(name, check, needs=family_needs(command))
