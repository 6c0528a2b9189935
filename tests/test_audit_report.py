"""Tests for compare.audit_report: intervals against closed forms, headline and verdict logic,
JSON/Markdown/plot/write outputs, input validation, and a coverage property under zero leakage."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from scipy import stats

from softleak.compare.audit_report import (
    JSON_KEYS,
    LEAKAGE_LABEL,
    UTILITY_LABEL,
    audit_report,
    leakage_interval,
    summarize,
)

BIG_N = 1_000_000  # test-set size that makes the binomial floor negligible next to a 1e-3 spread
SPREAD = (-0.001, 0.0, 0.001)  # per-seed member-accuracy offsets: sd = 1e-3 exactly


def _row(setting, order, rho, seed, member_acc, baseline, **extra):
    row = {
        "setting": setting,
        "control": setting == "shuffle",
        "order": order,
        "rho": rho,
        "seed": seed,
        "student": "linear",
        "tau": 1.0,
        "member_acc": member_acc,
        "n_member_test": BIG_N,
        "baseline": baseline,
        "baseline_kind": "non-members",
        "n_nonmember": BIG_N,
        "leakage": member_acc - baseline,
        "utility": 0.9,
        "certified_leaked": math.nan,
        "certified_hidden": math.nan,
        "student_train_acc": 1.0,
        "wall_s": 0.5,
    }
    row.update(extra)
    if "leakage" not in extra:
        row["leakage"] = row["member_acc"] - row["baseline"]
    return row


def _table(spec: dict[str, dict], rhos=(0.5,), baseline=0.3, **extra) -> pd.DataFrame:
    """``spec``: setting -> {"leak": leakage or {rho: leakage}, "utility": u}. Three seeds each
    with member accuracies leak + baseline + SPREAD (a narrow interval around ``leak``)."""
    rows = []
    for order, (setting, s) in enumerate(spec.items()):
        for rho in rhos:
            leak = s["leak"][rho] if isinstance(s["leak"], dict) else s["leak"]
            for seed, offset in enumerate(SPREAD):
                fields = dict(extra)
                fields["utility"] = s.get("utility", 0.9)
                rows.append(
                    _row(setting, order, rho, seed, baseline + leak + offset, baseline, **fields)
                )
    return pd.DataFrame(rows)


STANDARD = {
    "soft": {"leak": 0.5, "utility": 0.97},
    "tau:5": {"leak": 0.2, "utility": 0.96},
    "top_k:2": {"leak": 0.0, "utility": 0.93},
    "hard": {"leak": 0.0, "utility": 0.88},
    "shuffle": {"leak": 0.0, "utility": 0.99},
}


# ---------------------------------------------------------------------------------------------
# Intervals


def _wilson(successes, trials, confidence):
    """Wilson's score interval from statsmodels (an independent implementation)."""
    from statsmodels.stats.proportion import proportion_confint

    return proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")


def test_three_seed_interval_is_the_t_interval_and_the_baselines_own():
    """S = 3 with a spread far above the members' binomial floor: scipy's t interval on the seeds,
    combined by Newcombe's square-and-add rule with the baseline's Wilson interval on its
    n_nonmember trials (the same non-members every seed)."""
    pytest.importorskip("statsmodels")
    member = np.array([0.62, 0.70, 0.75])
    rows = pd.DataFrame(
        [_row("soft", 0, 0.5, s, m, 0.3, n_nonmember=400) for s, m in enumerate(member)],
    )
    out = summarize(rows, confidence=0.9).iloc[0]
    leak = member - 0.3
    t_half = stats.t.ppf(0.95, 2) * leak.std(ddof=1) / math.sqrt(3)
    low_b, high_b = _wilson(0.3 * 400, 400, 0.9)
    assert out["n_seeds"] == 3
    assert out["leakage"] == pytest.approx(leak.mean(), abs=1e-12)
    assert out["leakage_ci_low"] == pytest.approx(
        leak.mean() - math.hypot(t_half, high_b - 0.3), abs=1e-12
    )
    assert out["leakage_ci_high"] == pytest.approx(
        leak.mean() + math.hypot(t_half, 0.3 - low_b), abs=1e-12
    )


