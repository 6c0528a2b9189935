"""Teachers and students trained many replicas at once, sweeps, and the results store.

This ``__init__`` stays torch-free (``compare`` may read result folders through ``simulate.store``);
import the torch modules (``simulate.train``, ``simulate.models`` ...) explicitly.
"""


def audit(data, spec=None, **kwargs):
    """The leakage audit of a user's teacher (``simulate.leakage_audit.audit``; imports torch).

    ``data`` is a ``simulate.audit_data.AuditData`` (from arrays, files or a ``torch.nn.Module``),
    ``spec`` a ``simulate.leakage_audit.AuditSpec``; returns one row per trained student, to be
    summarised by ``compare.audit_report``.
    """
    from softleak.simulate.leakage_audit import audit as run

    return run(data, spec, **kwargs)
