"""``softleak theory ...``: outputs, JSON contract, bad input (exit 2, one line), no torch."""

import json
import math
import subprocess
import sys

import pytest

from softleak.cli import main
from softleak.theory import cover

COVER_KEYS = {
    "d",
    "n",
    "alpha",
    "bias",
    "p_separable",
    "log10_p_separable",
    "alpha_half",
    "width_10_90",
}
THRESHOLD_KEYS = {
    "rho",
    "c",
    "d",
    "alpha_scale",
    "alpha_id",
    "alpha_label_T",
    "alpha_label_T_finite_d",
    "provenance",
}
SEPARABLE_KEYS = {"n", "d", "c", "seed", "separable", "solver", "solve_s"}


def run(argv, capsys):
    """(exit code, stdout, stderr) of one command-line call."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors and --help
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def run_json(argv, capsys):
    code, out, err = run([*argv, "--json"], capsys)
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1  # exactly one JSON object on stdout
    return json.loads(out)


# ------------------------------------------------------------------------------------------------
# cover


def test_cover_json(capsys):
    rec = run_json(["theory", "cover", "--d", "1000", "--n", "2000"], capsys)
    assert set(rec) == COVER_KEYS
    assert rec["p_separable"] == 0.5 and rec["alpha"] == 2.0 and rec["alpha_half"] == 2.0
    assert rec["log10_p_separable"] == pytest.approx(-math.log10(2))
    assert rec["width_10_90"] == pytest.approx(cover.transition_width(1000))
    assert rec["bias"] is False


def test_cover_alpha_rounds_n_and_huge_sizes_stay_finite(capsys):
    rec = run_json(["theory", "cover", "--d", "1000", "--alpha", "10000"], capsys)
    assert rec["n"] == 10**7 and rec["p_separable"] == 0.0
    assert rec["log10_p_separable"] == pytest.approx(-3005871.2819, rel=1e-9)  # not -inf / null
    rec = run_json(["theory", "cover", "--d", "7", "--alpha", "1.5", "--bias"], capsys)
    assert rec["n"] == 11 and rec["bias"] is True  # round(10.5) -> 11 (half up)
    assert rec["alpha_half"] == pytest.approx(2 * 8 / 7)
    assert rec["p_separable"] == pytest.approx(cover.p_separable(11, 7, bias=True), rel=1e-15)


def test_cover_at_an_astronomical_alpha_is_finite_and_silent(capsys):
    """alpha = 1e200 at d = 5: P underflows to 0 but log10 P is the finite -1.5e200 (it was
    NaN, null in JSON, after six overflow warnings); nothing but the JSON is printed."""
    code, out, err = run(["theory", "cover", "--d", "5", "--alpha", "1e200", "--json"], capsys)
    assert code == 0 and err == ""
    rec = json.loads(out)
    assert rec["p_separable"] == 0.0
    assert rec["log10_p_separable"] == pytest.approx(-5e200 * math.log10(2), rel=1e-12)


def test_cover_human_output(capsys):
    code, out, err = run(["theory", "cover", "--d", "100", "--n", "150"], capsys)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert 3 <= len(lines) <= 10
    assert any("P(separable)" in line for line in lines)
    # Aligned: every value starts in the same column, two spaces after the longest label.
    col = max(line.index("  ") for line in lines) + 2
    assert all(line[col - 2 : col] == "  " and line[col] != " " for line in lines)


# ------------------------------------------------------------------------------------------------
# thresholds


def test_thresholds_binary(capsys):
    rec = run_json(["theory", "thresholds", "--rho", "0.8", "--d", "1600"], capsys)
    assert set(rec) == THRESHOLD_KEYS
    assert rec["alpha_scale"] == "n/d"
    assert rec["alpha_id"] == pytest.approx(1.25)
    assert rec["alpha_label_T"] == 2.0 and rec["alpha_label_T_finite_d"] == 2.0
    assert rec["provenance"] == {
        "alpha_id": "exact",
        "alpha_label_T": "asymptotic",
        "alpha_label_T_finite_d": "exact",
    }


def test_thresholds_multiclass_and_latex(capsys):
    rec = run_json(["theory", "thresholds", "--rho", "0.55", "--c", "10", "--latex"], capsys)
    assert set(rec) == THRESHOLD_KEYS | {"latex"}
    assert rec["alpha_scale"] == "n/(d c)"
    assert rec["alpha_id"] == pytest.approx(1 / 5.5)
    assert rec["alpha_label_T"] == pytest.approx(1 / (2 * math.log(10)))
    assert rec["alpha_label_T_finite_d"] is None and rec["d"] is None
    assert rec["provenance"]["alpha_label_T"] == "heuristic"
    assert set(rec["latex"]) >= {"alpha_id", "alpha_label_T"}
    rec = run_json(["theory", "thresholds", "--rho", "0.5", "--softmax"], capsys)
    assert rec["alpha_scale"] == "n/(d c)" and rec["alpha_id"] == pytest.approx(1.0)
    code, out, _ = run(["theory", "thresholds", "--rho", "0.8", "--latex"], capsys)
    assert code == 0 and r"\rho" in out and "1.25" in out


# ------------------------------------------------------------------------------------------------
# separable (needs the LP module)


def test_separable(capsys):
    pytest.importorskip("softleak.theory.feasibility")
    # n <= d: separable for every seed (P = 1); n = 60 in d = 10: P = 2.6e-8, never separable in
    # practice; 300 points of 3 classes in the plane: never separable.
    rec = run_json(["theory", "separable", "--n", "10", "--d", "10", "--seed", "3"], capsys)
    assert set(rec) == SEPARABLE_KEYS | {"bias", "p_separable_cover"}
    assert rec["separable"] is True and rec["p_separable_cover"] == 1.0 and rec["seed"] == 3
    rec = run_json(["theory", "separable", "--n", "60", "--d", "10"], capsys)
    assert rec["separable"] is False
    rec = run_json(["theory", "separable", "--n", "9", "--d", "10", "--c", "3"], capsys)
    assert rec["separable"] is True and "p_separable_cover" not in rec
    rec = run_json(["theory", "separable", "--n", "300", "--d", "2", "--c", "3", "--bias"], capsys)
    assert rec["separable"] is False
    code, out, _ = run(["theory", "separable", "--n", "10", "--d", "10"], capsys)
    assert code == 0 and "separable" in out


# ------------------------------------------------------------------------------------------------
# errors and help


@pytest.mark.parametrize(
    "argv",
    [
        ["theory"],
        ["theory", "cover", "--d", "0", "--n", "5"],
        ["theory", "cover", "--d", "-3", "--n", "5"],
        ["theory", "cover", "--d", "10", "--n", "abc"],
        ["theory", "cover", "--d", "10", "--n", "2.5"],
        ["theory", "cover", "--d", "10"],
        ["theory", "cover", "--d", "10", "--n", "5", "--alpha", "2"],
        ["theory", "cover", "--d", "10", "--alpha", "0.01"],
        ["theory", "cover", "--d", "10", "--alpha", "nan"],
        ["theory", "cover", "--d", "5", "--alpha", "1e308"],  # alpha d overflows
        ["theory", "cover", "--d", "1e301", "--n", "5"],  # beyond theory.cover.MAX_SIZE
        ["theory", "cover", "--d", "1e5000", "--n", "5"],  # beyond any integer we read
        ["theory", "separable", "--n", "10", "--d", "10", "--seed", "1.5"],
        ["theory", "thresholds", "--rho", "5e-324"],  # 1/rho overflows
        ["theory", "thresholds", "--rho", "0.5", "--c", "1e301"],  # c beyond float arithmetic
        ["theory", "thresholds", "--rho", "0.5", "--d", "1e400"],  # d beyond float64
        ["theory", "thresholds", "--rho", "0"],
        ["theory", "thresholds", "--rho", "1"],
        ["theory", "thresholds", "--rho", "1.5"],
        ["theory", "thresholds", "--rho", "abc"],
        ["theory", "thresholds", "--rho", "0.5", "--c", "1"],
        ["theory", "thresholds", "--rho", "0.5", "--c", "3", "--softmax"],
        ["theory", "thresholds", "--rho", "0.5", "--d", "0"],
        ["theory", "separable", "--n", "301", "--d", "10", "--c", "3"],
        ["theory", "separable", "--n", "0", "--d", "10"],
        ["theory", "separable", "--n", "10", "--d", "10", "--seed", "-1"],
    ],
)
def test_bad_input_is_one_line_exit_2(argv, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_multiple_of_c_message(capsys):
    _, _, err = run(["theory", "separable", "--n", "301", "--d", "10", "--c", "3"], capsys)
    assert "multiple of c" in err


@pytest.mark.parametrize("cmd", [[], ["cover"], ["thresholds"], ["separable"]])
def test_help(cmd, capsys):
    code, out, _ = run(["theory", *cmd, "--help"], capsys)
    assert code == 0
    assert "usage:" in out and len(out.splitlines()) > 5


# ------------------------------------------------------------------------------------------------
# a real process: entry point works and torch is never imported


def test_subprocess_no_torch():
    script = (
        "import sys; from softleak.cli import main; "
        "rc = main(['theory', 'cover', '--d', '50', '--n', '100', '--json']); "
        "rc |= main(['theory', 'thresholds', '--rho', '0.8', '--c', '5']); "
        "assert 'torch' not in sys.modules, 'theory imported torch'; sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout.splitlines()[0])
    assert rec["p_separable"] == 0.5
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "softleak",
            "theory",
            "cover",
            "--d",
            "50",
            "--alpha",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n"] == 100