def test_identical_seeds_use_the_pooled_members_and_the_baseline_at_its_own_size():
    """Seeds that agree exactly: the members' Wilson interval on the pooled counts (4 x n_m
    trials) and the baseline's on n_b trials, not 4 x n_b: more seeds never narrow it."""
    pytest.importorskip("statsmodels")
    m, b, n_m, n_b = 0.8, 0.4, 250, 500
    rows = pd.DataFrame(
        [_row("soft", 0, 0.5, s, m, b, n_member_test=n_m, n_nonmember=n_b) for s in range(4)]
    )
    out = summarize(rows).iloc[0]
    low_m, high_m = _wilson(m * 4 * n_m, 4 * n_m, 0.95)
    low_b, high_b = _wilson(b * n_b, n_b, 0.95)
    assert out["leakage_ci_low"] == pytest.approx(
        m - b - math.hypot(m - low_m, high_b - b), abs=1e-12
    )
    assert out["leakage_ci_high"] == pytest.approx(
        m - b + math.hypot(high_m - m, b - low_b), abs=1e-12
    )


def test_one_seed_is_newcombes_interval():
    """S = 1 with non-members: Newcombe's (1998) hybrid score interval for a difference of two
    proportions -- his worked example 56/70 - 48/80 gives (0.0524, 0.3339) -- and statsmodels'
    implementation of it on other counts."""
    out = leakage_interval(
        np.array([56 / 70 - 48 / 80]),
        np.array([56 / 70]),
        np.array([70]),
        baseline=np.array([48 / 80]),
        n_nonmember=np.array([80]),
    )
    assert out[2] == pytest.approx(0.0524, abs=5e-5) and out[3] == pytest.approx(0.3339, abs=5e-5)
    statsmodels = pytest.importorskip("statsmodels.stats.proportion")
    for k1, n1, k2, n2 in ((9, 10, 0, 1), (3, 15, 1, 40), (128, 180, 105, 420), (0, 7, 0, 30)):
        row = _row("soft", 0, 0.5, 0, k1 / n1, k2 / n2, n_member_test=n1, n_nonmember=n2)
        got = summarize(pd.DataFrame([row]), confidence=0.9).iloc[0]
        low, high = statsmodels.confint_proportions_2indep(
            k1, n1, k2, n2, method="newcomb", compare="diff", alpha=0.1
        )
        assert got["leakage_ci_low"] == pytest.approx(max(low, -1), abs=1e-12)
        assert got["leakage_ci_high"] == pytest.approx(min(high, 1), abs=1e-12)


def test_one_seed_against_chance_is_the_members_wilson_interval():
    pytest.importorskip("statsmodels")
    m, b, n_m = 0.71, 0.25, 180
    row = _row("soft", 0, 0.5, 0, m, b, n_member_test=n_m, n_nonmember=0, baseline_kind="chance")
    out = summarize(pd.DataFrame([row]), confidence=0.9).iloc[0]
    low, high = _wilson(m * n_m, n_m, 0.9)
    assert out["leakage_ci_low"] == pytest.approx(low - b, abs=1e-12)
    assert out["leakage_ci_high"] == pytest.approx(high - b, abs=1e-12)


def test_a_baseline_from_one_non_member_widens_the_interval_honestly():
    """The issue's case: the same members against 1 non-member (baseline 0/1) and against
    1,000 (baseline 0.19): the first interval must be the wider, and reach as far down as the
    baseline's own Wilson interval [0, 0.79] allows."""
    member = [0.5, 0.52, 0.53]
    tiny = summarize(
        pd.DataFrame(
            [_row("soft", 0, 0.5, s, m, 0.0, n_member_test=30, n_nonmember=1) for s, m in
             enumerate(member)]
        )
    ).iloc[0]  # fmt: skip
    many = summarize(
        pd.DataFrame(
            [_row("soft", 0, 0.5, s, m, 0.19, n_member_test=30, n_nonmember=1000) for s, m in
             enumerate(member)]
        )
    ).iloc[0]  # fmt: skip
    width = lambda r: r["leakage_ci_high"] - r["leakage_ci_low"]  # noqa: E731
    assert width(tiny) > width(many) + 0.5
    z = stats.norm.ppf(0.975)
    assert tiny["leakage_ci_low"] <= tiny["leakage"] - z * z / (1 + z * z)  # the 0/1 bound 0.79


