"""The leakage audit end to end (``simulate.audit``, ``softleak audit``).

Oracles: a teacher that memorized random labels leaks exactly where the paper says a linear
student identifies it (rho n >= d: every held-out member recovered); the within-class shuffle
control and a teacher that never saw the members leak nothing (the false-positive checks); the
certificates bound the trained student (every certified-leaked point is right for it, every
certified-hidden one wrong); batched == one setting at a time; resumed == uninterrupted.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import _default_seed

from softleak import simulate
from softleak.cli import main
from softleak.compare import privacy as P
from softleak.compare.audit_report import audit_report
from softleak.simulate.audit_data import AuditData
from softleak.simulate.audit_result import EXAMPLE_COLUMNS, AuditResult
from softleak.simulate.leakage_audit import AuditSpec, audit
from softleak.simulate.rundir import IdentityMismatch

D, C, N, N_VAL = 40, 4, 60, 400
# Held-out members per seed at rho = 0.75: 15; over 5 seeds the member accuracy of a student
# at chance (0.25) has SE ~0.05, the non-member accuracy ~0.01. A leakage bound of 0.2 is 4 SE:
# a no-leak case fails it with probability < 1e-4 for any seed.
NO_LEAK = 0.2
# One student's prediction may flip from float32 rounding at a margin ~0 (certificates use
# float64): allow one held-out point of slack per seed.
ONE_POINT = 1.0 / 15 + 1e-9


def _exported_teacher(root, d, c, n, n_val, epochs):
    """Train a multinomial (linear) teacher on n random labels in d dimensions with the command
    line and export it with n_val fresh non-members (random labels): (folder, AuditData)."""
    sweep = [
        *("simulate", "multinomial", "--d", str(d), "--c", str(c), "--n", str(n)),
        *("--rho", "0.5", "--tau", "1", "--teacher-epochs", str(epochs), "--teacher-lr", "0.01"),
        *("--student-epochs", "1", "--n-val", str(n_val), "--seed", str(_default_seed())),
        *("--no-progress", "--out", str(root / "sweep")),
    ]
    assert main(sweep) == 0
    assert main(["simulate", "export-teacher", str(root / "sweep"), "--out", str(root / "t")]) == 0
    members, holdout = root / "t" / "members.npz", root / "t" / "holdout.npz"
    return root / "t", AuditData.from_files(members, members, members, holdout, holdout, holdout)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A teacher that memorized N random labels in D dimensions, with N_VAL non-members."""
    folder, data = _exported_teacher(tmp_path_factory.mktemp("audit"), D, C, N, N_VAL, 2000)
    assert data.describe()["teacher_member_acc"] == 1.0  # it memorized
    return folder, data


def never_seen(data: AuditData) -> AuditData:
    """The teacher's non-members split in two: pretend members (which it never trained on) and
    non-members, for the false-positive checks."""
    half = len(data.holdout_labels) // 2
    return AuditData(
        data.holdout_logits[:half],
        data.holdout_labels[:half],
        data.holdout_inputs[:half],
        data.holdout_logits[half:],
        data.holdout_labels[half:],
        data.holdout_inputs[half:],
    )


def _by_setting(rows, column="leakage"):
    return rows.groupby("setting")[column].mean()


