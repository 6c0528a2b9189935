"""``softleak audit``: how much of a teacher's memorized training data its soft labels leak, and
which release setting stops it at what cost."""

from __future__ import annotations

import argparse
import json
from typing import Any

from softleak import args as A
from softleak.errors import UsageError

DESCRIPTION = (
    "Audit a teacher's soft labels before you release them. Students (linear, an MLP, a CNN or "
    "your own torch module from FILE.py:NAME) learn "
    "the released labels of a fraction rho of the teacher's training set (the members) and are "
    "tested on the held-out rest; leakage = their accuracy there minus their accuracy on "
    "non-members (--holdout-*, or chance without them). Each release setting (--settings) is "
    "audited with confidence intervals over --seeds repetitions (they carry the baseline's own "
    "uncertainty: a holdout needs at least 30 non-members, and the verdict says when it is too "
    "small for the tolerance); utility = agreement with the "
    "teacher on non-members. In privacy terms: an audited label-DP epsilon lower bound, "
    "membership inference through the student (AUC, TPR at 1% and 0.1% FPR, ROC) and the "
    "precision of its most confident 1% and 10% of held-out-member predictions. Writes "
    "OUT/results.parquet (one row per student), OUT/examples.parquet (per-example scores), "
    "OUT/config.json and OUT/report/ (report.html, report.md, report.json, examples.parquet, CSV "
    "tables, privacy_utility.png, roc.png) and prints the report with a plain-language verdict "
    "(Holm-corrected across the settings). Rerunning the same command resumes. Files: NumPy "
    ".npy/.npz, Parquet or PyTorch tensor files (read with allow_pickle=False / "
    "weights_only=True); name an array inside a file as FILE:KEY."
)

SETTINGS_HELP = (
    "comma-separated release settings (default: soft, tau:TAU/4, tau:4TAU, top_k:2, top_k:5, "
    "round:1, round:2, noise:1, noise:3, hard, shuffle): soft (softmax(logits/tau) as is), "
    "tau:T (another temperature), top_k:K (K largest entries, renormalised), round:D (rounded "
    "to D decimals), noise:S (Gaussian noise of std S on logits/tau), hard (argmax only), "
    "shuffle (control: soft labels permuted within each class; should leak nothing)"
)


#: The one-line help of ``softleak audit`` (the top-level --help lists it).
HELP = "measure how much a teacher's soft labels leak its training data"


def register(groups) -> None:
    p = groups.add_parser(
        "audit",
        help=HELP,
        description=DESCRIPTION,
    )
    _add_data_args(p)
    _add_release_args(p)
    _add_student_args(p)
    _add_report_args(p)
    p.set_defaults(handler=run)


def _add_data_args(p: argparse.ArgumentParser) -> None:
    """The teacher's outputs on members and (optionally) non-members."""
    data = p.add_argument_group("teacher outputs (members: its training set)")
    data.add_argument("--logits", metavar="FILE", help="logits on the members, (n, c)")
    data.add_argument("--labels", metavar="FILE", help="the members' labels, (n,) in 0..c-1")
    data.add_argument("--inputs", metavar="FILE", help="the members' inputs, (n, d)")
    data.add_argument(
        "--members",
        metavar="FILE",
        help="one .npz (or dict-of-tensors .pt) with arrays logits, labels, inputs: instead of "
        "the three above (e.g. what `softleak simulate export-teacher` writes)",
    )
    data.add_argument("--holdout-logits", metavar="FILE", help="logits on non-members, (t, c)")
    data.add_argument("--holdout-labels", metavar="FILE", help="the non-members' labels, (t,)")
    data.add_argument("--holdout-inputs", metavar="FILE", help="the non-members' inputs, (t, d)")
    data.add_argument(
        "--holdout",
        metavar="FILE",
        help="one .npz with logits, labels, inputs of non-members (at least 30)",
    )