@pytest.mark.parametrize("n_b", [30, 60])
def test_small_holdouts_still_cover_zero_leakage(global_seed, n_b):
    """No leakage, 3 seeds, baselines from only 30 or 60 non-members shared by the seeds: the
    95% interval covers 0 in >= 90% of 400 audits (dividing the baseline's variance by the
    seeds, as a per-seed binomial term would, undercovers here)."""
    rng = np.random.default_rng(global_seed)
    reps, seeds, n_m = 400, 3, 200
    p = rng.uniform(0.2, 0.8, size=reps)
    records = []
    for i in range(reps):
        base = rng.binomial(n_b, p[i]) / n_b  # one non-member sample for every seed
        for s in range(seeds):
            member = rng.binomial(n_m, p[i]) / n_m
            records.append(
                _row(f"r{i}", i, 0.5, s, member, base, n_member_test=n_m, n_nonmember=n_b)
            )
    out = summarize(pd.DataFrame(records))
    covered = (out["leakage_ci_low"] <= 0.0) & (out["leakage_ci_high"] >= 0.0)
    assert covered.mean() >= 0.90


def test_summarize_one_row_per_setting_and_rho_in_user_order():
    spec = {"tau:5": {"leak": 0.1}, "soft": {"leak": 0.3}, "hard": {"leak": 0.0}}
    out = summarize(_table(spec, rhos=(0.35, 0.65)))
    assert list(out["setting"]) == ["tau:5", "tau:5", "soft", "soft", "hard", "hard"]
    assert list(out["rho"]) == [0.35, 0.65] * 3
    assert (out["n_seeds"] == 3).all()
    assert out.loc[out["setting"] == "soft", "leakage"].to_numpy() == pytest.approx([0.3, 0.3])
    assert out["wall_s"].to_numpy() == pytest.approx(1.5)  # summed over seeds


@pytest.mark.parametrize("seeds", [1, 3])
def test_interval_covers_zero_leakage(global_seed, seeds):
    """No leakage (member and non-member accuracies binomial with the same p): the 95% interval
    covers 0 in >= 90% of 400 audits. Coverage is >= ~95% (Wald at n >= 200 and p in
    [0.2, 0.8]; the t interval with a floor is conservative), so 40 misses of 400 is > 4 sd away."""
    rng = np.random.default_rng(global_seed)
    reps, n_m, n_b = 400, 200, 300
    p = rng.uniform(0.2, 0.8, size=(reps, 1))
    member = rng.binomial(n_m, p, size=(reps, seeds)) / n_m
    base = rng.binomial(n_b, p, size=(reps, seeds)) / n_b
    rows = pd.DataFrame(
        [
            _row(f"r{i}", i, 0.5, s, member[i, s], base[i, s], n_member_test=n_m, n_nonmember=n_b)
            for i in range(reps)
            for s in range(seeds)
        ]
    )
    out = summarize(rows)
    assert len(out) == reps
    covered = (out["leakage_ci_low"] <= 0.0) & (out["leakage_ci_high"] >= 0.0)
    assert covered.mean() >= 0.90


def test_leakage_interval_ignores_non_finite_seeds():
    mean, se, low, high = leakage_interval(
        np.array([0.1, np.nan]), np.array([0.6, 0.5]), np.array([100, 100])
    )
    assert mean == pytest.approx(0.1)
    assert se == pytest.approx(math.sqrt(0.6 * 0.4 / 100))
    assert low < 0.1 < high
    nan = leakage_interval(np.array([np.nan]), np.array([0.5]), np.array([10]))
    assert all(math.isnan(x) for x in nan)


# ---------------------------------------------------------------------------------------------
# Headline and verdict


