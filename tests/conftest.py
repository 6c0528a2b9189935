"""Shared fixtures. ``global_seed``: stochastic tests must pass for any seed (set SOFTLEAK_TEST_SEED
to try another; CI varies it by date)."""

import datetime
import os

import pytest


def _default_seed() -> int:
    env = os.environ.get("SOFTLEAK_TEST_SEED")
    if env is not None:
        return int(env)
    return datetime.date.today().toordinal() % 1000


@pytest.fixture
def global_seed() -> int:
    return _default_seed()


def pytest_report_header(config) -> str:
    """The seed of this run, so a failure can be replayed (SOFTLEAK_TEST_SEED=N)."""
    return (
        f"softleak test seed: {_default_seed()} (replay with SOFTLEAK_TEST_SEED={_default_seed()})"
    )


def pytest_terminal_summary(terminalreporter) -> None:
    """The seed again at the end (``-q`` hides the header)."""
    terminalreporter.write_line(f"softleak test seed: {_default_seed()}")