def _add_release_args(p: argparse.ArgumentParser) -> None:
    """The release settings to audit."""
    rel = p.add_argument_group("release")
    rel.add_argument(
        "--tau",
        type=A.positive_float,
        default=1.0,
        help="temperature of the released soft labels (default 1)",
    )
    rel.add_argument("--settings", default=None, help=SETTINGS_HELP)


def _add_student_args(p: argparse.ArgumentParser) -> None:
    """The students that learn the released labels."""
    st = p.add_argument_group("students")
    st.add_argument(
        "--student",
        default="linear",
        metavar="ARCH",
        help="student family: linear (default), mlp (--width), cnn (images: give --input-shape "
        "C,H,W or inputs of that shape) or FILE.py:NAME, your function NAME(in_shape, c) that "
        "returns a torch.nn.Module mapping (batch, *in_shape) to (batch, c) logits; the file is "
        "executed only because you name it, and the run records its SHA-256 and the module's "
        "parameter shapes (module students: Adam, fp32)",
    )
    st.add_argument(
        "--input-shape",
        type=A.widths,
        default=None,
        metavar="C,H,W",
        help="the shape of one input for a module student, e.g. 1,8,8 (default: the inputs' "
        "own shape, flat for 2-D arrays)",
    )
    st.add_argument(
        "--width",
        type=A.widths,
        default=None,
        help="MLP hidden widths, e.g. 256 or 256,128 (default 256; with --student mlp only)",
    )
    st.add_argument(
        "--rho",
        type=A.fraction_grid,
        default=[0.25, 0.5, 0.75],
        help="fractions of the members a student learns from (default 0.25,0.5,0.75)",
    )
    st.add_argument(
        "--seeds",
        type=A.positive_int,
        default=5,
        help="repetitions (split, student init, release noise), for the intervals (default 5)",
    )
    st.add_argument(
        "--solver",
        choices=("auto", "adam", "lbfgs"),
        default="auto",
        help="auto: L-BFGS for linear students (started at the log-ratio fit), Adam for MLPs",
    )
    st.add_argument(
        "--epochs",
        type=A.positive_int,
        default=None,
        help="Adam steps or L-BFGS iterations (default: 500 L-BFGS, 2000 Adam)",
    )
    st.add_argument("--lr", type=A.positive_float, default=1e-2, help="Adam learning rate (1e-2)")
    st.add_argument(
        "--no-warm-start",
        action="store_true",
        help="start linear students at random, not at the least-squares log-ratio fit",
    )
    st.add_argument(
        "--no-certify", action="store_true", help="skip the certified fractions (linear only)"
    )
    st.add_argument("--seed", type=A.nonnegative_int, default=0, help="base seed (default 0)")


