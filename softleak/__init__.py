"""softleak: how much of a teacher's held-out memorized data can a student recover from its soft
labels, and when? Theory and simulation side by side.

Parts (import them as ``softleak.<part>``; arrows run one way, theory <- simulate <- compare <-
paper_figs <- the command line):

- ``softleak.theory``: closed forms and exact checks (Cover, identifiability, capacity, ...);
- ``softleak.simulate``: batched teachers and students, sweeps, the run-directory contract;
- ``softleak.compare``: thresholds, phases, finite-size scaling and plots from result tables;
- ``softleak.paper_figs``: one recipe per paper figure;
- ``softleak.cli`` and ``softleak.commands_*``: the ``softleak`` command.

The four parts live in top-level folders of the repository and are installed under this package
(``package-dir`` in pyproject.toml). Run from a plain checkout that is not installed (the GPU
machine does, with ``PYTHONPATH`` set to the checkout), the folders beside this one are found
through ``__path__`` below. Importing ``softleak`` imports none of the parts.
"""

from __future__ import annotations

from pathlib import Path

PARTS = ("theory", "simulate", "compare", "paper_figs")


def _checkout_parts() -> None:
    """In a plain checkout, let ``softleak.<part>`` find the part's top-level folder."""
    root = Path(__file__).resolve().parent.parent
    here = [Path(p).resolve() for p in __path__]
    if all((root / part / "__init__.py").is_file() for part in PARTS) and root not in here:
        __path__.append(str(root))


def _version() -> str:
    """The installed distribution's version; in a plain checkout, pyproject.toml's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("softleak")
    except PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        import re

        found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
    except OSError:
        found = None
    return f"{found.group(1)}+checkout" if found else "0+unknown"


_checkout_parts()
__version__ = _version()
