"""``softleak simulate EXPERIMENT ...``: run (or resume) a run of any registered family into a
results directory.

One command per experiment of every family in the registry (``simulate.families``): its options
come from the spec's declared fields (``softleak.spec_args``), its texts, default device and the
lines it prints after a run from the family. A new family gets its command from its registry
line alone (:func:`_register_family`). What stays here is what the command line adds to some
families (:data:`EXTRAS`: gpt2's deprecated switch and its shape check, the canaries' recovery
table, which ``compare`` computes) and the sweeps' own command (hidden fields, changed defaults,
Dask clusters), and ``export-teacher``."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from softleak import args as A
from softleak.errors import UsageError

#: The one-line help of ``softleak simulate`` (the top-level --help lists it).
HELP = "run teacher/student sweeps into a results directory"


def register(groups) -> None:
    group = groups.add_parser(
        "simulate",
        help=HELP,
        description="Run a grid of teachers and their soft-label students; re-running the same "
        "command resumes (finished runs are not recomputed). Results: DIR/results.parquet.",
    )
    commands = group.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    from softleak.simulate.families import families

    for family in families():
        for command in family.commands():
            p = commands.add_parser(
                command,
                help=family.help_of(command),
                description=family.description_of(command),
            )
            if family.name == "sweep":  # the sweeps' own command (see the module docstring)
                _add_sweep_options(p, command)
                p.set_defaults(handler=run)
            else:
                _add_family_options(p, family)
                p.set_defaults(handler=run_family, family_name=family.name)
    _register_export_teacher(commands)


EXPORT_HELP = (
    "export one trained teacher of a multinomial or mlp sweep directory as plain array files, "
    "the inputs for `softleak audit`: DIR/members.npz (its training set: inputs (n, d), labels "
    "(n,), logits (n, c)), DIR/holdout.npz (the same keys on fresh non-members drawn as the "
    "sweep's validation set, random labels) and DIR/teacher.json (which teacher, its train and "
    "non-member accuracy, the sweep's settings). Inputs and logits are float64, labels int64; "
    "the files load with numpy.load(path, allow_pickle=False). Nothing is retrained: the "
    "teacher's saved weights are run on its regenerated data"
)


def _register_export_teacher(commands) -> None:
    p = commands.add_parser(
        "export-teacher",
        help="write a sweep teacher's outputs as inputs for `softleak audit`",
        description=EXPORT_HELP,
    )
    p.add_argument("sweep_dir", metavar="SWEEP_DIR", help="a softleak simulate sweep directory")
    p.add_argument("--out", required=True, help="directory for the three files (created)")
    p.add_argument(
        "--n", type=A.positive_int, default=None, help="teacher set size (default: the largest)"
    )
    p.add_argument(
        "--seed", type=A.nonnegative_int, default=0, help="teacher replicate (default 0)"
    )
    p.add_argument(
        "--d",
        type=A.positive_int,
        default=None,
        help="input dimension (only when the sweep has several with that n)",
    )
    p.add_argument(
        "--c",
        type=A.positive_int,
        default=None,
        help="classes (only when the sweep has several with that n)",
    )
    p.add_argument(
        "--n-holdout",
        type=A.positive_int,
        default=None,
        help="non-members to draw (default: the sweep's --n-val)",
    )
    p.add_argument(
        "--threads", type=A.positive_int, default=None, help="torch threads (default: 1 if small)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    _add_restart(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it has none)")
    p.set_defaults(handler=run_export_teacher)


def run_export_teacher(args: argparse.Namespace) -> int:
    import json

    from softleak.simulate.rundir import RunDirError
    from softleak.simulate.teacher_outputs import export_teacher_outputs

    try:
        info = export_teacher_outputs(
            args.sweep_dir,
            args.out,
            n=args.n,
            seed=args.seed,
            n_holdout=args.n_holdout,
            d=args.d,
            c=args.c,
            threads=args.threads,
            restart=args.restart,
        )
    except RunDirError:
        raise
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.json:
        print(json.dumps(info))
        return 0
    print(
        f"teacher d={info['d']} c={info['c']} n={info['n']} seed={info['seed']} "
        f"({info['experiment']}): train acc {info['teacher_train_acc']:.3f}, non-member acc "
        f"{info['teacher_val_acc']:.3f} (chance {info['chance']:.3f})"
    )
    for name in ("members", "holdout", "teacher_json"):
        print(f"  {info[name]}")
    return 0


# ---------------------------------------------------------------------------------------------
# any registered family (all but the sweeps)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Extras:
    """What the command line adds to a family's generic command."""

    options: Callable[[Any], None] | None = None  # options(group): more execution options
    check: Callable[[argparse.Namespace], None] | None = None  # before the spec is built
    # report(spec, table, args, seconds): replaces the summary lines and the closing line
    report: Callable[..., None] | None = None
    # whether an exception a run raised is the user's input (data, files): one line, exit 2
    user_error: Callable[[Exception], bool] | None = None