def _add_report_args(p: argparse.ArgumentParser) -> None:
    """The report (tolerance, coverage) and the run (directory, threads, device, output)."""
    rep = p.add_argument_group("report and run")
    rep.add_argument(
        "--tolerance",
        type=A.nonnegative_float,
        default=0.05,
        help="leakage you accept, in accuracy (0.05 = 5 points); a setting is safe when the "
        "upper end of its interval, at the confidence Holm's correction across the settings "
        "assigns it, is at most this (default 0.05)",
    )
    rep.add_argument(
        "--confidence",
        type=A.fraction,
        default=0.95,
        help="interval coverage before Holm's correction, and the one-sided confidence of the "
        "label-DP epsilon bound (default 0.95)",
    )
    rep.add_argument("--out", required=True, help="run directory (created; resumable)")
    rep.add_argument(
        "--restart",
        action="store_true",
        help="start over: clear the records --out holds (needed when it holds an audit of other "
        "settings or data)",
    )
    rep.add_argument("--threads", type=A.positive_int, default=None, help="torch threads")
    rep.add_argument("--no-progress", action="store_true", help="no progress bar")
    rep.add_argument(
        "--device", default="cpu", help="torch device of the students: cpu, cuda (default cpu)"
    )
    from softleak.simulate.precision import PRECISION_HELP, PRECISIONS

    rep.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP + " (default fp32)"
    )
    rep.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object {settings: [{setting, leakage, leakage_ci_low, "
        "leakage_ci_high, utility, within_tolerance, epsilon_lb, auc, tpr_at_fpr, "
        "precision_at_coverage, ...}], verdict, correction, label_prior, ...} instead of the "
        "Markdown report",
    )


def _data(args: argparse.Namespace):
    from softleak.simulate.audit_data import AuditData

    members = [args.logits, args.labels, args.inputs]
    if args.members is not None:
        if any(m is not None for m in members):
            raise UsageError("give --members or --logits/--labels/--inputs, not both")
        members = [args.members] * 3
    if any(m is None for m in members):
        raise UsageError("give --logits, --labels and --inputs (or --members FILE.npz)")
    holdout = [args.holdout_logits, args.holdout_labels, args.holdout_inputs]
    if args.holdout is not None:
        if any(h is not None for h in holdout):
            raise UsageError("give --holdout or --holdout-logits/-labels/-inputs, not both")
        holdout = [args.holdout] * 3
    if any(h is not None for h in holdout) and not all(h is not None for h in holdout):
        raise UsageError("--holdout-logits, --holdout-labels and --holdout-inputs go together")
    try:
        shape = None if args.input_shape is None else tuple(args.input_shape)
        logits, labels, inputs = (str(m) for m in members)
        h_logits, h_labels, h_inputs = holdout
        return AuditData.from_files(
            logits, labels, inputs, h_logits, h_labels, h_inputs, input_shape=shape
        )
    except ValueError as err:
        raise UsageError(str(err)) from None


def _input_files(args: argparse.Namespace) -> tuple:
    """The files the audit reads (``FILE:KEY`` without its key): --out must stay clear of them."""
    from softleak.simulate.audit_data import input_path

    names: tuple[str, ...] = ("members", "logits", "labels", "inputs", "holdout")
    names += ("holdout_logits", "holdout_labels", "holdout_inputs")
    given = (getattr(args, name) for name in names)
    return tuple(dict.fromkeys(input_path(g) for g in given if g is not None))


def _spec(args: argparse.Namespace, c: int):
    from softleak.simulate.leakage_audit import AuditSpec, releases_for

    if args.width is not None and args.student == "linear":
        raise UsageError("--width sets an MLP student's hidden widths: add --student mlp")
    given: dict[str, Any] = {}  # without --settings the spec fills in its defaults for tau
    if args.settings is not None:
        given["settings"] = tuple(s for s in args.settings.split(",") if s.strip())
    try:
        spec = AuditSpec(
            rho=tuple(args.rho),
            seeds=args.seeds,
            student=args.student,
            width=tuple(args.width or (256,)),
            tau=args.tau,
            **given,
            solver=args.solver,
            epochs=args.epochs,
            lr=args.lr,
            warm_start=not args.no_warm_start,
            certify=not args.no_certify,
            seed=args.seed,
            device=args.device,
            precision=args.precision,
        )
        releases_for(spec, c)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return spec


def run(args: argparse.Namespace) -> int:
    from softleak.compare.audit_report import audit_report
    from softleak.simulate.leakage_audit import audit
    from softleak.simulate.rundir import RunDirError, resolve_out

    out = resolve_out(args.out)
    data = _data(args)
    spec = _spec(args, data.c)
    if spec.device != "cpu":
        from softleak.simulate.device import resolve_device

        try:
            resolve_device(spec.device)
        except ValueError as err:
            raise UsageError(str(err)) from None
    try:
        result = audit(
            data,
            spec,
            out=out,
            threads=args.threads,
            progress=False if args.no_progress else None,
            restart=args.restart,
            inputs=_input_files(args),
        )
    except RunDirError:
        raise
    except ValueError as err:
        raise UsageError(str(err)) from None
    report = audit_report(result, tolerance=args.tolerance, confidence=args.confidence)
    report.write(out / "report")
    if args.json:
        print(json.dumps(report.to_json(), allow_nan=False))
    else:
        print(report.markdown())
        print(f"\nreport: {out / 'report'}")
    return 0
