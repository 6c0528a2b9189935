"""``softleak simulate EXPERIMENT ...``: run (or resume) a sweep into a results directory."""

from __future__ import annotations

import argparse
import contextlib
import time

from softleak import args as A
from softleak.errors import UsageError

GRID_HELP = "a list 'a,b', a range 'start:stop:num' (inclusive) or 'log:start:stop:num'"

DEFAULTS = {
    # experiment: its help text (the first clause is the short help)
    "logistic-pinv": "binary logistic teacher (single logit, no bias, standardised features) and "
    "pseudo-inverse students from its raw logits (paper Fig. 4); alpha = n/d",
    "multinomial": "multinomial logistic teacher and students (c logits, no bias) trained on "
    "soft labels at temperature tau (paper Fig. 5, 13-15); alpha = n/(d c)",
    "mlp": "ReLU MLP teacher and students with biases (widths --p-teacher, --p-student) trained "
    "on soft labels at temperature tau (paper sec. 5.2, Figs. 6, 7, 16-22); alpha = n/(d c)",
}

# The reference's MLP settings (REFERENCE.md): teacher 2,000 epochs, tau = 20, p = 500.
MLP_DEFAULTS = {"teacher_epochs": 2_000, "tau": [20.0], "p_teacher": [500]}


def register(groups) -> None:
    group = groups.add_parser(
        "simulate",
        help="run teacher/student sweeps into a results directory",
        description="Run a grid of teachers and their soft-label students; re-running the same "
        "command resumes (finished runs are not recomputed). Results: DIR/results.parquet.",
    )
    commands = group.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    _register_toy2d(commands)
    _register_modadd(commands)
    _register_gpt2(commands)
    for name, description in DEFAULTS.items():
        p = commands.add_parser(name, help=description.split(";")[0], description=description)
        _add_common(p, name)
        if name == "mlp":
            p.add_argument(
                "--p-teacher",
                type=A.widths,
                default=[500],
                help="hidden widths of the teacher, e.g. 500 or 500,200 (default 500)",
            )
            p.add_argument(
                "--p-student",
                type=A.widths,
                default=None,
                help="hidden widths of the students (default: the teacher's)",
            )
            p.set_defaults(**MLP_DEFAULTS)
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
    p = commands.add_parser(
        "toy2d", help="the 2D examples of Figs. 1 and 8", description=TOY2D_HELP
    )
    g = p.add_argument_group("experiment")
    g.add_argument("--c", type=A.positive_int, default=3, help="classes (default 3)")
    g.add_argument("--n", type=A.positive_int, default=60, help="points per data set")
    g.add_argument(
        "--hidden", type=A.widths, default=[150], help="hidden widths of every network (150)"
    )
    g.add_argument("--rho", type=A.fraction, default=0.6, help="student training fraction")
    g.add_argument("--tau", type=A.positive_float, default=10.0, help="soft-label temperature")
    g.add_argument(
        "--seeds", type=A.positive_int, default=5, help="data sets, each with its own teacher"
    )
    g.add_argument(
        "--student-seeds", type=A.positive_int, default=1, help="students per data set and kind"
    )
    t = p.add_argument_group("training")
    t.add_argument("--teacher-epochs", type=A.positive_int, default=4_000, help="most epochs")
    t.add_argument(
        "--teacher-stop-acc",
        type=A.fraction,
        default=None,
        help="stop each teacher once its train accuracy exceeds this (default: fixed epochs)",
    )
    t.add_argument("--teacher-lr", type=A.positive_float, default=1e-3, help="teacher Adam lr")
    t.add_argument("--student-epochs", type=A.positive_int, default=4_000, help="student epochs")
    t.add_argument("--student-lr", type=A.positive_float, default=1e-3, help="student Adam lr")
    t.add_argument("--grid", type=A.positive_int, default=150, help="decision-map resolution")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    r = p.add_argument_group("execution")
    r.add_argument("--seed", type=A.nonnegative_int, default=0, help="base seed")
    r.add_argument("--device", default="cpu", help="cpu (default; the problem is tiny) or cuda")
    r.add_argument("--threads", type=A.positive_int, default=1, help="torch threads (1)")
    _add_restart(r)
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--out", required=True, help="results directory (created; finished if present)")
    p.set_defaults(handler=run_toy2d)


