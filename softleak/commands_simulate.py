"""``softleak simulate EXPERIMENT ...``: run (or resume) a sweep into a results directory.

The options come from the specs' declared fields (``softleak.spec_args``); what stays here is each
experiment's description, its execution options and its one-line report (about 500 lines, most of
them the help texts of six experiments and ``export-teacher``)."""

from __future__ import annotations

import argparse
import contextlib
import time

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
    _register_toy2d(commands)
    _register_modadd(commands)
    _register_gpt2(commands)
    _register_canaries(commands)
    from softleak.simulate.spec import EXPERIMENT_OPTIONS

    for name, options in EXPERIMENT_OPTIONS.items():
        description = options["help"]
        p = commands.add_parser(name, help=description.split(";")[0], description=description)
        _add_sweep_options(p, name)
        p.set_defaults(handler=run)
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


TOY2D_HELP = (
    "the 2D examples (paper Figs. 1 and 8): an MLP teacher memorizes 60 random points in "
    "[-1, 1]^2 with random labels; a soft-label student and a hard-label baseline learn from 60% "
    "and are tested on the other 40%. Defaults are Fig. 1's (c = 3); Fig. 8 is --c 20 --hidden "
    "300 --tau 20 --teacher-epochs 8000 --teacher-stop-acc 0.999 --student-lr 0.01"
)


def _register_toy2d(commands) -> None:
    from softleak.simulate.toy2d import Toy2DSpec
    from softleak.spec_args import add_spec_options

    p = commands.add_parser(
        "toy2d", help="the 2D examples of Figs. 1 and 8", description=TOY2D_HELP
    )
    r = add_spec_options(p, Toy2DSpec)["execution"]
    r.add_argument("--device", default="cpu", help="cpu (default; the problem is tiny) or cuda")
    r.add_argument("--threads", type=A.positive_int, default=1, help="torch threads (1)")
    _add_restart(r)
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--out", required=True, help="results directory (created; finished if present)")
    p.set_defaults(handler=run_toy2d)


def run_toy2d(args: argparse.Namespace) -> int:
    from softleak.simulate.device import resolve_device
    from softleak.simulate.toy2d import Toy2DSpec
    from softleak.spec_args import spec_values

    try:
        spec = Toy2DSpec(**spec_values(args, Toy2DSpec), device=resolve_device(args.device))
    except ValueError as err:
        raise UsageError(str(err)) from None
    t0 = time.perf_counter()
    table = _run_spec(spec, args)
    acc = table.groupby("student_kind")["student_test_acc"].agg(["mean", "sem"])
    teacher = table.drop_duplicates("seed")["teacher_train_acc"].mean()
    print(
        f"held-out accuracy over {spec.seeds} data sets (chance {1 / spec.c:.3f}; teacher train "
        f"acc {teacher:.3f}): soft-label student {acc.loc['soft', 'mean']:.3f} +- "
        f"{acc.loc['soft', 'sem']:.3f}, hard-label baseline {acc.loc['hard', 'mean']:.3f} +- "
        f"{acc.loc['hard', 'sem']:.3f}  ({args.out}, {time.perf_counter() - t0:.1f} s)"
    )
    return 0


MODADD_HELP = (
    "modular addition (paper sec. 4, Fig. 3; appendix C, Figs. 10-11): a teacher learns (a + b) "
    "mod p from a seeded share of the p^2 pairs (tokens a, b, '='), is saved at checkpoints "
    "(fixed epochs or the first epoch a stop rule holds), and per checkpoint students of the same "
    "architecture learn its soft labels at temperature tau on a rho share of its data; they are "
    "tested on the rest of its data (held-out memorized pairs) and on the unseen pairs. "
    "Defaults are the paper's: p = 113, 30% teacher data, the 1-layer transformer of Nanda et "
    "al. (2023) (Fig. 11: --model mlp), AdamW lr 1e-3, weight decay 1, betas (0.9, 0.98), "
    "10-step warm-up, full batch; teachers at 2,500/5,000/10,000 epochs (MLP 5,000/10,000/20,000); "
    "students 40,000 epochs, rho 0.05...0.9, tau 0.1,1,10, 3 repetitions. That is a GPU job "
    "(on a 2-core CPU a teacher epoch takes ~0.15 s, a student epoch ~rho x 0.13 s). On a CPU, "
    "e.g. --train-frac 0.4 --teacher-lr 3e-3 --checkpoints 100 --stop-rule 'half:val_acc>=0.5' "
    "--stop-rule grokked --teacher-epochs 1500 memorizes by epoch 100 (val acc ~0.15) and "
    "groks by ~550 (~1.5 min), with a small student grid. Re-running the same command resumes; "
    "a directory holding other settings is refused unless --restart."
)