def test_memorizing_teacher_leaks_where_a_linear_student_identifies_it(teacher):
    _, data = teacher
    spec = AuditSpec(rho=(0.25, 0.75), seeds=5, settings=("soft", "hard", "shuffle"))
    rows = audit(data, spec).rows
    at = {r: rows[rows.rho == r] for r in spec.rho}
    # rho n = 45 >= d = 40: the soft-label student is the teacher; it recovers every held-out
    # member (the teacher memorized them) while non-members stay near chance.
    soft = at[0.75][at[0.75].setting == "soft"]
    assert (soft.member_acc == 1.0).all()
    assert (soft.certified_leaked == 1.0).all()
    assert soft.leakage.mean() > 0.5
    # rho n = 15 < d: the student sees only part of the teacher; it leaks less.
    assert _by_setting(at[0.25])["soft"] < soft.leakage.mean()
    # Hard labels carry only the memorized labels themselves, the shuffle control nothing
    # about any individual member: no leakage either way.
    for r in spec.rho:
        assert abs(_by_setting(at[r])["shuffle"]) < NO_LEAK
    report = audit_report(rows, tolerance=0.05)
    head = report.settings.set_index("setting")
    assert head.loc["soft", "leakage_ci_low"] > 0.05
    assert not head.loc["soft", "within_tolerance"]
    assert "soft" in report.verdict and "shuffle" in report.verdict


def test_a_teacher_that_never_saw_the_members_shows_no_leakage(teacher):
    """False-positive check: the same teacher, audited on points it was never trained on (its
    fresh non-members, split into pretend members and non-members)."""
    fresh = never_seen(teacher[1])
    rows = audit(fresh, AuditSpec(rho=(0.5,), seeds=3)).rows
    leak = _by_setting(rows)
    # 100 held-out pretend-members per seed: SE of a seed's leakage ~0.06, of the mean ~0.035.
    assert (leak.abs() < NO_LEAK).all(), leak.to_dict()
    assert len(leak) == len(AuditSpec().settings) - 1  # top_k:5 >= c = 4 is dropped


def test_mlp_students_and_no_holdout_baseline(teacher, tmp_path):
    _, data = teacher
    members_only = AuditData(data.logits, data.labels, data.inputs)
    spec = AuditSpec(
        rho=(0.5,), seeds=2, student="mlp", width=(16,), epochs=200, settings=("soft", "hard")
    )
    result = audit(members_only, spec)
    rows = result.rows
    share = np.bincount(data.labels, minlength=C).max() / N
    assert (rows.baseline == share).all() and (rows.baseline_kind == "chance").all()
    assert rows.utility.isna().all() and rows.certified_leaked.isna().all()
    assert (rows.student == "mlp:16").all()
    assert np.allclose(rows.leakage, rows.member_acc - share)
    report = audit_report(rows).to_json()
    assert report["settings"][0]["utility"] is None
    json.dumps(report, allow_nan=False)
    # With the per-example scores but no non-members: an epsilon bound, no membership inference
    full = audit_report(result)
    soft = full.to_json()["settings"][0]
    held = result.examples[result.examples.setting == "soft"]
    counts = held.groupby("seed")["correct"].agg(["sum", "size"]).to_numpy()
    assert soft["runs"] == 2
    assert soft["epsilon_lb"] == max(P.epsilon_lower_bound(k, t, C, 0.95, 2) for k, t in counts)
    assert soft["auc"] is None
    assert "epsilon_lb_vs_baseline" not in soft and soft["tpr_at_fpr"]["0.01"] is None
    written = full.write(tmp_path / "report")
    assert "roc.png" not in written and (tmp_path / "report" / "report.html").exists()
    json.dumps(full.to_json(), allow_nan=False)


def test_certificates_bound_the_trained_linear_student(teacher):
    _, data = teacher
    rows = audit(
        data, AuditSpec(rho=(0.25, 0.5), seeds=3, settings=("soft", "tau:3", "shuffle"))
    ).rows
    rows = rows.dropna(subset=["certified_leaked"])
    assert len(rows) == 18  # every setting has positive labels and rho n <= d: all certified
    # The warm-started student is the minimum-norm consistent one, inside the certified set.
    assert (rows.certified_leaked <= rows.member_acc + ONE_POINT).all()
    assert (rows.certified_hidden <= 1 - rows.member_acc + ONE_POINT).all()


