"""The audit in the privacy community's terms, from the per-example scores of ``simulate.audit``.

Per release setting (``AuditResult.examples``: every held-out member and non-member scored by
every student; columns in ``simulate.audit_result.EXAMPLE_COLUMNS``):

- ``epsilon_lb``: an audited lower bound on the label-DP epsilon of the release (Ghazi et al.
  2021). Per run (one seed, one rho) the held-out members are treated as independent trials of
  guessing a label (the one-run argument of Steinke, Nasr and Jagielski 2023, valid when labels
  are i.i.d. uniform as in the paper's random-label setting, not for a user's real labels: the
  report says so beside the number). The one-sided Clopper-Pearson lower bound on the run's
  member accuracy, Bonferroni-adjusted over the runs looked at (rho x seeds), is turned into the
  largest epsilon it rules out (``compare.privacy.epsilon_lower_bound``); the setting's bound is
  the largest over its runs, so it stays a valid lower bound at the stated confidence.
- ``epsilon_lb_vs_baseline`` (with non-members): the same against the non-member accuracy of
  the same student (``compare.privacy.epsilon_lower_bound_vs_baseline``), a heuristic: the
  non-member accuracy underestimates how predictable labels are from inputs, which makes it
  optimistic.
- ``auc``, ``tpr_at_fpr``: membership inference through the student (the question of "Students
  Parrot Their Teachers", Jagielski et al. 2023): held-out members against non-members by the
  student's probability of the true label (``score``), at the setting's worst rho with the
  examples of all seeds pooled (one attack threshold over students trained alike; the pooled
  ROC is that of an attacker who meets a student of a random seed). TPR at an FPR is None when
  fewer than 1/FPR distinct non-members were given.
- ``precision_at_coverage``: the accuracy of the student's most confident 1% and 10% of
  held-out-member predictions (at least one; counts rounded up), at the worst rho, the mean over
  seeds of each student's own top fraction: how well the most exposed members are recovered.

Plus the ROC curves, per-class leakage and the most exposed held-out members. Imports numpy,
pandas and scipy; never torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from softleak.compare import privacy as P
from softleak.compare.table import jsonable

#: FPRs of ``tpr_at_fpr`` and coverages of ``precision_at_coverage`` (JSON keys: ``f"{v:g}"``).
FPRS = (0.01, 0.001)
COVERAGES = (0.01, 0.1)
#: The per-example table's columns and groups (``simulate.audit_result`` writes them; compare
#: reads run records only through ``simulate.store``, so they are restated here and a test keeps
#: the two equal).
EXAMPLE_COLUMNS = (
    "index",
    "group",
    "label",
    "score",
    "correct",
    "confidence",
    "setting",
    "seed",
    "rho",
)
MEMBER, NONMEMBER = GROUPS = ("heldout_member", "nonmember")
#: The prior the epsilon bound assumes (report.json states it).
LABEL_PRIOR = "uniform-iid"
#: How each per-setting number summarises the runs (report.json states it).
POOLING = {
    "epsilon_lb": "largest per-run (seed, rho) bound, Bonferroni over the setting's rho x seeds",
    "epsilon_lb_vs_baseline": "as epsilon_lb, Bonferroni over 2 x rho x seeds one-sided bounds",
    "auc": "the setting's worst rho, examples of all seeds pooled",
    "tpr_at_fpr": "the setting's worst rho, examples of all seeds pooled; None below 1/FPR "
    "distinct non-members",
    "precision_at_coverage": "the setting's worst rho, mean over seeds of each student's own "
    "most confident fraction",
}
PRIOR_NOTE = (
    "The label-DP bound treats each run's held-out members as independent trials, which holds "
    "when labels are i.i.d. uniform (the paper's random-label setting); for real labels, which "
    "inputs predict, it is not a valid lower bound (compare epsilon_lb_vs_baseline, itself a "
    "heuristic)."
)
EXPOSED = 10  # most exposed held-out members listed


def key(value: float) -> str:
    """The JSON key of an FPR or coverage (``0.01`` -> ``"0.01"``)."""
    return f"{value:g}"


@dataclass(frozen=True, eq=False)
class PrivacyStats:
    """The privacy-side numbers of an audit (:func:`privacy_stats`)."""

    settings: pd.DataFrame  # one row per setting: the numbers in the module docstring
    runs: pd.DataFrame  # one row per (setting, rho, seed): counts and per-run bounds
    roc: dict[str, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )  # setting -> fpr, tpr
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)  # setting, label, accuracies
    exposed: pd.DataFrame = field(default_factory=pd.DataFrame)  # the reference's top members
    reference: str | None = None  # the setting ``exposed`` is about

    def entry(self, setting: str) -> dict:
        """The setting's JSON fields (NaN as None)."""
        if self.settings.empty or setting not in set(self.settings["setting"]):
            return empty_entry()
        row = self.settings.set_index("setting").loc[setting]
        return {
            "epsilon_lb": jsonable(row["epsilon_lb"]),
            "epsilon_lb_vs_baseline": jsonable(row["epsilon_lb_vs_baseline"]),
            "auc": jsonable(row["auc"]),
            "tpr_at_fpr": {key(f): jsonable(row[f"tpr_at_fpr_{key(f)}"]) for f in FPRS},
            "precision_at_coverage": {
                key(v): jsonable(row[f"precision_at_coverage_{key(v)}"]) for v in COVERAGES
            },
            "mia_n_member": int(row["mia_n_member"]),
            "mia_n_nonmember": int(row["mia_n_nonmember"]),
            "n_nonmember_distinct": int(row["n_nonmember_distinct"]),
            "runs": int(row["runs"]),
        }


