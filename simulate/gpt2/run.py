"""The gpt2 experiment's run directory: ``run_gpt2`` runs (or resumes) a spec into it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from softleak.simulate.device import thread_count
from softleak.simulate.gpt2.data import make_data
from softleak.simulate.gpt2.models import (
    _transformers,
    check_pretrained,
    encode,
    load_tokenizer,
    make_model,
    model_summary,
)
from softleak.simulate.gpt2.spec import GPT2Spec, student_id
from softleak.simulate.gpt2.training import _threads, train_student, train_teacher
from softleak.simulate.minibatch import predict_logits
from softleak.simulate.progress import student_bar
from softleak.simulate.store import load_state, save_state

log = logging.getLogger(__name__)

OUTPUTS = ("config.json", "data.parquet", "teacher.pt", "teacher.json", "parts", "results.parquet")


def run_gpt2(
    spec: GPT2Spec,
    out: str | Path,
    *,
    threads: int | None = None,
    progress: bool | None = None,
    restart: bool = False,
) -> pd.DataFrame:
    """Run (or resume) ``spec`` into the directory ``out``; returns the results table.

    Checks (before writing anything) that transformers imports and that a ``pretrained`` folder
    holds a model and a tokenizer (``GPT2Error``), that the run fits in memory, and that ``out``
    holds no run of other settings (``simulate.rundir.IdentityMismatch``, unless ``restart``,
    which clears its records).
    """
    from softleak.simulate.precision import require_precision
    from softleak.simulate.rundir import check_fits, claim, resolve_out, run_config
    from softleak.simulate.store import atomic_write_parquet

    _transformers()
    if spec.pretrained is not None:
        check_pretrained(spec.pretrained)
    out = resolve_out(out)
    require_precision(spec.precision, spec.device)  # refused here, before any record
    check_fits(spec.peak_bytes(), spec.device, f"a GPT-2 of {spec.weights():,} weights")
    with claim(
        out,
        experiment="gpt2",
        identity=spec.identity(),
        restart=restart,
        legacy=_legacy_identity,
        outputs=OUTPUTS,
    ) as store:
        tokenizer = load_tokenizer(spec)
        data = make_data(spec)
        _check_saved_data(store, out, data)
        model, meta = _saved_teacher(spec, store, out, tokenizer)
        runs = spec.students()
        names = [student_id(*r) for r in runs]
        config = run_config(spec, threads)
        config["run_id"] = spec.run_id()
        config["work"] = spec.work()
        config["units"] = names
        config["tokenizer"] = {"class": type(tokenizer).__name__, "size": len(tokenizer)}
        if model is not None:
            config["model_config"] = model_summary(model)
        store.write_config(config)
        atomic_write_parquet(out / "data.parquet", data.frame())
        if model is None:
            model, meta = _new_teacher(spec, store, out, data, tokenizer, threads, config)
        with thread_count(_threads(spec, threads)):
            X = encode(tokenizer, data.texts, spec.max_length, spec.device)
            z_teacher = predict_logits(model, X, spec.eval_batch)  # (n, c) float32, eval mode
        del model
        done = store.finished(names, 1)
        pending = [r for r, name in zip(runs, names, strict=True) if name not in done]
        bar = student_bar(len(runs), len(runs) - len(pending), "gpt2", progress)
        try:
            for rho, tau, rep in pending:
                row = train_student(spec, data, tokenizer, z_teacher, meta, rho, tau, rep, threads)
                store.write_unit(student_id(rho, tau, rep), pd.DataFrame([row]))
                bar.update()
        finally:
            bar.close()
        return store.consolidate(names)


def _check_saved_data(store, out: Path, data) -> None:
    """Set aside a saved ``data.parquet`` that is not the data this spec draws."""
    from softleak.simulate.store import set_aside

    data_path = out / "data.parquet"
    saved = store.read_table(data_path)
    if saved is not None:
        try:
            pd.testing.assert_frame_equal(saved, data.frame(), check_dtype=False)
        except AssertionError:
            set_aside(out, data_path, "not the data this spec draws")


def _saved_teacher(spec: GPT2Spec, store, out: Path, tokenizer) -> tuple:
    """(model, metrics) of the teacher saved in ``out``; (None, its metrics or None) when there
    is none, or its weights do not load (those are set aside)."""
    from softleak.simulate.store import set_aside

    teacher_pt = out / "teacher.pt"
    model = None
    meta = store.read_json(out / "teacher.json")
    state = store.load_state(teacher_pt) if meta is not None else None
    if state is not None:
        model = make_model(spec, tokenizer, spec.teacher_seed())
        try:
            model.load_state_dict(state)
            log.info("reusing the saved teacher (train acc %.3f)", meta["teacher_train_acc"])
        except (RuntimeError, KeyError, TypeError):
            set_aside(out, teacher_pt, "not this model's weights")
            model = None
    return model, meta


def _new_teacher(spec: GPT2Spec, store, out: Path, data, tokenizer, threads, config: dict):
    """Train the teacher and save it (weights, then metrics, then the config with its model);
    returns (model, metrics) with the weights reloaded from disk, as a resume would."""
    from softleak.simulate.store import atomic_write_bytes

    teacher_json, teacher_pt = out / "teacher.json", out / "teacher.pt"
    model, meta = train_teacher(spec, data, tokenizer, threads)
    save_state(teacher_pt, model.state_dict())
    meta = meta | {"model_config": model_summary(model)}
    atomic_write_bytes(teacher_json, json.dumps(meta, indent=2).encode())
    config["model_config"] = meta["model_config"]
    store.write_config(config)
    model.load_state_dict(load_state(teacher_pt))  # as a resume would
    return model, meta


def _legacy_identity(old: dict) -> dict:
    """A gpt2 folder written before identities: its spec, ``amp`` (bf16 autocast, on CUDA only)
    read as its precision."""
    from softleak.simulate.precision import ARITHMETIC_KEY
    from softleak.simulate.rundir import spec_from_dict

    values = dict(old["spec"])
    amp = values.pop("amp", False) and str(values.get("device")).startswith("cuda")
    values.setdefault("precision", "bf16" if amp else "fp32")
    identity = spec_from_dict(GPT2Spec, values).identity()
    if amp:  # autocast ran whole layers in bf16: no contract of today's
        identity[ARITHMETIC_KEY] = "bf16 autocast (before precisions)"
    return identity