def test_batched_settings_equal_settings_trained_alone(teacher):
    _, data = teacher
    spec = dict(rho=(0.5,), seeds=1, solver="adam", epochs=150, dtype="float64", certify=False)
    settings = ("soft", "noise:1", "shuffle")
    together = audit(data, AuditSpec(settings=settings, **spec)).rows.set_index("setting")
    columns = ["member_acc", "baseline", "utility", "student_train_acc", "model_seed"]
    for name in settings:
        alone = audit(data, AuditSpec(settings=(name,), **spec)).rows.set_index("setting")
        assert together.loc[name, columns].tolist() == alone.loc[name, columns].tolist()


def test_resume_equals_uninterrupted_and_other_settings_are_refused(teacher, tmp_path):
    _, data = teacher
    spec = AuditSpec(rho=(0.25, 0.5), seeds=2, settings=("soft", "hard"))
    full = audit(data, spec, out=tmp_path / "a")
    run = tmp_path / "b"
    audit(data, spec, out=run)
    parts = sorted((run / "parts").glob("*.parquet"))
    assert len(parts) == 4
    parts[1].unlink()  # as if killed before this (seed, rho) finished
    (run / "results.parquet").unlink()
    resumed = audit(data, spec, out=run)
    assert resumed.rows.drop(columns="wall_s").equals(full.rows.drop(columns="wall_s"))
    assert resumed.examples.equals(full.examples)
    other = AuditSpec(rho=(0.25, 0.5), seeds=2, settings=("soft",))
    with pytest.raises(IdentityMismatch):
        audit(data, other, out=run)
    again = audit(data, other, out=run, restart=True).rows
    assert set(again.setting) == {"soft"}
    assert len(list((run / "parts").glob("*.parquet"))) == 4


def test_package_level_entry_point(teacher):
    _, data = teacher
    rows = simulate.audit(data, AuditSpec(rho=(0.5,), seeds=1, settings=("soft",))).rows
    assert rows.attrs["config"]["data"]["n_members"] == N
    assert rows.attrs["config"]["settings"] == ["soft"]


