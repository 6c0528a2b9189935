"""The ``tiny`` preset of every recipe: its quick sweeps shrunk to seconds (internal, for tests).

A recipe may declare ``presets["tiny"]`` itself; otherwise ``Recipe.preset("tiny")`` derives it
from the quick preset with :func:`shrink`, which asks each sweep's family (``Family.tiny`` in the
registry ``simulate.families``) for a version that keeps its structure (experiment, sweep names,
c, rho, shuffle) but shrinks d, the grids, the seeds and the epochs (with larger learning rates so
that small teachers still memorize), so that every ``make`` runs end to end in a few seconds.
``softleak figs list`` does not show it. Shrinking is deterministic, so two recipes that share a
quick sweep (same name and spec) share its tiny sweep too.
"""

from __future__ import annotations

from softleak.simulate.families import family_of, thin

__all__ = ["shrink", "thin"]


def shrink(spec):
    """A seconds-sized version of ``spec``: small d, thinned grids, 2 seeds, short training."""
    return family_of(spec).tiny(spec)
