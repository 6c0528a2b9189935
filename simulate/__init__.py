"""Teachers and students trained many replicas at once, sweeps, and the results store.

From Python (a notebook), one entry point runs every family into a run directory and returns its
table, resuming exactly like the command line (same run-directory contract)::

    from softleak import simulate, compare

    spec = simulate.SweepSpec("multinomial", d=(50,), c=(2,), alpha=(0.5, 1, 2), rho=(0.5,),
                              tau=(1.0,), seeds=3, teacher_epochs=500, student_epochs=500)
    table = simulate.run(spec, out="runs/demo")      # a pandas DataFrame, one row per student
    thresholds = compare.find_thresholds(table)

Importing this package stays torch-free (``softleak.compare`` reads result folders through
``softleak.simulate.store``): ``SweepSpec`` and ``run`` come from torch-free modules, and the names
that need torch (``Toy2DSpec``, ``ModAddSpec``, ``GPT2Spec``, ``AuditSpec``, ``AuditData``) load
their module on first use, as do ``CanarySpec`` (memorized canaries on a real data set),
``Factory`` (a module architecture, ``simulate.factories``) and ``load_real`` (scikit-learn's
bundled data sets or a user's arrays, ``simulate.real_data``). Every run family is registered in
``simulate.families``; the spec of a family registered there later loads here by its class name
too (``simulate.NameSpec``).
"""

from __future__ import annotations

import importlib

from softleak.simulate.spec import SweepSpec

# name -> module, imported on first use (they import torch)
_LAZY = {
    "Toy2DSpec": "softleak.simulate.toy2d",
    "ModAddSpec": "softleak.simulate.modadd",
    "GPT2Spec": "softleak.simulate.gpt2",
    "CanarySpec": "softleak.simulate.canary_spec",
    "Factory": "softleak.simulate.factories",
    "load_real": "softleak.simulate.real_data",
    "teacher_audit_data": "softleak.simulate.canaries",
    "AuditSpec": "softleak.simulate.leakage_audit",
    "AuditData": "softleak.simulate.audit_data",
    "AuditResult": "softleak.simulate.audit_result",
}

__all__ = ["SweepSpec", "run", "audit", *_LAZY]


def run(spec, out, *, threads: int | None = None, progress: bool | None = None, **kwargs):
    """Run (or resume) any spec family into the directory ``out``; returns its results table.

    ``spec`` is the spec of any family of ``simulate.families``: a ``SweepSpec`` (logistic-pinv,
    multinomial, mlp), ``Toy2DSpec``, ``ModAddSpec``, ``GPT2Spec`` or ``CanarySpec``. The directory follows the run-directory contract: a rerun resumes (finished
    units are kept), a directory holding a run of other settings is refused
    (``softleak.simulate.rundir.IdentityMismatch``) unless ``restart=True``. Other keyword
    arguments go to the family's runner (``client=`` a Dask client, ``allow_tf32=`` for sweeps).
    """
    from softleak.simulate.experiments import run_experiment

    return run_experiment(spec, out, threads=threads, progress=progress, **kwargs)


def audit(data, spec=None, **kwargs):
    """The leakage audit of a user's teacher (``softleak.simulate.leakage_audit.audit``).

    ``data`` is an ``AuditData`` (from arrays, files or a ``torch.nn.Module``), ``spec`` an
    ``AuditSpec``; returns an ``AuditResult`` (``.rows``: one row per trained student;
    ``.examples``: the per-example scores), to be summarised by ``softleak.compare.audit_report``.
    """
    from softleak.simulate.leakage_audit import audit as run_audit

    return run_audit(data, spec, **kwargs)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name.endswith("Spec") and not name.startswith("_"):  # a registered family's spec
        from softleak.simulate.families import families

        for family in families():
            if family.spec_type.__name__ == name:
                return family.spec_type
    raise AttributeError(f"module 'softleak.simulate' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