def _register_modadd(commands) -> None:
    from softleak.simulate.modadd import ModAddSpec
    from softleak.spec_args import add_spec_options

    p = commands.add_parser(
        "modadd",
        help="modular addition with transformers or MLPs (Figs. 3, 10, 11)",
        description=MODADD_HELP,
    )
    r = add_spec_options(p, ModAddSpec)["execution"]
    r.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    _add_run_directory_options(r)
    p.set_defaults(handler=run_modadd)


def _add_run_directory_options(r) -> None:
    """--threads, --restart, --no-progress, --out of the single-run experiments (modadd, gpt2)."""
    r.add_argument(
        "--threads",
        type=A.positive_int,
        default=None,
        help="torch threads (default: 1 for small steps, all cores on an idle machine)",
    )
    _add_restart(r)
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--out", required=True, help="results directory (created; resumed if present)")


def modadd_spec_from_args(args: argparse.Namespace):
    """The validated ``ModAddSpec`` of the command line (UsageError on bad input)."""
    from softleak.simulate.device import resolve_device
    from softleak.simulate.modadd import ModAddSpec
    from softleak.spec_args import spec_values

    try:
        return ModAddSpec(**spec_values(args, ModAddSpec), device=resolve_device(args.device))
    except ValueError as err:
        raise UsageError(str(err)) from None


def run_modadd(args: argparse.Namespace) -> int:

    spec = modadd_spec_from_args(args)
    t0 = time.perf_counter()
    table = _run_spec(spec, args)
    if len(table):
        summary = table.groupby("checkpoint", sort=False).agg(
            epoch=("teacher_epoch", "first"),
            teacher_train=("teacher_train_acc", "first"),
            teacher_val=("teacher_val_acc", "first"),
            test=("student_test_acc", "mean"),
            val=("student_val_acc", "mean"),
        )
        for name, row in summary.iterrows():
            print(
                f"teacher {name} (epoch {int(row.epoch)}: train acc {row.teacher_train:.3f}, val acc "
                f"{row.teacher_val:.3f}): students' mean held-out acc {row.test:.3f}, val acc "
                f"{row.val:.3f}"
            )
    print(
        f"{len(table)} student runs in {args.out}/results.parquet ({time.perf_counter() - t0:.1f} s)"
    )
    return 0


GPT2_HELP = (
    "GPT-2 classifiers on random sequences (paper appendix B, Fig. 9): n distinct sequences "
    "'a_b_c' of three integers uniform in 1..V, each with a class uniform over c; a GPT-2 "
    "sequence-classification teacher memorizes them, and students of the same architecture learn "
    "its soft labels at temperature tau on a rho share of them; they are tested on the rest "
    "(held-out memorized sequences) and on fresh random sequences (chance). Defaults are the "
    "paper's: n = 6,000, V = c = 1,000, AdamW lr 5e-4, grad-norm clip 1, teacher batch 64 for "
    "100 epochs, students batch 32 for 200 epochs, tau 20, rho 0.2,0.5,0.8. --pretrained DIR loads "
    "weights and tokenizer from a local Hugging Face folder (the paper: GPT-2 124M); without it "
    "the model is built from --config (small: GPT-2 124M's shape; tiny: 2 layers of width 128) "
    "with a word-level tokenizer over '0'..'V' and '_'. Nothing is downloaded. A GPU job at the "
    "paper's size; on a CPU e.g. --config tiny --n 1000 --c 50 --vocab 100 --dropout 0. Needs "
    "transformers (pip install 'softleak[gpt2]'). Re-running the same command resumes (saved "
    "teacher reused, finished students skipped); a directory holding other settings is refused "
    "unless --restart."
)


def _register_gpt2(commands) -> None:
    from softleak.simulate.gpt2 import GPT2Spec
    from softleak.spec_args import add_spec_options

    p = commands.add_parser(
        "gpt2", help="GPT-2 classifiers on random sequences (Fig. 9)", description=GPT2_HELP
    )
    r = add_spec_options(p, GPT2Spec)["execution"]
    r.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    r.add_argument(
        "--no-amp",
        action="store_true",
        help="deprecated: fp32 is the default now (reduced products: --precision bf16 or bf16r)",
    )
    _add_run_directory_options(r)
    p.set_defaults(handler=run_gpt2)