def test_headline_is_the_worst_rho():
    spec = {
        "soft": {"leak": {0.35: 0.1, 0.65: 0.5, 0.9: 0.3}},
        "hard": {"leak": {0.35: 0.02, 0.65: 0.0, 0.9: 0.01}},
    }
    report = audit_report(_table(spec, rhos=(0.35, 0.65, 0.9)))
    settings = report.settings.set_index("setting")
    assert settings.loc["soft", "rho"] == 0.65
    assert settings.loc["soft", "leakage"] == pytest.approx(0.5)
    assert settings.loc["hard", "rho"] == 0.35
    # The deciding rho's interval, at the confidence Holm's correction gave the setting.
    level = float(settings.loc["soft", "ci_confidence"])
    # soft's p is 1; hard's, at its mean right at the tolerance, may be 1 too (a tie, ranked by
    # order): soft's level is one of Holm's two
    assert level in (0.95, 1 - 0.05 / 2)
    at_level = summarize(_table(spec, rhos=(0.35, 0.65, 0.9)), level)
    worst = at_level.query("setting == 'soft' and rho == 0.65").iloc[0]
    assert settings.loc["soft", "leakage_ci_high"] == pytest.approx(worst["leakage_ci_high"])
    assert "65.0% of the members" in report.verdict


def test_within_tolerance_is_upper_bound_at_most_tolerance():
    report = audit_report(_table(STANDARD))
    high = report.settings.set_index("setting")["leakage_ci_high"]
    # Tolerance exactly at top_k:2's upper bound: it is within (<=), soft is not.
    at = audit_report(_table(STANDARD), tolerance=float(high["top_k:2"]))
    within = at.settings.set_index("setting")["within_tolerance"]
    assert bool(within["top_k:2"]) and not bool(within["soft"])
    below = audit_report(_table(STANDARD), tolerance=float(high["top_k:2"]) * (1 - 1e-9))
    assert not bool(below.settings.set_index("setting").loc["top_k:2", "within_tolerance"])
    # Everything is within a tolerance above the largest upper bound.
    assert audit_report(_table(STANDARD), tolerance=1.0).settings["within_tolerance"].all()


def test_recommends_highest_utility_safe_release_never_the_control():
    report = audit_report(_table(STANDARD), tolerance=0.02)
    v = report.verdict
    assert 'Recommended: "top_k:2"' in v  # 0.93 beats hard's 0.88; shuffle (0.99) is a control
    assert 'Recommended: "shuffle"' not in v
    assert "97.0% with the unmodified soft labels" in v
    assert '"hard" (utility 88.0%)' in v
    assert '"tau:5"' not in v  # not within tolerance
    assert "It should be ~0; if it is not, the audit is not trustworthy for this data" in v
    assert "Here it is." in v
    assert "50.0 percentage points" in v  # soft's leakage
    assert "80.0% of the other, held-out members right, against 30.0%" in v


def test_soft_within_tolerance_is_recommended_itself():
    spec = {"soft": {"leak": 0.0, "utility": 0.97}, "hard": {"leak": 0.0, "utility": 0.9}}
    report = audit_report(_table(spec))
    assert 'Recommended: the unmodified soft labels ("soft") themselves' in report.verdict
    assert "No shuffle control was run" in report.verdict


def test_no_setting_within_tolerance_names_the_least_leaking():
    spec = {
        "soft": {"leak": 0.5},
        "tau:5": {"leak": 0.2},
        "hard": {"leak": 0.05},
        "shuffle": {"leak": 0.0},
    }
    report = audit_report(_table(spec))
    assert not report.settings.loc[~report.settings["control"], "within_tolerance"].any()
    assert "No setting keeps leakage within that tolerance" in report.verdict
    assert 'the least leaking is "hard"' in report.verdict
    assert "Recommended" not in report.verdict


def test_control_that_leaks_is_flagged():
    spec = {"soft": {"leak": 0.5}, "hard": {"leak": 0.0}, "shuffle": {"leak": 0.2}}
    report = audit_report(_table(spec))
    assert "Here it is not" in report.verdict