def empty_entry() -> dict:
    """The JSON fields of a setting audited without per-example scores."""
    return {
        "epsilon_lb": None,
        "epsilon_lb_vs_baseline": None,
        "auc": None,
        "tpr_at_fpr": {key(f): None for f in FPRS},
        "precision_at_coverage": {key(v): None for v in COVERAGES},
        "mia_n_member": 0,
        "mia_n_nonmember": 0,
        "n_nonmember_distinct": 0,
        "runs": 0,
    }


def _check(examples: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in EXAMPLE_COLUMNS if c not in examples]
    if missing:
        raise ValueError(f"the per-example table lacks the columns {', '.join(missing)}")
    groups = set(examples["group"].astype(str))
    if not groups <= {MEMBER, NONMEMBER}:
        raise ValueError(f"unknown example groups: {sorted(groups - {MEMBER, NONMEMBER})}")
    score = examples["score"].to_numpy(float)
    if not np.all((score >= 0) & (score <= 1 + 1e-6)):
        raise ValueError("example scores must be probabilities in [0, 1]")
    return examples


def privacy_stats(
    examples: pd.DataFrame,
    c: int,
    worst_rho: Mapping[str, float],
    confidence: float = 0.95,
    reference: str | None = None,
) -> PrivacyStats:
    """The privacy numbers of every setting in ``worst_rho`` (setting -> the rho its headline
    is at) from the per-example scores; ``c`` the number of classes, ``confidence`` that of the
    epsilon bounds (one-sided), ``reference`` the setting whose most exposed members are
    listed."""
    examples = _check(examples)
    runs, settings, roc, per_class = [], [], {}, []
    for setting, rho_worst in worst_rho.items():
        mine = examples[examples["setting"] == setting]
        members = mine[mine["group"] == MEMBER]
        nonmembers = mine[mine["group"] == NONMEMBER]
        mine_runs = _run_epsilons(setting, members, nonmembers, c, confidence)
        runs += mine_runs
        eps = [r["epsilon_lb_run"] for r in mine_runs]
        eps_base = [r["epsilon_lb_vs_baseline_run"] for r in mine_runs]
        at = members[np.isclose(members["rho"], rho_worst)]
        non_at = nonmembers[np.isclose(nonmembers["rho"], rho_worst)]
        mia, curve, distinct = _membership_inference(at, non_at)
        if curve is not None:
            roc[setting] = curve
        settings.append(
            {
                "setting": setting,
                "rho": float(rho_worst),
                "runs": len(mine_runs),
                "epsilon_lb": max(eps) if eps else math.nan,
                "epsilon_lb_vs_baseline": np.nanmax(eps_base)
                if np.isfinite(eps_base).any()
                else math.nan,
                **mia,
                **_precision_at_coverages(at),
                "mia_n_member": len(at),
                "mia_n_nonmember": len(non_at),
                "n_nonmember_distinct": distinct,
            }
        )
        per_class.append(_per_class(setting, at, non_at))
    frame = pd.DataFrame(settings)
    exposed = pd.DataFrame()
    if reference is not None and reference in worst_rho:
        mine = examples[(examples["setting"] == reference) & (examples["group"] == MEMBER)]
        exposed = most_exposed(mine[np.isclose(mine["rho"], worst_rho[reference])])
    return PrivacyStats(
        settings=frame,
        runs=pd.DataFrame(runs),
        roc=roc,
        per_class=pd.concat(per_class, ignore_index=True) if per_class else pd.DataFrame(),
        exposed=exposed,
        reference=reference,
    )


