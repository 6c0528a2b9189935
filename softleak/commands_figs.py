"""``softleak figs list | FIG | all``: regenerate the paper's figures from their recipes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from softleak import args as A
from softleak.errors import UsageError

#: The one-line help of ``softleak figs`` (the top-level --help lists it).
HELP = "regenerate the paper's figures (presets quick and paper)"


def register(groups) -> None:
    p = groups.add_parser(
        "figs",
        help=HELP,
        description="Run a figure's sweeps (resuming), draw it (PNG and PDF), and write "
        "OUT/summary.json with its headline numbers. 'softleak figs list' shows the figures, "
        "their presets and an estimate of the work.",
    )
    p.add_argument(
        "figure",
        metavar="FIG",
        help="a figure name (fig4, ...), 'list', 'all', or 'report' (the reproduction report of "
        "ROOT: report.html and report.md from every ROOT/*/summary.json)",
    )
    p.add_argument("root", metavar="ROOT", nargs="?", help="report: the folder 'figs all' wrote")
    p.add_argument(
        "--expect",
        metavar="FILE",
        help="report: compare the verdicts with a reference list (e.g. the repository's "
        "tests/fixtures/quick_verdicts.json); print every verdict that moved and exit 1 when one "
        "that is not machine-sensitive did",
    )
    p.add_argument(
        "--preset",
        choices=["quick", "paper"],
        default="quick",
        help="quick: a 2-core laptop CPU; paper: the paper's grid (GPU-sized)",
    )
    p.add_argument("--out", help="output directory (default results/FIG)")
    p.add_argument(
        "--data",
        help="folder for the sweeps' data (default OUT/data; with 'all', one shared folder "
        "ROOT/data so figures that use the same sweep run it once)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--threads", type=A.positive_int, default=None, help="torch threads")
    p.add_argument(
        "--workers",
        type=A.positive_int,
        default=None,
        help="all: worker processes for the sweeps (each on 1 thread; default: one per CPU core "
        "on a CPU, 1 on a GPU); 1 runs everything in this process",
    )
    from softleak.simulate.precision import PRECISIONS

    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="override every sweep's precision (default: each preset's own, fp32: a preset "
        "names one arithmetic on every machine)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--restart",
        action="store_true",
        help="start the figure's own sweeps over (clear their records; needed when a sweep "
        "folder holds a run of other settings, e.g. another preset's)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print summary.json instead of a table (list: the estimates as JSON)",
    )
    p.add_argument(
        "--rates",
        metavar="FILE",
        action="append",
        default=None,
        help="list: estimate times from measured rates (a 'python -m benchmarks.run_all --json' "
        "or 'benchmarks.gpu_check --out' file; a CPU file scales the cpu column, a CUDA one the "
        "h200 column; repeat for both). Default: the last run_all's, if any",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from softleak.paper_figs.registry import load_recipes

    recipes = load_recipes()
    if args.root is not None and args.figure != "report":
        raise UsageError(f"ROOT is for 'softleak figs report ROOT', not for {args.figure!r}")
    if args.figure == "list":
        if args.json:
            print(json.dumps(list_json(recipes, _rates(args.rates)), indent=2))
            return 0
        return _list(recipes, _rates(args.rates))
    if args.figure == "report":
        return _report(args.root or args.out or "results", args.expect)
    names = list(recipes) if args.figure == "all" else [args.figure]
    unknown = [n for n in names if n not in recipes]
    if unknown:
        raise UsageError(f"unknown figure {unknown[0]!r}; 'softleak figs list' shows the figures")
    from softleak.simulate.device import resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as err:
        raise UsageError(str(err)) from None
    from softleak.paper_figs.registry import run_recipe
    from softleak.simulate.rundir import resolve_out

    for text in (args.out, args.data):
        if text is not None:
            resolve_out(text)  # one line and nothing written for an unusable path
    restarted: set[str] = set()  # sweep folders cleared once by --restart
    failed = []
    sweep_s: dict[str, float] = {}  # each sweep's seconds on its worker process
    sweep_errors = _sweeps_on_workers(args, recipes, names, device, restarted, sweep_s)
    for name in names:
        # One figure: --out is its folder; several: one sub-folder each under --out.
        out = args.out if args.out and len(names) == 1 else f"{args.out or 'results'}/{name}"
        data = args.data or (f"{args.out or 'results'}/data" if len(names) > 1 else None)
        kwargs = dict(
            threads=args.threads,
            progress=False if args.no_progress else None,
            device=device,
            data_root=data,
            restart=args.restart,
            restarted=restarted,
            precision=args.precision,
            sweep_s=sweep_s,
        )
        if sweep_errors.get(name):
            _record_failure(name, out, f"its sweep {sweep_errors[name]}")
            failed.append(name)
            continue
        summary = (
            run_recipe(recipes[name], args.preset, out, **kwargs)
            if len(names) == 1
            else _run_one_of_all(recipes[name], args.preset, out, kwargs)
        )
        if summary is None:  # one of several figures failed (its line is printed)
            failed.append(name)
            continue
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print(f"{name} ({args.preset}): {recipes[name].title}")
            if summary.get("text"):
                print(summary["text"])
            print(f"figures and data in {out}/ ({summary['run_s']:.0f} s of simulation)")
    if len(names) > 1:
        _report(args.out or "results")
        if failed:
            print(f"{len(failed)} figure(s) failed: {', '.join(failed)}", file=sys.stderr)
            return 1
    return 0


def _run_one_of_all(recipe, preset: str, out: str, kwargs: dict) -> dict | None:
    """One figure of ``figs all``: its summary, or None when it failed (the one line is printed
    and kept in OUT/error.txt for the report; the other figures go on). A success clears it."""
    import logging

    from softleak.paper_figs.registry import run_recipe
    from softleak.paper_figs.report import ERROR_FILE
    from softleak.simulate.rundir import resolve_out

    error = resolve_out(out) / ERROR_FILE
    try:
        summary = run_recipe(recipe, preset, out, **kwargs)
    except Exception as err:  # noqa: BLE001 - one figure's failure must not stop the others
        logging.getLogger(__name__).debug("%s failed", recipe.name, exc_info=True)
        _record_failure(recipe.name, out, f"{type(err).__name__}: {err}")
        return None
    error.unlink(missing_ok=True)
    return summary


def _record_failure(name: str, out: str, why: str) -> None:
    """A figure of ``figs all`` that failed: one line on stderr and in OUT/error.txt."""
    from softleak.compare.style import write_text_atomic
    from softleak.paper_figs.report import ERROR_FILE
    from softleak.simulate.rundir import resolve_out

    line = why.splitlines()[0]
    print(f"error: {name} failed: {line}", file=sys.stderr)
    write_text_atomic(resolve_out(out) / ERROR_FILE, line + "\n")


def _sweeps_on_workers(args, recipes, names, device, restarted, seconds) -> dict[str, str]:
    """``figs all`` with more than one worker: every distinct sweep first, on worker processes
    (``paper_figs.suite``); {figure: "<sweep> failed: ..."} for figures whose sweep failed."""
    from softleak.paper_figs import suite

    workers = args.workers or suite.default_workers(device)
    if len(names) == 1 or workers == 1:
        return {}
    data = args.data or f"{args.out or 'results'}/data"
    jobs, needs = suite.plan(
        {n: recipes[n] for n in names}, args.preset, data, device, args.precision
    )
    rates = _rates(None) or None  # the measured rates figs list uses, when there are any
    errors = suite.run_sweeps(
        jobs, workers, restart=args.restart, restarted=restarted, rates=rates, seconds=seconds
    )
    out = {}
    for name, folders in needs.items():
        bad = [f for f in folders if f in errors]
        if bad:
            out[name] = f"{Path(bad[0]).name} failed: {errors[bad[0]]}"
    return out


def _report(root: str, expect: str | None = None) -> int:
    from softleak.paper_figs.report import collect, write_report
    from softleak.paper_figs.verdicts import VerdictsError, read_reference
    from softleak.simulate.rundir import resolve_out

    try:
        reference = read_reference(expect) if expect else None
    except VerdictsError as err:
        raise UsageError(str(err)) from None
    folder = resolve_out(root)
    entries = collect(folder)
    try:
        paths = write_report(folder, entries)
    except ValueError as err:
        raise UsageError(str(err)) from None
    print(f"report: {', '.join(str(p) for p in paths.values())}")
    damaged = [e for e in entries if e.get("damaged")]
    if damaged:  # a summary the user edited: the report lists it as failed, and says so here
        more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        raise UsageError(f"{damaged[0]['error']}{more}; the report lists it as failed")
    if reference is None or expect is None:
        return 0
    return _expect(entries, reference, expect)


def _expect(entries: list[dict], reference: dict, path: str) -> int:
    """Print every verdict that moved against ``reference``; 1 when one that is not
    machine-sensitive did."""
    from softleak.paper_figs.verdicts import moves, run_verdicts

    moved = moves(run_verdicts(entries), reference)
    held = [m for m in moved if not m["sensitive"]]
    for m in moved:
        tag = f"machine-sensitive: {m['sensitive']}" if m["sensitive"] else "MOVED"
        print(
            f"  {m['id']}: {m['expected'] or 'absent'} in {path}, {m['found'] or 'absent'} here ({tag})"
        )
    same = len(set(reference) | set(run_verdicts(entries))) - len(moved)
    print(
        f"verdicts: {same} as in {path}, {len(held)} moved, {len(moved) - len(held)} machine-sensitive"
    )
    return 1 if held else 0


def _rates(paths: list[str] | None) -> list:
    """The measured rates ``figs list`` uses: the ``--rates`` files (a bad one is a usage error),
    else the last ``benchmarks.run_all``'s (``simulate.estimate.default_rates_path``; one that
    does not read is skipped with a warning)."""
    import sys

    from softleak.simulate.estimate import RatesError, cached_rates, load_rates

    out = []
    for path in paths or ():
        try:
            out.append(load_rates(path))
        except RatesError as err:
            raise UsageError(str(err)) from None
    if not any(r.device == "cpu" for r in out):
        out += cached_rates(lambda text: print(f"warning: {text}", file=sys.stderr))
    return out


def _list(recipes, rates=()) -> int:
    from softleak.simulate.estimate import hours

    rates = list(rates)
    listing = list_json(recipes, rates, rounded=False)  # one estimate per sweep
    print(
        f"{'figure':8s} {'preset':7s} {'teachers':>9s} {'students':>9s} {'TFLOP':>9s} "
        f"{'cpu':>9s} {'h200':>9s}  note"
    )
    totals: dict[str, list[float]] = {}
    for i, r in enumerate(listing["recipes"]):
        total = totals.setdefault(r["preset"], [0.0, 0.0])
        total[0] += r["cpu_s"]
        total[1] += r["h200_s"]
        cpu, gpu = hours(r["cpu_s"]), hours(r["h200_s"])
        print(
            f"{r['figure']:8s} {r['preset']:7s} {r['teachers']:9d} {r['students']:9d} "
            f"{r['tflop']:9.2f} {cpu:>9s} {gpu:>9s}  {r['note']}"
        )
        following = listing["recipes"][i + 1]["figure"] if i + 1 < len(listing["recipes"]) else None
        if following != r["figure"]:
            print(f"{'':8s} {recipes[r['figure']].title}")
    for preset, (cpu_s, gpu_s) in totals.items():
        print(
            f"{'total':8s} {preset:7s} {'':9s} {'':9s} {'':9s} {hours(cpu_s):>9s} {hours(gpu_s):>9s}"
        )
    print(
        f"figs all --preset quick (shared sweeps once, {listing['workers']} worker processes): "
        f"{hours(listing['all_quick_cpu_s'])} on cpu"
    )
    cpu_rates = next((r for r in rates if r.device == "cpu"), None)
    gpu_rates = next((r for r in rates if r.device != "cpu"), None)
    from softleak.simulate.estimate import BUILT_IN_RATES

    cpu_note = f"built-in rates: {BUILT_IN_RATES}"
    if cpu_rates is not None:
        cpu_note = f"built-in rates scaled by the rates {cpu_rates.provenance()}"
    gpu_note = "assumed rates"
    if gpu_rates is not None:
        gpu_note = f"rates {gpu_rates.provenance()}"
    print(
        f"cpu: estimated wall time on a 2-core CPU of the development kind (1 process, 1 thread; "
        f"{cpu_note}); h200: on one H200 ({gpu_note}). See simulate/estimate.py."
    )
    for r in (cpu_rates, gpu_rates):
        if r is not None:
            print(f"  {r.source}: {r.summary()}" + _meta_note(r))
            for why in r.rejected:
                print(f"  {r.source}: not used: {why}")
    return 0


def list_json(recipes, rates=(), rounded: bool = True) -> dict:
    """``figs list --json``: per recipe and preset its work, estimated times and claim ids;
    ``all_quick_cpu_s``: ``figs all --preset quick`` as it runs by default (its default worker
    processes, longest sweep first, ``paper_figs.suite.schedule``; a
    sweep several figures share runs once). ``rounded``: seconds to 0.1, TFLOP to 0.001 (the
    table ``figs list`` prints takes them unrounded)."""
    from softleak.paper_figs import suite
    from softleak.simulate.estimate import estimate, work_of

    def r1(x: float) -> float:
        return round(x, 1) if rounded else x

    rates = list(rates)
    gpu_measured = any(r.device != "cpu" for r in rates)
    rows = []
    for name, recipe in recipes.items():
        for preset, p in recipe.presets.items():
            work = [work_of(s) for s in p.sweeps.values()]
            times = {k: estimate(spec, rates=rates or None) for k, spec in p.sweeps.items()}
            rows.append(
                {
                    "figure": name,
                    "preset": preset,
                    "cpu_s": r1(sum(t["cpu_s"] for t in times.values())),
                    "h200_s": r1(sum(t["h200_s"] for t in times.values())),
                    "assumed": not gpu_measured,
                    "teachers": sum(w["teachers"] for w in work),
                    "students": sum(w["students"] for w in work),
                    "tflop": sum(w["flops"] for w in work) / 1e12,
                    "claims": [c.id for c in recipe.claims],
                    "note": p.note,
                }
            )
    quick = {n: r for n, r in recipes.items() if "quick" in r.presets}
    jobs, _ = suite.plan(quick, "quick", "data", "cpu", None)
    workers = suite.default_workers("cpu")
    _, all_quick = suite.schedule(jobs, workers, rates=rates or None)
    if rounded:
        for r in rows:
            r["tflop"] = round(r["tflop"], 3)
    return {"recipes": rows, "all_quick_cpu_s": r1(all_quick), "workers": workers}


def _meta_note(rates) -> str:
    bits = []
    if rates.meta.get("written"):
        bits.append(f"written {rates.meta['written']}")
    if rates.meta.get("load_average") is not None:
        bits.append(f"load average {rates.meta['load_average']}")
    return f" ({', '.join(map(str, bits))})" if bits else ""
