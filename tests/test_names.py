"""Names that mean one thing: ``softleak.<part>.<module>`` is that module wherever it is imported.

A package that re-exports a function under the name of one of its modules makes
``import softleak.compare.crossings as m`` bind the function (``import a.b as m`` reads the
attribute ``b`` of ``a``). Oracle: for every module of every part, the package attribute of that
name is the module object itself, after the package and all its modules are imported.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest

PACKAGES = (
    "softleak",
    "softleak.theory",
    "softleak.simulate",
    "softleak.compare",
    "softleak.paper_figs",
)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_name_is_the_module(package):
    pkg = importlib.import_module(package)
    names = [info.name for info in pkgutil.iter_modules(pkg.__path__)]
    for name in names:
        importlib.import_module(f"{package}.{name}")
    wrong = {
        name: type(getattr(pkg, name, None)).__name__
        for name in names
        if getattr(pkg, name, None) is not sys.modules[f"{package}.{name}"]
    }
    assert not wrong, f"{package} binds other objects under its modules' names: {wrong}"


def test_import_as_binds_the_module():
    import softleak.compare.audit_report as audit_report
    import softleak.compare.class_collapse as class_collapse
    import softleak.compare.crossings as crossings
    import softleak.compare.overlay as overlay

    for mod in (audit_report, class_collapse, crossings, overlay):
        assert type(mod).__name__ == "module"
    from softleak import compare

    # the functions under their own names
    assert compare.overlay_theory is overlay.overlay
    assert compare.report_audit is audit_report.audit_report
    assert compare.collapse_classes is class_collapse.class_collapse
    assert compare.threshold_crossing is crossings.threshold_crossing
