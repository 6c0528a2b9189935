"""``softleak compare ...`` on synthetic sweep directories written by the tests."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from softleak.cli import main


def run(argv: list[str]) -> int:
    """Exit code of ``softleak ARGV``, whether argparse exits (bad syntax) or main returns."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def sweep_table(d: int = 100, seeds: int = 3, rng: np.random.Generator | None = None):
    """A logistic-pinv-like sweep: teacher fits up to alpha ~ 2, student recovers at rho alpha ~ 1,
    shuffled students stop fitting at alpha ~ 1. Small noise per run."""
    rng = rng or np.random.default_rng()
    rows = []
    for seed in range(seeds):
        for a in np.linspace(0.5, 3.0, 26):
            teacher = float(np.clip(1.0 - 0.1 * max(0.0, a - 2.05), 0.5, 1.0))
            for rho in (0.5, 0.8):
                for shuffle in (False, True):
                    ra = rho * a
                    if shuffle:
                        train = float(np.clip(1.0 - 0.2 * max(0.0, a - 0.9), 0.5, 1.0))
                        test = 0.5
                    else:
                        train = teacher
                        test = min(1.0, 0.5 + 0.5 * ra) if teacher == 1.0 else 0.9
                    rows.append(
                        {
                            "experiment": "logistic-pinv",
                            "d": d,
                            "c": 2,
                            "n": int(round(a * d)),
                            "alpha": float(a),
                            "rho": rho,
                            "tau": math.nan,
                            "shuffle": shuffle,
                            "ablation": "none",
                            "solver": "pinv",
                            "seed": seed,
                            "teacher_train_acc": teacher,
                            "student_train_acc": train - 1e-3 * rng.random(),
                            "student_test_acc": test - 1e-3 * rng.random(),
                            "match_teacher_test_acc": 1.0 if ra >= 1 else 0.8,
                            "test_mse": 0.0 if ra >= 1 else 1.0,
                        }
                    )
    return pd.DataFrame(rows)


def write_sweep(folder: Path, df: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    df.to_parquet(folder / "results.parquet")
    (folder / "config.json").write_text(json.dumps({"experiment": "logistic-pinv"}))
    return folder


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return write_sweep(tmp_path_factory.mktemp("sweep") / "d100", sweep_table())


def test_thresholds_json_contract(sweep, capsys):
    assert main(["compare", "thresholds", str(sweep), "--json", "--n-boot", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {
        "alpha_label_T",
        "alpha_label_S",
        "alpha_id_S",
        "alpha_label_S_shuffle",
        "theory",
        "complete",
    }
    assert out["complete"] is True  # a table written as a whole (no grid recorded) counts as one
    assert isinstance(out["alpha_label_T"], dict)  # teacher: one (d, c)
    assert isinstance(out["alpha_id_S"], list) and len(out["alpha_id_S"]) == 2  # two rho
    for entry in out["alpha_id_S"]:
        assert {"value", "ci_low", "ci_high", "rho", "tau"} <= set(entry)
        assert entry["value"] == pytest.approx(1 / entry["rho"], abs=0.1)
    assert out["alpha_label_S_shuffle"] is not None
    theory = out["theory"]
    assert {p["rho"]: p["value"] for p in theory["alpha_id"]} == pytest.approx(
        {0.5: 2.0, 0.8: 1.25}
    )
    assert theory["alpha_label_T"]["value"] == pytest.approx(2.0)
    assert theory["alpha_label_T"]["provenance"]
    assert len(theory["gap"]["alpha_id_S"]) == 2


def test_thresholds_table_and_cutoff(sweep, capsys):
    assert main(["compare", "thresholds", str(sweep), "--cutoff", "0.95", "--n-boot", "0"]) == 0
    text = capsys.readouterr().out
    assert "alpha_label_T" in text and "alpha_id_S" in text and "0.95" not in text.split()[0]


def test_phase_and_overlay_write_figures(sweep, tmp_path, capsys):
    out = tmp_path / "figs" / "phase.png"
    assert main(["compare", "phase", str(sweep), "--out", str(out), "--hatch"]) == 0
    assert out.stat().st_size > 2000
    assert str(out) in capsys.readouterr().out
    out2 = tmp_path / "overlay.pdf"
    args = ["compare", "overlay", str(sweep), "--out", str(out2), "--n-boot", "50", "--json"]
    assert main(args) == 0
    gaps = json.loads(capsys.readouterr().out)
    assert {g["name"] for g in gaps} == {"alpha_label_T", "alpha_id_S"}
    assert out2.stat().st_size > 1000
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_fss_over_several_dirs(tmp_path, capsys):
    rng = np.random.default_rng()
    dirs = [write_sweep(tmp_path / f"d{d}", sweep_table(d=d, seeds=2, rng=rng)) for d in (50, 100)]
    out = tmp_path / "fss.png"
    argv = ["compare", "fss", *map(str, dirs), "--out", str(out), "--json", "--n-boot", "20"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rule"] == "alpha_label_T"
    assert sorted(r["d"] for r in report["thresholds"]) == [50, 100]
    assert out.is_file()


@pytest.mark.parametrize(
    "argv_tail",
    [
        ["thresholds", "{missing}"],
        ["phase", "{missing}", "--out", "{out}"],
        ["phase", "{sweep}", "--out", "{bad_suffix}"],
        ["phase", "{sweep}", "--out", "{out}", "--x", "rho", "--y", "rho"],
        ["overlay", "{sweep}", "--out", "{out}", "--rho", "0.3"],
        ["fss", "{sweep}", "--out", "{out}"],  # one d only
        ["thresholds", "{sweep}", "--cutoff", "1.5"],
    ],
)
def test_bad_input_exits_2_and_writes_nothing(argv_tail, sweep, tmp_path, capsys):
    names = {
        "missing": str(tmp_path / "nope"),
        "out": str(tmp_path / "out.png"),
        "bad_suffix": str(tmp_path / "out.txt"),
        "sweep": str(sweep),
    }
    argv = ["compare", *(a.format(**names) for a in argv_tail)]
    assert run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_missing_columns_exit_2(tmp_path, capsys):
    folder = write_sweep(tmp_path / "bad", sweep_table().drop(columns=["seed"]))
    assert run(["compare", "thresholds", str(folder)]) == 2
    assert "seed" in capsys.readouterr().err


def test_compare_is_torch_free():
    code = (
        "import sys, softleak.compare, softleak.compare.style, softleak.commands_compare; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