def test_cli_json_report_and_files(teacher, tmp_path, capsys):
    folder, _ = teacher
    out = tmp_path / "run"
    args = [
        *("audit", "--members", str(folder / "members.npz"), "--holdout"),
        *(str(folder / "holdout.npz"), "--rho", "0.75", "--seeds", "2"),
        *("--settings", "soft,hard,shuffle", "--out", str(out), "--json"),
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"settings", "verdict", "correction", "label_prior"} <= set(report)
    assert report["correction"] == "holm" and report["label_prior"] == "uniform-iid"
    names = [s["setting"] for s in report["settings"]]
    assert names == ["soft", "hard", "shuffle"]
    keys = {"setting", "leakage", "leakage_ci_low", "leakage_ci_high", "utility"}
    assert all(keys <= set(s) for s in report["settings"])
    soft = report["settings"][0]
    assert soft["leakage_ci_low"] <= soft["leakage"] <= soft["leakage_ci_high"]
    for name in ("report.md", "report.html", "report.json", "privacy_utility.png", "roc.png"):
        assert (out / "report" / name).exists()
    assert (out / "results.parquet").exists() and (out / "config.json").exists()
    # Rerunning resumes (nothing retrained) and prints the Markdown report.
    assert main(args[:-1]) == 0
    assert "| soft |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--settings", "soft,top_k:9"], "top_k"),
        (["--settings", "soft,blur:2"], "unknown release setting"),
        (["--holdout-logits", "X"], "not both"),
        (["--rho", "0.001"], "held-out"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(teacher, tmp_path, capsys, extra, message):
    folder, _ = teacher
    out = tmp_path / "run"
    args = [
        *("audit", "--members", str(folder / "members.npz")),
        *("--holdout", str(folder / "holdout.npz"), "--out", str(out), *extra),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_bad_files_exit_2(teacher, tmp_path, capsys):
    folder, data = teacher
    np.save(tmp_path / "short.npy", data.labels[:-1])
    members = str(folder / "members.npz")
    cases = [
        (["--logits", members, "--labels", str(tmp_path / "short.npy"), "--inputs", members], "("),
        (
            ["--logits", str(tmp_path / "missing.npy"), "--labels", members, "--inputs", members],
            "no such file",
        ),
        (["--members", members, "--holdout-logits", members], "go together"),
    ]
    for extra, message in cases:
        out = tmp_path / "run"
        assert main(["audit", *extra, "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()
    shutil.rmtree(tmp_path / "run", ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Per-example scores and the privacy numbers

D2, N2, N2_VAL = 300, 500, 400  # c = 2: the teacher memorizes n / d = 1.67 < 2 (Cover)


@pytest.fixture(scope="module")
def binary_teacher(tmp_path_factory):
    """A binary teacher that memorized N2 random labels in D2 dimensions, N2_VAL non-members."""
    return _exported_teacher(tmp_path_factory.mktemp("audit2"), D2, 2, N2, N2_VAL, 3000)[1]


def test_examples_agree_with_the_rows(teacher):
    _, data = teacher
    result = audit(data, AuditSpec(rho=(0.5,), seeds=2, settings=("soft", "hard", "shuffle")))
    ex = result.examples
    assert tuple(ex.columns) == EXAMPLE_COLUMNS
    members = ex[ex.group == "heldout_member"]
    nonmembers = ex[ex.group == "nonmember"]
    # one row per (student, held-out member) and per (student, non-member)
    assert len(members) == int(result.rows.n_member_test.sum())
    assert len(nonmembers) == len(result.rows) * N_VAL
    acc = members.groupby(["setting", "seed"])["correct"].mean()
    base = nonmembers.groupby(["setting", "seed"])["correct"].mean()
    rows = result.rows.set_index(["setting", "seed"])
    assert np.allclose(acc.loc[rows.index], rows.member_acc)
    assert np.allclose(base.loc[rows.index], rows.baseline)
    assert (members.score <= members.confidence + 1e-12).all()
    assert ((members.score >= members.confidence - 1e-12) | ~members.correct).all()
    # the held-out indices are the members the student did not train on: labels match
    assert (members["label"].to_numpy() == data.labels[members["index"].to_numpy()]).all()


def test_memorizing_binary_teacher_epsilon_bound_and_membership_inference(binary_teacher):
    """c = 2, rho n = 350 >= d = 300: the student identifies the teacher, which memorized the
    150 held-out members: it guesses them all, which rules out epsilon ~ 3.5."""
    data = binary_teacher
    assert data.describe()["teacher_member_acc"] >= 0.98
    result = audit(data, AuditSpec(rho=(0.7,), seeds=2, settings=("soft", "hard", "shuffle")))
    report = audit_report(result, tolerance=0.05)
    entries = {e["setting"]: e for e in report.to_json()["settings"]}
    soft = entries["soft"]
    # Oracle: the bound from the held-out counts by compare.privacy, Bonferroni over 2 runs
    ex = result.examples
    held = ex[(ex.setting == "soft") & (ex.group == "heldout_member")]
    counts = held.groupby("seed")["correct"].agg(["sum", "size"]).to_numpy()
    assert soft["epsilon_lb"] == max(P.epsilon_lower_bound(k, t, 2, 0.95, 2) for k, t in counts)
    assert soft["epsilon_lb"] > 3, soft  # every held-out member right: eps >= 3.69
    # The student identifies the teacher (rho n >= d), so its membership AUC is the teacher's
    # own: the teacher's probability of the true label, held-out members against non-members,
    # pooled as the report pools (the non-members once per seed). Scores are the probability
    # of the true label, so every non-member whose random label the teacher happens to favour
    # (half of them) also scores above 1/2: the AUC stays near 0.6-0.7 (measured 0.62).
    teacher_m = _true_label_proba(data.logits, held["index"], held["label"])
    non = ex[(ex.setting == "soft") & (ex.group == "nonmember")]
    teacher_n = _true_label_proba(data.holdout_logits, non["index"], non["label"])
    assert soft["auc"] == pytest.approx(P.auc(teacher_m, teacher_n), abs=0.01)
    assert soft["auc"] > 0.55
    assert soft["precision_at_coverage"]["0.01"] == 1.0
    assert soft["tpr_at_fpr"]["0.001"] is None  # 400 non-members < 1 / 0.001
    assert soft["mia_n_nonmember"] == 2 * N2_VAL
    # the shuffle control carries nothing about individual members
    assert entries["shuffle"]["epsilon_lb"] < entries["soft"]["epsilon_lb"] / 2


def _true_label_proba(logits, index, label):
    """The teacher's softmax (tau = 1) probability of each example's label."""
    z = logits[np.asarray(index)]
    z = np.exp(z - z.max(1, keepdims=True))
    return (z / z.sum(1, keepdims=True))[np.arange(len(z)), np.asarray(label)]


def test_a_teacher_that_never_saw_the_members_rules_out_no_epsilon(binary_teacher):
    fresh = never_seen(binary_teacher)
    result = audit(fresh, AuditSpec(rho=(0.5,), seeds=2, settings=("soft",)))
    # at confidence 1 - 1e-6 a bound above 0 happens with probability <= 1e-6 for any seed
    report = audit_report(result, tolerance=0.05, confidence=1 - 1e-6)
    soft = report.to_json()["settings"][0]
    assert soft["epsilon_lb"] == 0.0
    n_m, n_n = soft["mia_n_member"], soft["mia_n_nonmember"]
    se = np.sqrt((n_m + n_n + 1) / (12 * n_m * n_n))  # the AUC's SE under the null
    assert abs(soft["auc"] - 0.5) < 6 * se


def test_parts_without_examples_are_recomputed(teacher, tmp_path):
    _, data = teacher
    spec = AuditSpec(rho=(0.5,), seeds=2, settings=("soft", "hard"))
    run = tmp_path / "run"
    first = audit(data, spec, out=run)
    sides = sorted((run / "example_parts").glob("*.parquet"))
    assert len(sides) == 2
    sides[0].unlink()  # a part written before per-example scores existed
    again = audit(data, spec, out=run)
    assert again.examples.equals(first.examples)
    assert again.rows.drop(columns="wall_s").equals(first.rows.drop(columns="wall_s"))
    back = AuditResult.read(run)
    assert back.examples.equals(first.examples) and len(back.rows) == len(first.rows)


def test_scores_in_small_chunks_equal_one_chunk(teacher, monkeypatch):
    """The scoring budget splits rows into chunks: the scores do not depend on the split (to
    float32 round-off: a product of 7 rows is blocked differently from one of 400)."""
    from softleak.simulate import leakage_audit

    _, data = teacher
    spec = AuditSpec(rho=(0.5,), seeds=1, settings=("soft", "hard"))
    whole = audit(data, spec).examples
    monkeypatch.setattr(leakage_audit, "SCORE_BUDGET", 2 * C * 7)  # 7 rows per chunk
    split = audit(data, spec).examples
    pd.testing.assert_frame_equal(split, whole, check_exact=False, rtol=1e-5, atol=1e-7)


def test_examples_bytes_bounds_the_per_example_table(teacher):
    """The memory check's size of the per-example table against the table an audit builds."""
    _, data = teacher
    spec = AuditSpec(rho=(0.25, 0.5), seeds=2, settings=("soft", "hard", "shuffle"))
    ex = audit(data, spec).examples
    actual = int(ex.memory_usage(deep=True).sum())
    estimate = spec.examples_bytes(data.n, len(data.holdout_labels), 3)
    # the estimate counts every member as held out and the concatenation twice: above the
    # table, and within 4x of it here (held-out members are 50-75% of the members)
    assert actual <= estimate <= 4 * actual, (actual, estimate)