def test_first_setting_described_when_soft_absent():
    spec = {"tau:5": {"leak": 0.2}, "hard": {"leak": 0.0}}
    report = audit_report(_table(spec))
    assert report.verdict.startswith('The unmodified soft labels ("soft") were not audited')
    assert 'With the first setting, "tau:5", a student' in report.verdict


def _no_holdout(spec=STANDARD):
    rows = _table(spec, baseline_kind="chance", n_nonmember=0)
    rows["utility"] = math.nan
    return rows


def test_no_holdout_path():
    report = audit_report(_no_holdout())
    v = report.verdict
    assert "utility (how well the student agrees with the teacher on new data) could not" in v
    assert "Recommended" not in v
    assert '"top_k:2", "hard"' in v
    assert "by always guessing the most common label" in v
    payload = report.to_json()
    assert all(entry["utility"] is None for entry in payload["settings"])
    assert all(entry["baseline_kind"] == "chance" for entry in payload["settings"])
    json.dumps(payload, allow_nan=False)
    ax = report.plot()
    assert isinstance(ax, Axes)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(STANDARD)
    assert ax.get_xlabel() == LEAKAGE_LABEL
    assert len(ax.containers) == len(STANDARD)


def test_no_holdout_and_nothing_safe():
    spec = {"soft": {"leak": 0.5}, "hard": {"leak": 0.1}}
    report = audit_report(_no_holdout(spec))
    assert "No setting keeps leakage within that tolerance" in report.verdict
    assert "utility was not measured" in report.verdict


@pytest.mark.parametrize("n_nonmember, flagged", [(40, True), (BIG_N, False)])
def test_the_verdict_flags_a_holdout_too_small_for_the_tolerance(n_nonmember, flagged):
    """40 non-members at baseline 0.5: the baseline's own 95% interval is about +-0.15, wider
    than a 0.05 tolerance: the verdict says so and how many would do (the smallest n whose
    Wilson half-width is at most 0.05: 381 at p = 1/2, by statsmodels' interval)."""
    rows = _table({"hard": {"leak": 0.0}}, baseline=0.5, n_nonmember=n_nonmember)
    verdict = audit_report(rows, tolerance=0.05).verdict
    assert ("Too few non-members" in verdict) == flagged
    if flagged:
        from softleak.compare.audit_summary import nonmembers_needed

        need = nonmembers_needed(0.5, 0.05, 0.95)
        assert f"at least {need:,}" in verdict
        halves = [np.ptp(_wilson(0.5 * n, n, 0.95)) / 2 for n in (need - 1, need)]
        assert halves[0] > 0.05 >= halves[1]


# ---------------------------------------------------------------------------------------------
# Outputs


def test_json_round_trips_with_exact_keys_in_order():
    rows = _table(STANDARD)
    rows.loc[rows["setting"] == "soft", "certified_leaked"] = 0.4
    report = audit_report(rows)
    payload = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert list(payload) == [
        "settings", "verdict", "correction", "tolerance", "confidence", "label_prior", "pooling",
        "notes",
    ]  # fmt: skip
    assert payload["correction"] == "holm" and payload["label_prior"] == "uniform-iid"
    assert payload["tolerance"] == 0.02 and payload["confidence"] == 0.95
    assert payload["notes"] == []  # no per-example scores, no prior note
    assert isinstance(payload["verdict"], str) and payload["verdict"]
    assert [e["setting"] for e in payload["settings"]] == list(STANDARD)
    for entry in payload["settings"]:
        assert tuple(entry) == JSON_KEYS
    soft = payload["settings"][0]
    assert soft["setting"] == "soft"
    assert soft["certified_leaked"] == pytest.approx(0.4)
    assert soft["certified_hidden"] is None
    assert soft["within_tolerance"] is False
    assert payload["settings"][-1]["control"] is True
    assert "For this linear student, 40.0%" not in payload["verdict"]  # hidden is NaN


