"""Export one simulated teacher's outputs as plain array files: the inputs of a leakage audit.

A ``softleak simulate multinomial|mlp`` sweep directory holds each teacher's weights
(``teachers/<teacher_id>.pt``) and, in ``config.json``, the spec that regenerates its data. From
those, ``export_teacher_outputs`` writes for one teacher (d, c, n, seed):

- ``members.npz``: its training set D_*^T -- ``inputs`` (n, d) float64 (the rows it was trained
  on), ``labels`` (n,) int64 (its random labels), ``logits`` (n, c) float64 (its outputs);
- ``holdout.npz``: the same keys on fresh non-members drawn as the sweep's D_val (same input law,
  labels uniform over the c classes, so any model scores 1/c on them in expectation);
- ``teacher.json``: what the files are (d, c, n, seed, teacher id, accuracies, experiment, the
  sweep's temperatures and teacher widths, the source directory, the seeds of both sets).

The arrays are written with ``np.savez`` (no object arrays) and load with
``np.load(path, allow_pickle=False)``; nothing is retrained.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from softleak.simulate import protocol
from softleak.simulate.data import make_validation
from softleak.simulate.device import thread_count, threads_for
from softleak.simulate.precision import DTYPES
from softleak.simulate.spec import SweepSpec
from softleak.simulate.store import Store, atomic_write_bytes

log = logging.getLogger(__name__)

#: The files written into the output directory.
MEMBERS, HOLDOUT, TEACHER_JSON = "members.npz", "holdout.npz", "teacher.json"

#: The files an export writes (besides config.json): ``restart`` clears them.
OUTPUTS = (MEMBERS, HOLDOUT, TEACHER_JSON)

#: Sweeps whose teachers give c-class logits (soft labels at a temperature).
EXPORTABLE = ("multinomial", "mlp")

#: How many available teachers an error message names at most.
LIST_AT_MOST = 24


def load_sweep_spec(sweep_dir: str | os.PathLike) -> SweepSpec:
    """The ``SweepSpec`` a sweep directory was run with (its ``config.json``).

    Raises ValueError when the directory, its config or a valid spec in it is missing.
    """
    from softleak.simulate.files import refuse_linked_records
    from softleak.simulate.rundir import COMMON_OUTPUTS, article
    from softleak.simulate.spec import EXPERIMENTS

    root = Path(sweep_dir)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    refuse_linked_records(root, COMMON_OUTPUTS)  # its records are read, never through a link
    try:
        config = Store(root).read_config()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {root}/config.json: {err}") from None
    if config is None:
        raise ValueError(f"{root} holds no config.json: not a softleak simulate sweep directory")
    if not isinstance(config, dict):
        raise ValueError(f"{root}/config.json is not a softleak config (not a JSON object)")
    kind = config.get("experiment") or (config.get("spec") or {}).get("experiment")
    if isinstance(kind, str) and kind not in EXPERIMENTS:
        raise ValueError(
            f"{root} holds {article(kind)} run, not a sweep: "
            f"export-teacher reads a {' or '.join(EXPORTABLE)} sweep folder"
        )
    if not isinstance(config.get("spec"), dict):
        raise ValueError(
            f"{root}/config.json has no sweep spec (is it a toy2d, modadd or gpt2 run? only "
            f"{' and '.join(EXPORTABLE)} sweeps can be exported)"
        )
    try:
        return SweepSpec.from_dict(config["spec"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{root}/config.json: cannot rebuild its sweep spec: {err}") from None


def saved_teachers(spec: SweepSpec, store: Store) -> list[tuple[int, int, int, int]]:
    """The teacher keys (d, c, n, seed) of ``spec`` whose weights ``store`` holds, in grid order."""
    keys = [(d, c, n, rep) for d, c, n in spec.teacher_sizes() for rep in range(spec.seeds)]
    return [k for k in keys if store.teacher_path(spec.teacher_id(*k)).exists()]


def export_teacher_outputs(
    sweep_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    n: int | None = None,
    seed: int | None = None,
    n_holdout: int | None = None,
    d: int | None = None,
    c: int | None = None,
    threads: int | None = None,
    restart: bool = False,
) -> dict:
    """Write one trained teacher's member and non-member outputs of ``sweep_dir`` into ``out_dir``.

    n: the teacher set size (default: the sweep's largest); seed: the teacher replicate (default
    0); d, c: needed only when the sweep has several input dimensions or class counts with that n.
    n_holdout: non-members to draw (default: the sweep's ``n_val``; the first of them are the
    sweep's own D_val inputs).
    threads: torch threads for the forward passes (default: 1 for small ones).
    restart: clear ``out_dir``'s records first (it follows ``simulate.rundir``'s contract: a folder
        holding another teacher's export is refused without it).

    Returns a dict of the written paths (``members``, ``holdout``, ``teacher_json``, as strings)
    and the facts in ``teacher.json``. Raises ValueError, before writing anything, when the
    directory is not an exportable sweep, or the teacher is not among those with saved weights.
    """
    spec = load_sweep_spec(sweep_dir)
    root = Path(sweep_dir)
    if spec.experiment not in EXPORTABLE:
        raise ValueError(
            f"{root} is a {spec.experiment} sweep: its teachers are binary single-logit models "
            f"(pseudo-inverse students on raw logits), not c-class soft-label teachers; export a "
            f"{' or '.join(EXPORTABLE)} sweep"
        )
    if n_holdout is not None and n_holdout < 1:
        raise ValueError(f"n_holdout must be >= 1, got {n_holdout}")
    from softleak.simulate.rundir import claim, resolve_out

    out = resolve_out(out_dir)
    store = Store(root)
    key = _pick_teacher(spec, store, root, n=n, seed=seed, d=d, c=c)
    # Weights are CPU tensors; the sweep's device does not enter a teacher's id.
    spec = dataclasses.replace(spec, device="cpu")
    states = {key: _read_teacher(store.teacher_path(spec.teacher_id(*key)))}
    m = spec.n_val if n_holdout is None else int(n_holdout)
    identity = {"source": str(root.resolve()), "teacher_id": spec.teacher_id(*key), "n_holdout": m}
    with claim(
        out,
        experiment="export-teacher",
        identity=identity,
        restart=restart,
        outputs=OUTPUTS,
        inputs=(root,),
    ) as target:
        target.write_config({"spec": spec.to_dict(), "teacher": list(key), **identity})
        return _export(spec, key, states, m, root, out, threads)


def _read_teacher(path: Path) -> list:
    """A sweep teacher's weights, read without writing to the sweep's folder (it is not ours):
    a damaged file is an error naming it, never a silent retraining."""
    from softleak.simulate.store import load_state

    try:
        state = load_state(path)  # never through a link
        return [state[f"p{i}"][0] for i in range(len(state))]
    except Exception as err:  # truncated zip, refused unpickling, not a teacher's weights
        text = f"{type(err).__name__}: {err}".splitlines()[0][:120]
        raise ValueError(
            f"the teacher file {path} is damaged ({text}); rerun the sweep command, which sets "
            "it aside and retrains that teacher"
        ) from None


def _export(spec, key, states, m, root: Path, out: Path, threads) -> dict:
    dd, cc, nn, rep = key
    with thread_count(threads_for(_forward_flops(spec, key, m), threads)):
        (teacher,) = protocol.train_teachers(spec, [key], threads=threads, states=states)
        X_out, y_out = make_validation(m, dd, cc, spec.val_seed(*key), spec.val_kind)
        with torch.no_grad():
            z_out = teacher.model.forward(torch.as_tensor(X_out, dtype=DTYPES[spec.dtype]))
    z_out = z_out[0].double().numpy()  # (m, c)
    val_acc = float(np.mean(z_out.argmax(-1) == y_out))
    facts = {
        "experiment": spec.experiment,
        "d": dd,
        "c": cc,
        "n": nn,
        "seed": rep,
        "n_holdout": m,
        "teacher_id": spec.teacher_id(*key),
        "teacher_train_acc": teacher.train_acc,
        "teacher_val_acc": val_acc,
        "chance": 1 / cc,
        "tau": [float(t) for t in spec.tau],
        "p_teacher": list(spec.p_teacher),
        "teacher_epochs": spec.teacher_epochs,
        "dtype": spec.dtype,
        "data_seed": spec.data_seed(*key),
        "holdout_seed": spec.val_seed(*key),
        "holdout_kind": spec.val_kind,
        "source": str(root.resolve()),
    }
    paths = {"members": out / MEMBERS, "holdout": out / HOLDOUT, "teacher_json": out / TEACHER_JSON}
    members = _npz_bytes(teacher.data.X, teacher.data.y, teacher.logits)
    holdout = _npz_bytes(X_out, y_out, z_out)
    atomic_write_bytes(paths["members"], members)
    atomic_write_bytes(paths["holdout"], holdout)
    # teacher.json names its neighbours relative to its own folder (the folder may move).
    names = {name: path.name for name, path in paths.items()}
    atomic_write_bytes(
        paths["teacher_json"], json.dumps({**facts, "files": names}, indent=2).encode()
    )
    log.info("exported teacher %s of %s into %s", facts["teacher_id"], root, out)
    return {**{name: str(path) for name, path in paths.items()}, **facts}


def _pick_teacher(
    spec: SweepSpec, store: Store, root: Path, *, n, seed, d, c
) -> tuple[int, int, int, int]:
    saved = saved_teachers(spec, store)
    if not saved:
        raise ValueError(
            f"{root} holds no saved teacher weights (teachers/*.pt); run or resume the sweep first"
        )
    fits = [k for k in saved if (d is None or k[0] == d) and (c is None or k[1] == c)]
    if fits and n is None:
        n = max(k[2] for k in fits)
    rep = 0 if seed is None else seed
    fits = [k for k in fits if k[2] == n and k[3] == rep]
    if len(fits) == 1:
        return fits[0]
    want = ", ".join(
        f"{name}={v}" for name, v in (("d", d), ("c", c), ("n", n), ("seed", rep)) if v is not None
    )
    listed = "; ".join(f"d={a} c={b} n={m} seed={s}" for a, b, m, s in saved[:LIST_AT_MOST])
    more = f" and {len(saved) - LIST_AT_MOST} more" if len(saved) > LIST_AT_MOST else ""
    if fits:
        raise ValueError(
            f"several teachers of {root} match {want}: give d and c; saved: {listed}{more}"
        )
    raise ValueError(f"{root} has no saved teacher with {want}; saved: {listed}{more}")


def _forward_flops(spec: SweepSpec, key: tuple, m: int) -> float:
    d, c, n, _ = key
    sizes = [d, *spec.p_teacher, c]
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return 2.0 * weights * (n + m + spec.n_val)


def _npz_bytes(inputs: np.ndarray, labels: np.ndarray, logits: np.ndarray) -> bytes:
    """One ``np.savez`` archive (in memory) with float64 inputs and logits, int64 labels."""
    buf = io.BytesIO()
    np.savez(
        buf,
        inputs=np.ascontiguousarray(inputs, dtype=np.float64),
        labels=np.ascontiguousarray(labels, dtype=np.int64),
        logits=np.ascontiguousarray(logits, dtype=np.float64),
    )
    return buf.getvalue()