def run_toy2d(args: argparse.Namespace) -> int:
    from softleak.simulate.device import resolve_device
    from softleak.simulate.experiments import run_experiment
    from softleak.simulate.toy2d import Toy2DSpec

    try:
        spec = Toy2DSpec(
            c=args.c,
            n=args.n,
            hidden=tuple(args.hidden),
            rho=args.rho,
            tau=args.tau,
            seeds=args.seeds,
            student_seeds=args.student_seeds,
            seed=args.seed,
            teacher_epochs=args.teacher_epochs,
            teacher_stop_acc=args.teacher_stop_acc,
            teacher_lr=args.teacher_lr,
            student_epochs=args.student_epochs,
            student_lr=args.student_lr,
            grid=args.grid,
            dtype=args.dtype,
            device=resolve_device(args.device),
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    t0 = time.perf_counter()
    table = run_experiment(
        spec,
        args.out,
        threads=args.threads,
        progress=False if args.no_progress else None,
        restart=args.restart,
    )
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
    p = commands.add_parser(
        "modadd",
        help="modular addition with transformers or MLPs (Figs. 3, 10, 11)",
        description=MODADD_HELP,
    )
    g = p.add_argument_group("task and models")
    g.add_argument(
        "--model",
        choices=["transformer", "mlp"],
        default="transformer",
        help="the 1-layer transformer (Fig. 3, default) or the [200, 200] ReLU MLP (Fig. 11)",
    )
    g.add_argument("--p", type=A.positive_int, default=113, help="modulus (default 113)")
    g.add_argument(
        "--train-frac",
        type=A.fraction,
        default=0.3,
        help="teacher's share of the p^2 pairs; the rest is validation (default 0.3)",
    )
    g.add_argument("--d-model", type=A.positive_int, default=128, help="transformer width (128)")
    g.add_argument("--n-heads", type=A.positive_int, default=4, help="attention heads (4)")
    g.add_argument("--d-head", type=A.positive_int, default=32, help="width per head (32)")
    g.add_argument("--d-mlp", type=A.positive_int, default=512, help="transformer MLP width (512)")
    g.add_argument(
        "--hidden", type=A.widths, default=[200, 200], help="MLP hidden widths (200,200)"
    )
    t = p.add_argument_group("teacher")
    t.add_argument(
        "--checkpoints",
        type=A.int_grid,
        default=None,
        help="epochs at which the teacher is saved (default: the paper's, 2500,5000,10000 for "
        "the transformer, 5000,10000,20000 for the MLP; none when --stop-rule is given)",
    )
    t.add_argument(
        "--stop-rule",
        action="append",
        default=[],
        metavar="RULE",
        help="also save the teacher at the first evaluated epoch where RULE holds: memorized "
        "(train acc 1, val acc < 0.05), grokked (val acc > 0.99) or NAME:COND&COND with "
        "conditions on epoch, train_acc, val_acc, train_loss, val_loss (e.g. "
        "half:val_acc>=0.5); repeatable",
    )
    t.add_argument(
        "--teacher-epochs",
        type=A.positive_int,
        default=None,
        help="most teacher epochs (default: the last checkpoint); it stops earlier once every "
        "checkpoint is taken",
    )
    t.add_argument("--teacher-lr", type=A.positive_float, default=1e-3, help="AdamW lr (1e-3)")
    t.add_argument(
        "--weight-decay", type=A.nonnegative_float, default=1.0, help="teacher weight decay (1)"
    )
    t.add_argument(
        "--teacher-curve-every",
        type=A.positive_int,
        default=10,
        help="record the teacher's train/val loss and accuracy (and check stop rules) every K "
        "epochs (10)",
    )
    s = p.add_argument_group("students")
    s.add_argument(
        "--rho",
        type=A.fraction_grid,
        default=[0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9],
        help=f"student training fractions of the teacher's data ({GRID_HELP}; paper's default)",
    )
    s.add_argument(
        "--tau",
        type=A.positive_grid,
        default=[0.1, 1.0, 10.0],
        help="soft-label temperatures (0.1,1,10)",
    )
    s.add_argument(
        "--student-epochs", type=A.positive_int, default=40_000, help="full-batch steps (40,000)"
    )
    s.add_argument(
        "--student-seeds",
        type=A.positive_int,
        default=3,
        help="repetitions, each with its own data split and initialisation (3)",
    )
    s.add_argument("--student-lr", type=A.positive_float, default=1e-3, help="AdamW lr (1e-3)")
    s.add_argument(
        "--student-weight-decay",
        type=A.nonnegative_float,
        default=1.0,
        help="student weight decay (1)",
    )
    s.add_argument(
        "--curve-every",
        type=A.nonnegative_int,
        default=100,
        help="record student learning curves every K epochs into curves.parquet (100; 0: none)",
    )
    s.add_argument(
        "--batch-by",
        choices=["rho", "checkpoint"],
        default="rho",
        help="replica batches: one per rho (no padded rows; default) or all students of a "
        "checkpoint at once (rows padded to the largest rho; fewer, larger steps for a GPU)",
    )
    s.add_argument(
        "--max-replicas", type=A.positive_int, default=512, help="most students in one batch"
    )
    r = p.add_argument_group("execution")
    r.add_argument("--warmup", type=A.nonnegative_int, default=10, help="linear warm-up steps")
    r.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    r.add_argument("--seed", type=A.nonnegative_int, default=0, help="base seed")
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

    try:
        return ModAddSpec(
            model=args.model,
            p=args.p,
            train_frac=args.train_frac,
            teacher_epochs=args.teacher_epochs,
            checkpoints=None if args.checkpoints is None else tuple(args.checkpoints),
            stop_rules=tuple(args.stop_rule),
            rho=tuple(args.rho),
            tau=tuple(args.tau),
            student_epochs=args.student_epochs,
            student_seeds=args.student_seeds,
            teacher_lr=args.teacher_lr,
            student_lr=args.student_lr,
            teacher_weight_decay=args.weight_decay,
            student_weight_decay=args.student_weight_decay,
            warmup=args.warmup,
            d_model=args.d_model,
            n_heads=args.n_heads,
            d_head=args.d_head,
            d_mlp=args.d_mlp,
            hidden=tuple(args.hidden),
            teacher_curve_every=args.teacher_curve_every,
            curve_every=args.curve_every,
            seed=args.seed,
            dtype=args.dtype,
            device=resolve_device(args.device),
            batch_by=args.batch_by,
            max_replicas=args.max_replicas,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None


def run_modadd(args: argparse.Namespace) -> int:
    from softleak.simulate.experiments import run_experiment

    spec = modadd_spec_from_args(args)
    t0 = time.perf_counter()
    table = run_experiment(
        spec,
        args.out,
        threads=args.threads,
        progress=False if args.no_progress else None,
        restart=args.restart,
    )
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
    p = commands.add_parser(
        "gpt2", help="GPT-2 classifiers on random sequences (Fig. 9)", description=GPT2_HELP
    )
    g = p.add_argument_group("data")
    g.add_argument("--n", type=A.positive_int, default=6_000, help="teacher sequences (6,000)")
    g.add_argument(
        "--vocab", type=A.positive_int, default=1_000, help="numbers uniform in 1..V (1,000)"
    )
    g.add_argument("--c", type=A.positive_int, default=1_000, help="classes (1,000)")
    g.add_argument(
        "--n-val", type=A.positive_int, default=1_000, help="fresh sequences for chance (1,000)"
    )
    m = p.add_argument_group("model")
    m.add_argument(
        "--pretrained",
        default=None,
        metavar="DIR",
        help="local Hugging Face folder with a GPT-2 model and its tokenizer (save_pretrained "
        "layout); default: a model built from --config",
    )
    m.add_argument(
        "--config",
        choices=["small", "tiny"],
        default="small",
        help="shape without --pretrained: small = GPT-2 124M (12 x 768, 12 heads), tiny = 2 x 128, "
        "4 heads (default small)",
    )
    m.add_argument("--n-layer", type=A.positive_int, default=None, help="override: layers")
    m.add_argument("--n-embd", type=A.positive_int, default=None, help="override: width")
    m.add_argument("--n-head", type=A.positive_int, default=None, help="override: heads")
    m.add_argument(
        "--dropout",
        type=A.nonnegative_float,
        default=None,
        help="dropout of every layer (default: the model's, 0.1 for GPT-2)",
    )
    m.add_argument("--max-length", type=A.positive_int, default=10, help="tokens per sequence (10)")
    m.add_argument(
        "--independent-init",
        action="store_true",
        help="without --pretrained: every model gets its own random init (default: teacher and "
        "students share one random body, as pretrained weights would, and differ in the head)",
    )
    t = p.add_argument_group("training")
    t.add_argument("--teacher-epochs", type=A.positive_int, default=100, help="(100)")
    t.add_argument("--student-epochs", type=A.positive_int, default=200, help="(200)")
    t.add_argument("--teacher-lr", type=A.positive_float, default=5e-4, help="AdamW lr (5e-4)")
    t.add_argument("--student-lr", type=A.positive_float, default=5e-4, help="AdamW lr (5e-4)")
    t.add_argument("--teacher-batch", type=A.positive_int, default=64, help="batch size (64)")
    t.add_argument("--student-batch", type=A.positive_int, default=32, help="batch size (32)")
    t.add_argument(
        "--weight-decay", type=A.nonnegative_float, default=0.01, help="AdamW weight decay (0.01)"
    )
    t.add_argument("--clip", type=A.positive_float, default=1.0, help="grad-norm clip (1.0)")
    s = p.add_argument_group("students")
    s.add_argument(
        "--rho",
        type=A.fraction_grid,
        default=[0.2, 0.5, 0.8],
        help=f"student training fractions ({GRID_HELP}; default 0.2,0.5,0.8)",
    )
    s.add_argument("--tau", type=A.positive_grid, default=[20.0], help="temperatures (20)")
    s.add_argument(
        "--student-seeds",
        type=A.positive_int,
        default=1,
        help="repetitions, each with its own split and initialisation (1)",
    )
    r = p.add_argument_group("execution")
    r.add_argument("--seed", type=A.nonnegative_int, default=0, help="base seed")
    r.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    r.add_argument(
        "--no-amp", action="store_true", help="no bfloat16 autocast on CUDA (float32 throughout)"
    )
    _add_run_directory_options(r)
    p.set_defaults(handler=run_gpt2)


def gpt2_spec_from_args(args: argparse.Namespace):
    """The validated ``GPT2Spec`` of the command line (UsageError on bad input)."""
    from softleak.simulate.device import resolve_device
    from softleak.simulate.gpt2 import GPT2Spec

    if args.pretrained is not None and any(
        v is not None for v in (args.n_layer, args.n_embd, args.n_head)
    ):
        raise UsageError(
            "--n-layer/--n-embd/--n-head shape a model built from a config, not a --pretrained one"
        )
    try:
        return GPT2Spec(
            n=args.n,
            vocab=args.vocab,
            c=args.c,
            n_val=args.n_val,
            rho=tuple(args.rho),
            tau=tuple(args.tau),
            student_seeds=args.student_seeds,
            pretrained=args.pretrained,
            config=args.config,
            n_layer=args.n_layer,
            n_embd=args.n_embd,
            n_head=args.n_head,
            dropout=args.dropout,
            max_length=args.max_length,
            shared_init=not args.independent_init,
            teacher_epochs=args.teacher_epochs,
            student_epochs=args.student_epochs,
            teacher_lr=args.teacher_lr,
            student_lr=args.student_lr,
            teacher_batch=args.teacher_batch,
            student_batch=args.student_batch,
            weight_decay=args.weight_decay,
            clip=args.clip,
            seed=args.seed,
            amp=not args.no_amp,
            device=resolve_device(args.device),
        )
    except ValueError as err:
        raise UsageError(str(err)) from None


def run_gpt2(args: argparse.Namespace) -> int:
    from softleak.simulate.experiments import run_experiment
    from softleak.simulate.gpt2 import GPT2Error, check_pretrained

    spec = gpt2_spec_from_args(args)
    try:
        if spec.pretrained is not None:
            check_pretrained(spec.pretrained)
        t0 = time.perf_counter()
        table = run_experiment(
            spec,
            args.out,
            threads=args.threads,
            progress=False if args.no_progress else None,
            restart=args.restart,
        )
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


def _add_common(p: argparse.ArgumentParser, experiment: str) -> None:
    single = experiment == "logistic-pinv"
    g = p.add_argument_group("grid")
    g.add_argument("--d", type=A.int_grid, default=[200], help=f"input dimensions ({GRID_HELP})")
    if not single:
        g.add_argument("--c", type=A.int_grid, default=[2], help="numbers of classes")
    size = g.add_mutually_exclusive_group()
    size.add_argument(
        "--alpha",
        type=A.positive_grid,
        help="sample complexities, "
        + ("n/d" if single else "n/(d c)")
        + "; n is rounded to a multiple of c (default 0.5:2.5:9)",
    )
    size.add_argument("--n", type=A.int_grid, help="teacher set sizes instead of --alpha")
    g.add_argument(
        "--rho", type=A.fraction_grid, default=[0.8], help="student training fractions in (0, 1)"
    )
    if not single:
        g.add_argument(
            "--tau", type=A.positive_grid, default=[1.0], help="soft-label temperatures > 0"
        )
        g.add_argument(
            "--ablation",
            default="none",
            help="comma-separated soft-label ablations: none, zero_smallest:K, top_k:K, "
            "zero_class:J, drop_class:J",
        )
    g.add_argument(
        "--seeds",
        type=A.positive_int,
        default=1,
        help="teacher replicates (independent data and initialisation)",
    )
    g.add_argument(
        "--shuffle",
        choices=["no", "yes", "both"],
        default="no",
        help="within-class shuffle control of the soft labels",
    )
    g.add_argument(
        "--nested-data",
        action="store_true",
        help="one data set per seed whose balanced prefixes serve every n (common "
        "random numbers: teachers across alpha share one input matrix)",
    )
    t = p.add_argument_group("training")
    t.add_argument(
        "--teacher-epochs",
        type=A.positive_int,
        default=10_000,
        help="full-batch Adam steps of the teacher (reference: 10,000)",
    )
    t.add_argument("--teacher-lr", type=A.positive_float, default=1e-3, help="teacher Adam lr")
    if not single:
        t.add_argument(
            "--student-epochs",
            type=A.positive_int,
            default=10_000,
            help="student full-batch Adam steps or L-BFGS iterations",
        )
        t.add_argument(
            "--student-lr",
            type=A.positive_float,
            default=1e-4,
            help="student Adam lr (reference: 1e-4)",
        )
        t.add_argument(
            "--student-seeds",
            type=A.positive_int,
            default=1,
            help="student initialisations per setting",
        )
        t.add_argument(
            "--solver",
            choices=["adam", "lbfgs"],
            default="adam",
            help="adam: the paper's finite-time protocol; lbfgs: solve the convex "
            "student problem to convergence",
        )
        t.add_argument(
            "--student-init",
            choices=["default", "zero"],
            default="default",
            help="student initialisation (zero: gradient methods converge to the "
            "projection of the teacher)",
        )
        t.add_argument(
            "--curve-every",
            type=A.nonnegative_int,
            default=0,
            help="record student learning curves every K epochs into curves.parquet",
        )
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="per-feature standardisation of the inputs (default: on for "
        "logistic-pinv as in the reference, off otherwise)",
    )
    t.add_argument(
        "--val-kind",
        choices=["gaussian", "uniform"],
        default="gaussian",
        help="validation inputs (uniform [0,1) reproduces the reference's quirk)",
    )
    t.add_argument("--n-val", type=A.positive_int, default=1000, help="validation set size")
    r = p.add_argument_group("execution")
    r.add_argument("--seed", type=A.nonnegative_int, default=0, help="base seed")
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
        "--max-replicas",
        type=A.positive_int,
        default=512,
        help="most students trained in one batch (also capped by the device's free memory)",
    )
    r.add_argument(
        "--allow-tf32",
        action="store_true",
        help="TF32 matrix multiplies on CUDA for teacher/student GEMMs (faster; may move "
        "thresholds, see simulate.precision; soft labels and losses stay float32)",
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
    from softleak.simulate.spec import SweepSpec

    single = args.experiment == "logistic-pinv"
    alpha = args.alpha
    if alpha is None and args.n is None:
        alpha = [0.5 + 0.25 * i for i in range(9)]
    try:
        if device is None:
            device = resolve_device(args.device)
        return SweepSpec(
            experiment=args.experiment,
            d=tuple(int(v) for v in args.d),
            c=(2,) if single else tuple(int(v) for v in args.c),
            alpha=None if alpha is None else tuple(alpha),
            n=None if args.n is None else tuple(int(v) for v in args.n),
            rho=tuple(args.rho),
            tau=(1.0,) if single else tuple(args.tau),
            seeds=args.seeds,
            student_seeds=1 if single else args.student_seeds,
            seed=args.seed,
            shuffle=args.shuffle,
            ablation=("none",) if single else tuple(a.strip() for a in args.ablation.split(",")),
            teacher_epochs=args.teacher_epochs,
            student_epochs=1 if single else args.student_epochs,
            teacher_lr=args.teacher_lr,
            student_lr=1e-4 if single else args.student_lr,
            solver="adam" if single else args.solver,
            student_init="default" if single else args.student_init,
            dtype=args.dtype,
            device=device,
            nested_data=args.nested_data,
            standardize=args.standardize,
            val_kind=args.val_kind,
            n_val=args.n_val,
            curve_every=0 if single else args.curve_every,
            max_replicas=args.max_replicas,
            p_teacher=tuple(getattr(args, "p_teacher", None) or ()),
            p_student=tuple(
                getattr(args, "p_student", None) or getattr(args, "p_teacher", None) or ()
            ),
        )
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
    from softleak.simulate.experiments import run_experiment

    return run_experiment(
        spec,
        args.out,
        threads=args.threads,
        progress=False if args.no_progress else None,
        client=client,
        allow_tf32=args.allow_tf32,
        restart=args.restart,
    )


def _report(spec, table, args, wall: float) -> None:
    from softleak.simulate.sweep import units_of

    print(
        f"{len(table)} student runs from {len(units_of(spec))} teachers in "
        f"{args.out}/results.parquet ({wall:.1f} s)"
    )