def _add_family_options(p: argparse.ArgumentParser, family) -> None:
    """The spec's declared fields, then --device (the family's default), --threads, --restart,
    --no-progress, --out and the family's extras."""
    from softleak.spec_args import add_spec_options

    r = add_spec_options(p, family.spec_type)["execution"]
    r.add_argument(
        "--device",
        default=family.device,
        help=f"auto (CUDA when present), cpu or cuda (default {family.device})",
    )
    extras = EXTRAS.get(family.name)
    if extras is not None and extras.options is not None:
        extras.options(r)
    _add_run_directory_options(r)


def _add_run_directory_options(r) -> None:
    """--threads, --restart, --no-progress, --out of the single-run experiments."""
    r.add_argument(
        "--threads",
        type=A.positive_int,
        default=None,
        help="torch threads (default: 1 for small steps, all cores on an idle machine)",
    )
    _add_restart(r)
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--out", required=True, help="results directory (created; resumed if present)")


def family_spec_from_args(args: argparse.Namespace):
    """The validated spec of a family's command (UsageError on bad input)."""
    from softleak.simulate.device import resolve_device
    from softleak.simulate.families import family
    from softleak.spec_args import spec_values

    found = family(args.family_name)
    extras = EXTRAS.get(found.name)
    if extras is not None and extras.check is not None:
        extras.check(args)
    cls = found.spec_type
    try:
        return cls(**spec_values(args, cls), device=resolve_device(args.device))
    except ValueError as err:
        raise UsageError(str(err)) from None


def run_family(args: argparse.Namespace) -> int:
    from softleak.simulate.families import family
    from softleak.simulate.rundir import RunDirError, resolve_out

    found = family(args.family_name)
    extras = EXTRAS.get(found.name, Extras())
    resolve_out(args.out)  # an unusable --out is one line before anything is built or run
    spec = family_spec_from_args(args)
    t0 = time.perf_counter()
    try:
        table = _run_spec(spec, args)
    except RunDirError:
        raise
    except Exception as err:  # the family's errors of user input (data, files): one line
        if extras.user_error is not None and extras.user_error(err):
            raise UsageError(str(err)) from None
        raise
    seconds = time.perf_counter() - t0
    if extras.report is not None:
        extras.report(spec, table, args, seconds)
        return 0
    for line in found.summary(spec, table):
        print(line)
    print(f"{len(table)} student runs in {args.out}/results.parquet ({seconds:.1f} s)")
    return 0


def _gpt2_options(r) -> None:
    r.add_argument(
        "--no-amp",
        action="store_true",
        help="deprecated: fp32 is the default now (reduced products: --precision bf16 or bf16r)",
    )


def _gpt2_check(args: argparse.Namespace) -> None:
    if args.pretrained is not None and any(
        v is not None for v in (args.n_layer, args.n_embd, args.n_head)
    ):
        raise UsageError(
            "--n-layer/--n-embd/--n-head shape a model built from a config, not a --pretrained one"
        )
    if args.no_amp:
        import logging

        logging.getLogger(__name__).warning("--no-amp is deprecated: fp32 is the default")


def _json_option(r) -> None:
    r.add_argument("--json", action="store_true", help="print the recovery table as JSON rows")


def _canary_report(spec, table, args: argparse.Namespace, seconds: float) -> None:
    """The recovery table with t intervals and the epsilon lower bound (``compare.canaries``)."""
    from softleak.compare.canaries import canary_recovery

    summary = canary_recovery(table)
    if args.json:
        print(summary.table.to_json(orient="records"))
        return
    print(summary.markdown())
    print(f"\n{len(table)} students in {args.out}/results.parquet ({seconds:.1f} s)")


def _gpt2_error(err: Exception) -> bool:
    from softleak.simulate.gpt2 import GPT2Error

    return isinstance(err, GPT2Error)


#: Families whose command does more than the generic one (every other family: none needed).
EXTRAS: dict[str, Extras] = {
    "gpt2": Extras(options=_gpt2_options, check=_gpt2_check, user_error=_gpt2_error),
    "canaries": Extras(
        options=_json_option,
        report=_canary_report,
        user_error=lambda err: isinstance(err, ValueError),  # data, factory files, shapes
    ),
}