def _run_epsilons(
    setting: str, members: pd.DataFrame, nonmembers: pd.DataFrame, c: int, confidence: float
) -> list[dict]:
    """One row per run (rho, seed) of ``setting``: its held-out member count and hits and its
    epsilon lower bounds, alone and against the same run's non-members (NaN without them),
    Bonferroni over the setting's runs."""
    by_run = members.groupby(["rho", "seed"], sort=True)["correct"].agg(["sum", "size"])
    non_by_run = nonmembers.groupby(["rho", "seed"], sort=True)["correct"].agg(["sum", "size"])
    tests = max(len(by_run), 1)
    runs = []
    for (rho, seed), (k, t) in by_run.iterrows():
        e = P.epsilon_lower_bound(int(k), int(t), c, confidence, tests)
        eb = math.nan
        if (rho, seed) in non_by_run.index:
            k0, t0 = non_by_run.loc[(rho, seed)]
            eb = P.epsilon_lower_bound_vs_baseline(
                int(k), int(t), int(k0), int(t0), confidence, tests
            )
        runs.append(
            {
                "setting": setting,
                "rho": float(rho),
                "seed": int(seed),
                "n_heldout_member": int(t),
                "member_correct": int(k),
                "epsilon_lb_run": e,
                "epsilon_lb_vs_baseline_run": eb,
            }
        )
    return runs


def _membership_inference(
    at: pd.DataFrame, non_at: pd.DataFrame
) -> tuple[dict, tuple[np.ndarray, np.ndarray] | None, int]:
    """Held-out members ``at`` against non-members ``non_at`` (one rho, seeds pooled) by score:
    ``({auc, tpr_at_fpr_*}, the ROC curve or None without both groups, distinct non-members)``;
    a TPR is NaN with fewer than 1/FPR distinct non-members."""
    distinct = int(non_at["index"].nunique())
    m_scores, n_scores = at["score"].to_numpy(float), non_at["score"].to_numpy(float)
    auc = P.auc(m_scores, n_scores) if len(at) and len(non_at) else math.nan
    tprs = {}
    for f in FPRS:
        enough = len(at) and distinct >= math.ceil(1 / f - 1e-9)
        tpr = P.tpr_at_fpr(m_scores, n_scores, f) if enough else None
        tprs[f"tpr_at_fpr_{key(f)}"] = math.nan if tpr is None else tpr
    curve = P.roc_curve(m_scores, n_scores) if len(at) and len(non_at) else None
    return {"auc": auc, **tprs}, curve, distinct


def _precision_at_coverages(at: pd.DataFrame) -> dict[str, float]:
    """``precision_at_coverage_*``: per seed, the accuracy of the student's most confident
    fraction of held-out members ``at``, averaged over seeds (NaN without any)."""
    precision = {}
    for v in COVERAGES:
        per_seed = [
            P.precision_at_coverage(g["confidence"].to_numpy(float), g["correct"].to_numpy(bool), v)
            for _, g in at.groupby("seed")
        ]
        precision[f"precision_at_coverage_{key(v)}"] = (
            float(np.mean(per_seed)) if per_seed else math.nan
        )
    return precision


def _per_class(setting: str, members: pd.DataFrame, nonmembers: pd.DataFrame) -> pd.DataFrame:
    """Per true label: the held-out member and non-member accuracy (pooled over seeds) and their
    difference (NaN without non-members of that label)."""
    m = members.groupby("label")["correct"].agg(["mean", "size"])
    n = nonmembers.groupby("label")["correct"].agg(["mean", "size"])
    table = m.merge(
        n, how="outer", left_index=True, right_index=True, suffixes=("_member", "_nonmember")
    )
    table = table.rename(
        columns={
            "mean_member": "member_acc",
            "size_member": "n_member",
            "mean_nonmember": "nonmember_acc",
            "size_nonmember": "n_nonmember",
        }
    )
    table["leakage"] = table["member_acc"] - table["nonmember_acc"]
    table = table.reset_index().assign(setting=setting)
    return table[
        ["setting", "label", "member_acc", "n_member", "nonmember_acc", "n_nonmember", "leakage"]
    ]


def most_exposed(members: pd.DataFrame, top: int = EXPOSED) -> pd.DataFrame:
    """The held-out members the students recover most surely: per member index, its mean score
    over the seeds that held it out, how often it was held out and recovered; the ``top`` by
    mean score (ties: lower index)."""
    if members.empty:
        return pd.DataFrame(columns=["index", "label", "mean_score", "held_out", "recovered"])
    grouped = members.groupby("index").agg(
        label=("label", "first"),
        mean_score=("score", "mean"),
        held_out=("score", "size"),
        recovered=("correct", "sum"),
    )
    grouped = grouped.reset_index().sort_values(["mean_score", "index"], ascending=[False, True])
    return grouped.head(top).reset_index(drop=True)