def gpt2_spec_from_args(args: argparse.Namespace):
    """The validated ``GPT2Spec`` of the command line (UsageError on bad input)."""
    from softleak.simulate.device import resolve_device
    from softleak.simulate.gpt2 import GPT2Spec
    from softleak.spec_args import spec_values

    if args.pretrained is not None and any(
        v is not None for v in (args.n_layer, args.n_embd, args.n_head)
    ):
        raise UsageError(
            "--n-layer/--n-embd/--n-head shape a model built from a config, not a --pretrained one"
        )
    if args.no_amp:
        import logging

        logging.getLogger(__name__).warning("--no-amp is deprecated: fp32 is the default")
    try:
        return GPT2Spec(**spec_values(args, GPT2Spec), device=resolve_device(args.device))
    except ValueError as err:
        raise UsageError(str(err)) from None


def run_gpt2(args: argparse.Namespace) -> int:
    from softleak.simulate.gpt2 import GPT2Error, check_pretrained

    spec = gpt2_spec_from_args(args)
    try:
        if spec.pretrained is not None:
            check_pretrained(spec.pretrained)
        t0 = time.perf_counter()
        table = _run_spec(spec, args)
    except GPT2Error as err:
        raise UsageError(str(err)) from None
    row = table.iloc[0]
    print(
        f"teacher train acc {row.teacher_train_acc:.3f}, val acc {row.teacher_val_acc:.3f} "
        f"(chance {1 / spec.c:.4f})"
    )
    means = table.groupby(["rho", "tau"])[["student_train_acc", "student_test_acc"]].mean()
    for (rho, tau), m in means.iterrows():
        print(
            f"rho {rho:g}, tau {tau:g}: student train acc {m.student_train_acc:.3f}, held-out acc "
            f"{m.student_test_acc:.3f}"
        )
    print(
        f"{len(table)} student runs in {args.out}/results.parquet ({time.perf_counter() - t0:.1f} s)"
    )
    return 0


CANARIES_HELP = (
    "memorized canaries on a real data set (beyond the paper): a teacher learns the training "
    "split of --data plus k canaries -- training points whose labels are replaced by labels "
    "drawn uniformly from all c classes, independently of the input -- until it fits them; "
    "students learn its soft labels on a fraction rho of the clean training points and rho_c "
    "of the canaries (0: they never see one) and are asked the planted labels of the canaries "
    "they did not see, next to the null of unplanted points (held-out clean points with "
    "phantom labels drawn the same way: expectation 1/c), a hard-label student and the "
    "within-class shuffle control. Architectures: mlp, cnn (images) or your own "
    "FILE.py:NAME (a function NAME(in_shape, c) returning a torch.nn.Module; the file runs only "
    "because you name it, and the run records its SHA-256 and the module's parameter shapes). "
    "Prints the recovery table with t intervals over seeds and the label-DP epsilon lower bound "
    "per setting (valid here: the planted labels are uniform and independent of the inputs). "
    "The bundled data sets need scikit-learn (pip install 'softleak[real]'). Defaults take ~10 "
    "min on a 2-core CPU (figs canaries --preset quick is the few-minute version). Re-running "
    "the same command resumes; growing --seeds, --k, --rho or --rho-c keeps finished units"
)


def _register_canaries(commands) -> None:
    from softleak.simulate.canary_spec import CanarySpec
    from softleak.spec_args import add_spec_options

    p = commands.add_parser(
        "canaries",
        help="memorized canaries on a real data set: recovery of held-out canaries",
        description=CANARIES_HELP,
    )
    r = add_spec_options(p, CanarySpec)["execution"]
    r.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    r.add_argument("--json", action="store_true", help="print the recovery table as JSON rows")
    _add_run_directory_options(r)
    p.set_defaults(handler=run_canaries)


def run_canaries(args: argparse.Namespace) -> int:

    from softleak.compare.canaries import canary_recovery
    from softleak.simulate.canary_spec import CanarySpec
    from softleak.simulate.device import resolve_device
    from softleak.simulate.rundir import RunDirError, resolve_out
    from softleak.spec_args import spec_values

    resolve_out(args.out)
    try:
        spec = CanarySpec(**spec_values(args, CanarySpec), device=resolve_device(args.device))
    except ValueError as err:
        raise UsageError(str(err)) from None
    t0 = time.perf_counter()
    try:
        table = _run_spec(spec, args)
    except RunDirError:
        raise
    except ValueError as err:  # data, factory files, shapes: the user's input
        raise UsageError(str(err)) from None
    summary = canary_recovery(table)
    if args.json:
        print(summary.table.to_json(orient="records"))
        return 0
    print(summary.markdown())
    print(
        f"\n{len(table)} students in {args.out}/results.parquet ({time.perf_counter() - t0:.1f} s)"
    )
    return 0


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
