"""The base of every run spec: the fields each declares and the checks each runs (torch-free).

Every family's spec (``SweepSpec``, ``Toy2DSpec``, ``ModAddSpec``, ``GPT2Spec``, ``CanarySpec``)
is a frozen dataclass derived from :class:`RunSpec`, which declares what every run has in the same
sense: the experiment it is, the base seed every draw derives from, the resolved device, the
precision of its training products and its extras (recorded, never hashed). Building a spec
checks every declared field against its kind (``simulate.params.check_declared``: the constraint
the command line applies, applied to Python callers too), then runs the spec's own
:meth:`RunSpec.validate`, which keeps what a kind cannot say: rules across fields, bounds of its
own, normalisation and filled-in defaults.

Fields that share a name but not a meaning stay in each spec: ``rho`` is a grid in a sweep and
one number in toy2d, ``teacher_epochs`` is filled in from the checkpoints in modadd, and the
defaults and help of the training settings differ per family. ``family`` (a class attribute, not a
field: it is no part of any identity) names the spec's entry in ``simulate.families``.

Field order: the base's fields come first (``experiment``, ``seed``, ``device``, ``precision``,
``extra``), then each spec's; every spec is built by keyword except ``SweepSpec``'s experiment,
which stays its first positional field. Identities hash sorted dictionaries, so the order changes
no run id (``tests/test_run_ids.py`` pins them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from softleak.simulate.params import check_declared, param
from softleak.simulate.precision import precision_field

__all__ = ["RunSpec", "filled"]

SEED_HELP = "base seed every draw derives from"


@dataclass(frozen=True)
class RunSpec:
    """What every run spec declares (see the module docstring)."""

    #: the spec's family in ``simulate.families.FAMILIES`` (set by every subclass)
    family: ClassVar[str] = ""

    experiment: str  # the family's experiment (fixed by single-experiment families)
    seed: int = param(0, help=SEED_HELP, kind="seed", group="execution")
    device: str = "cpu"  # resolved device (cpu, cuda, cuda:N); the command line resolves it
    precision: str = precision_field()
    extra: dict = field(default_factory=dict)  # family-specific settings (recorded, not hashed)

    def __post_init__(self) -> None:
        check_declared(self)
        self.validate()

    def validate(self) -> None:
        """The spec's own checks and normalisation (its declared kinds are checked already);
        ValueError with one line."""

    def put(self, name: str, value: Any) -> None:
        """Set a field of the frozen spec (normalisation and filled-in defaults in ``validate``)."""
        object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def settled_fields(self, skip: Iterable[str] = ()) -> dict:
        """The fields but ``skip`` as an identity hashes them (``simulate.rundir.settled``)."""
        from softleak.simulate.rundir import settled

        skip = set(skip)
        return settled({k: v for k, v in self.to_dict().items() if k not in skip})


def filled(default: Any = None) -> Any:
    """A field that ``validate`` fills in when it is left at ``default`` (None): typed as what it
    holds after construction, so readers never see the placeholder."""
    return field(default=default)