# ---------------------------------------------------------------------------------------------
# the sweeps (logistic-pinv, multinomial, mlp)
# ---------------------------------------------------------------------------------------------
def _add_sweep_options(p: argparse.ArgumentParser, experiment: str) -> None:
    """The options of a sweep experiment: its spec's declared fields (``SweepSpec``, less those
    ``EXPERIMENT_OPTIONS`` hides, with the defaults it sets), then the execution options."""
    from softleak.simulate.spec import EXPERIMENT_OPTIONS, SweepSpec
    from softleak.spec_args import add_spec_options

    options = EXPERIMENT_OPTIONS[experiment]
    # alpha's default applies only when --n is not given either (spec_from_args)
    defaults = {k: v for k, v in options["defaults"].items() if k != "alpha"}
    groups = add_spec_options(
        p,
        SweepSpec,
        defaults=defaults,
        skip=options["hidden"],
        default_help={"p_student": "default: the teacher's", "alpha": "default 0.5:2.5:9"},
    )
    r = groups["execution"]
    r.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA when present), cpu or cuda; with --scheduler, resolved on a worker",
    )
    r.add_argument(
        "--threads",
        type=A.positive_int,
        default=None,
        help="torch/BLAS threads per process (default: in-process, 1 for small steps and all "
        "cores for large ones on an idle machine; on a cluster, 1 per worker)",
    )
    r.add_argument(
        "--allow-tf32",
        action="store_true",
        help="deprecated: --precision tf32",
    )
    where = r.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=A.positive_int,
        default=None,
        help="run on a local Dask cluster of N worker processes (needs softleak[dist])",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDR",
        help="run on an existing Dask cluster, e.g. tcp://host:8786 (dask-jobqueue on Slurm)",
    )
    _add_restart(r)
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--out", required=True, help="results directory (created; resumed if present)")


def _add_restart(r) -> None:
    r.add_argument(
        "--restart",
        action="store_true",
        help="start over: clear the records DIR holds (needed when it holds a run of other "
        "settings; without it such a directory is refused)",
    )


def spec_from_args(args: argparse.Namespace, device: str | None = None):
    """The validated spec of the command line. ``device``: already resolved (else resolved here)."""
    from softleak.simulate.device import resolve_device
    from softleak.simulate.spec import EXPERIMENT_OPTIONS, SweepSpec
    from softleak.spec_args import spec_values

    options = EXPERIMENT_OPTIONS[args.experiment]
    values = {**options["hidden"], **spec_values(args, SweepSpec, skip=options["hidden"])}
    if values["alpha"] is None and values["n"] is None:
        values["alpha"] = options["defaults"]["alpha"]
    if values.get("p_student") is None:  # the students' widths default to the teacher's
        values["p_student"] = values.get("p_teacher", ())
    if getattr(args, "allow_tf32", False):
        import logging

        logging.getLogger(__name__).warning("--allow-tf32 is deprecated: use --precision tf32")
        values["precision"] = "tf32"
    try:
        if device is None:
            device = resolve_device(args.device)
        return SweepSpec(experiment=args.experiment, device=device, **values)
    except ValueError as err:
        raise UsageError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    from softleak.simulate.rundir import resolve_out

    resolve_out(args.out)  # before a cluster starts: an unusable --out is one line, nothing written
    if args.scheduler is not None or args.workers is not None:
        return _run_on_cluster(args)
    spec = spec_from_args(args)

    t0 = time.perf_counter()
    table = _sweep(spec, args)
    _report(spec, table, args, time.perf_counter() - t0)
    return 0


def _run_on_cluster(args: argparse.Namespace) -> int:
    """--workers N (a local Dask cluster) or --scheduler ADDR (an existing one)."""
    # Validate everything that can be checked here before starting or reaching a cluster.
    if args.scheduler is not None:
        if args.device not in ("auto", "cpu", "cuda") and not args.device.startswith("cuda:"):
            raise UsageError(f"unknown device {args.device!r}: use auto, cpu or cuda")
        spec = spec_from_args(args, device="cpu")
    else:
        spec = spec_from_args(args)
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(
            "--workers/--scheduler need dask[distributed]: pip install 'softleak[dist]'"
        ) from None
    import dataclasses

    from softleak.simulate.executors import dask_client, remote_device

    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(
                dask_client(workers=args.workers, scheduler=args.scheduler)
            )
        except (OSError, TimeoutError) as err:
            if args.scheduler is None:
                raise
            where = args.scheduler
            raise UsageError(f"cannot reach the Dask scheduler at {where}: {err}") from None
        if args.scheduler is not None:
            try:
                device = remote_device(client, args.device)
            except ValueError as err:
                raise UsageError(f"on the cluster's workers: {err}") from None
            spec = dataclasses.replace(spec, device=device)
        table = _sweep(spec, args, client=client)
    _report(spec, table, args, time.perf_counter() - t0)
    return 0


def _sweep(spec, args, client=None):
    return _run_spec(spec, args, client=client)


def _run_spec(spec, args: argparse.Namespace, **kwargs):
    """Run ``spec`` into ``--out`` with the command's threads, progress and restart options."""
    from softleak.simulate.experiments import run_experiment

    return run_experiment(
        spec,
        args.out,
        threads=args.threads,
        progress=False if args.no_progress else None,
        restart=args.restart,
        **kwargs,
    )


def _report(spec, table, args, wall: float) -> None:
    from softleak.simulate.sweep import units_of

    print(
        f"{len(table)} student runs from {len(units_of(spec))} teachers in "
        f"{args.out}/results.parquet ({wall:.1f} s)"
    )
    if getattr(spec, "exact_teacher", False):
        from softleak.simulate.exact_teachers import status_line

        print(status_line(table))