def test_markdown_lists_every_setting():
    report = audit_report(_table(STANDARD))
    text = report.markdown()
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + len(STANDARD)
    for name in STANDARD:
        assert any(line.startswith(f"| {name}") for line in lines[1:])
    assert "certified" not in lines[0]
    assert "shuffle (control)" in text
    assert "| 0.500 [" in text
    assert report.verdict in text
    rows = _table(STANDARD, certified_leaked=0.25, certified_hidden=0.5)
    text = audit_report(rows).markdown()
    assert "certified leaked / hidden" in text and "0.250 / 0.500" in text


def test_plot_one_labelled_point_per_setting():
    report = audit_report(_table(STANDARD))
    ax = report.plot()
    assert isinstance(ax, Axes)
    assert sorted(t.get_text() for t in ax.texts) == sorted(STANDARD)
    assert len(ax.containers) == len(STANDARD)
    assert ax.get_xlabel() == UTILITY_LABEL
    assert ax.get_ylabel() == LEAKAGE_LABEL
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert any(np.allclose(line.get_ydata(), report.tolerance) for line in dashed)
    # Points sit at (utility, leakage) of the headline rows.
    for container, (_, row) in zip(ax.containers, report.settings.iterrows(), strict=True):
        x, y = container.lines[0].get_data()
        assert x[0] == pytest.approx(row["utility"]) and y[0] == pytest.approx(row["leakage"])


