"""The report of a ``benchmarks.gpu_check`` run: its checks ``{name, passed, detail}``, which of
them are wanted (``--only``), the time budget, and how a check that raises or needs a module
that does not import is recorded (failed, or skipped) instead of ending the run."""

from __future__ import annotations

import contextlib
import importlib
import time
import traceback
from dataclasses import dataclass, field


@dataclass
class Report:
    """The checks of one run (``passed``: True, False, or None for skipped), each printed as it
    is added unless ``log`` is off."""

    only: tuple[str, ...] = ()
    checks: list[dict] = field(default_factory=list)
    log: bool = True
    start: float = field(default_factory=time.perf_counter)
    budget_s: float | None = None  # checks not started by then are skipped (the 5-minute cap)

    def over_budget(self) -> bool:
        """Whether the time budget is spent (checks not started by then are skipped)."""
        return self.budget_s is not None and time.perf_counter() - self.start > self.budget_s

    @contextlib.contextmanager
    def guard(self, name: str):
        """Run a block as check ``name``'s work: an exception fails that check only."""
        try:
            yield
        except Exception as err:
            self.add(name, False, f"raised {last_line(err)}")

    def wanted(self, name: str) -> bool:
        """Whether check ``name`` is wanted (``--only`` prefixes; all when none)."""
        return not self.only or any(name.startswith(p) for p in self.only)

    def touches(self, prefix: str) -> bool:
        """Whether any wanted check's name starts with ``prefix``."""
        return not self.only or any(p.startswith(prefix) or prefix.startswith(p) for p in self.only)

    def add(self, name: str, passed: bool | None, detail: str) -> None:
        """Record check ``name`` (and print its line unless ``log`` is off)."""
        self.checks.append({"name": name, "passed": passed, "detail": detail})
        if self.log:
            mark = {True: "pass", False: "FAIL", None: "skip"}[passed]
            elapsed = time.perf_counter() - self.start
            print(f"[{elapsed:5.1f} s] {mark}  {name}: {detail}", flush=True)

    def run(self, name: str, fn, *, needs: tuple[str, ...] = (), force: bool = False) -> object:
        """Run ``fn() -> (passed, detail[, value])`` as check ``name`` (if wanted, or ``force``);
        a missing module in ``needs`` skips it, an exception fails it (with its last line)."""
        if not (force or self.wanted(name)):
            return None
        if self.over_budget():
            self.add(name, None, f"skipped: past the {self.budget_s:g} s budget")
            return None
        missing = _missing(needs)
        if missing:
            self.add(name, None, f"skipped: {missing}")
            return None
        try:
            out = fn()
        except Exception as err:  # a failed check, not a crash of the whole run
            self.add(name, False, f"raised {last_line(err)}")
            return None
        passed, detail, *value = out
        self.add(name, passed, detail)
        return value[0] if value else None


def last_line(err: BaseException) -> str:
    """The last line of ``err``'s traceback: its type and message."""
    return traceback.format_exception_only(type(err), err)[-1].strip()


def _missing(modules: tuple[str, ...]) -> str | None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # ImportError, or a broken install
            return f"{name} does not import here ({type(err).__name__}: {err})"
    return None
