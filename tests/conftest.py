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