def test_write_creates_the_files(tmp_path):
    report = audit_report(_table(STANDARD))
    paths = report.write(tmp_path / "out")
    expected = {
        "report.md",
        "report.html",
        "report.json",
        "settings.csv",
        "per_rho.csv",
        "privacy_utility.png",
        "privacy_utility.pdf",
    }
    assert set(paths) == expected
    for name, path in paths.items():
        assert path == tmp_path / "out" / name
        assert path.stat().st_size > 0
    assert json.loads(paths["report.json"].read_text()) == report.to_json()
    assert len(pd.read_csv(paths["settings.csv"])) == len(STANDARD)
    assert len(pd.read_csv(paths["per_rho.csv"])) == len(STANDARD)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp left


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.drop(columns=["leakage", "utility"]), "lacks column"),
        (lambda r: r.iloc[:0], "empty"),
        (lambda r: pd.concat([r, r.iloc[:1]]), "more than one row per"),
        (lambda r: r.assign(leakage=r["leakage"] + 0.1), "member_acc - baseline"),
        (lambda r: r.assign(baseline_kind="holdout"), "baseline_kind"),
        (lambda r: r.assign(n_member_test=0), "n_member_test"),
        (lambda r: r.assign(order=range(len(r))), "differs within setting"),
    ],
)
def test_bad_tables_raise_one_clear_error(mutate, message):
    with pytest.raises(ValueError, match=message):
        audit_report(mutate(_table(STANDARD)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tolerance": -0.01}, "tolerance"),
        ({"tolerance": math.nan}, "tolerance"),
        ({"tolerance": math.inf}, "tolerance"),
        ({"confidence": 0.0}, "confidence"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": math.nan}, "confidence"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        audit_report(_table(STANDARD), **kwargs)


def test_not_a_dataframe_raises():
    with pytest.raises(ValueError, match="DataFrame"):
        summarize([{"setting": "soft"}])


def test_the_wider_of_the_seed_and_binomial_intervals_is_used():
    """Seeds that disagree more than the binomial noise explains: the t interval on the seeds;
    seeds that agree better than it: the members' pooled Wilson interval; either way combined
    with the baseline's own Wilson interval."""
    pytest.importorskip("statsmodels")
    n_m, n_b = 400, 400
    low_b, high_b = _wilson(0.25 * n_b, n_b, 0.95)
    for member, expect_t in (([0.5, 0.7, 0.9], True), ([0.60, 0.601, 0.602], False)):
        rows = pd.DataFrame(
            [
                _row("soft", 0, 0.5, s, m, 0.25, n_member_test=n_m, n_nonmember=n_b)
                for s, m in enumerate(member)
            ]
        )
        out = summarize(rows).iloc[0]
        leak = np.asarray(member) - 0.25
        t_half = stats.t.ppf(0.975, 2) * leak.std(ddof=1) / math.sqrt(3)
        m = float(np.mean(member))
        low_m, high_m = _wilson(m * 3 * n_m, 3 * n_m, 0.95)
        a_high = max(t_half, high_m - m)
        assert out["leakage_ci_high"] == pytest.approx(
            leak.mean() + math.hypot(a_high, 0.25 - low_b), rel=1e-12
        )
        assert (t_half > high_m - m) == expect_t


# ---------------------------------------------------------------------------------------------
# Holm's correction across the release settings


def test_holm_levels_step_down_and_controls_stay_outside():
    rows = _table(STANDARD)
    report = audit_report(rows, tolerance=0.05)
    s = report.settings.set_index("setting")
    releases = [n for n in STANDARD if n != "shuffle"]
    m = len(releases)
    # Ranked by p-value: the i-th (from 0) is judged at 1 - 0.05 / (m - i).
    ranked = sorted(releases, key=lambda n: (s.loc[n, "p_value"], list(STANDARD).index(n)))
    for i, name in enumerate(ranked):
        assert s.loc[name, "ci_confidence"] == pytest.approx(1 - 0.05 / (m - i))
    assert s.loc["shuffle", "ci_confidence"] == 0.95 and np.isnan(s.loc["shuffle", "p_holm"])
    # within = its own interval ends at or below the tolerance and every earlier one passed
    passing = True
    for name in ranked:
        passing = passing and s.loc[name, "leakage_ci_high"] <= 0.05
        assert bool(s.loc[name, "within_tolerance"]) == passing
    # the Holm-adjusted p-values against their definition
    p = np.array([s.loc[n, "p_value"] for n in ranked])
    adjusted = np.maximum.accumulate(np.minimum(1, (m - np.arange(m)) * p))
    assert np.allclose([s.loc[n, "p_holm"] for n in ranked], adjusted)


def test_one_release_setting_keeps_the_plain_interval():
    rows = _table({"soft": {"leak": 0.01}, "shuffle": {"leak": 0.0}})
    s = audit_report(rows, tolerance=0.05).settings.set_index("setting")
    plain = summarize(rows).set_index("setting")
    assert s.loc["soft", "ci_confidence"] == 0.95
    assert s.loc["soft", "leakage_ci_high"] == pytest.approx(plain.loc["soft", "leakage_ci_high"])


def test_within_p_value_inverts_the_interval():
    from softleak.compare.audit_summary import within_p_value

    rows = _table({"soft": {"leak": 0.01}})
    rows["n_member_test"] = 200  # the binomial floor and the t part both matter
    rows["n_nonmember"] = 200
    p = within_p_value(rows, tolerance=0.08)
    assert 0 < p < 1
    high = summarize(rows, 1 - p)["leakage_ci_high"].iloc[0]
    assert high == pytest.approx(0.08, abs=1e-9)
    assert within_p_value(rows, tolerance=0.0) == 1.0  # the mean is above it


def test_holm_keeps_the_family_wise_error_at_the_boundary(global_seed):
    """Every setting leaks exactly the tolerance (the null's boundary), per-seed leakages
    normal (the t interval exact): calling any of the 8 within tolerance must happen at most
    (1 - 0.95) / 2 = 2.5% of the time. Without the correction it is 1 - 0.975^8 = 18%: the
    bound below (20 of 200) is then exceeded with probability ~0.998, so the test tells the two
    apart."""
    from scipy import stats as st

    rng = np.random.default_rng(global_seed)
    reps, tol, names = 200, 0.1, list("abcdefgh")
    wrong = 0
    for _ in range(reps):
        records = []
        for order, name in enumerate(names):
            for seed in range(3):
                leak = tol + 0.05 * rng.standard_normal()
                records.append(_row(name, order, 0.5, seed, 0.3 + leak, 0.3))
        settings = audit_report(pd.DataFrame(records), tolerance=tol).settings
        wrong += bool(settings["within_tolerance"].any())
    # P(count > bound) < 1e-7 for a binomial at the allowed rate 0.025
    assert wrong <= st.binom.ppf(1 - 1e-7, reps, 0.025), wrong
