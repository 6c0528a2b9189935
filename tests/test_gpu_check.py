"""``python -m benchmarks.gpu_check --dry-run``: the GPU check's code, run on the CPU at tiny sizes
from a plain checkout (``PYTHONPATH`` = the repository root, nothing imported from an install)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def commands() -> list[str]:
    """Every experiment of every registered family (``simulate.families``): each is checked."""
    from softleak.simulate.families import families

    return [c for family in families() for c in family.commands()]


ROW_KEYS = {
    "workload",
    "part",
    "precision",
    "fused",
    "gflop_per_s",
    "fraction_of_gemm",
    "speedup_vs_loop",
}


def _run(args: list[str], cwd: Path, code: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("gpu-check")
    out = tmp / "report.json"
    # cwd outside the checkout: the modules come through PYTHONPATH, as on a bare GPU machine
    proc = _run(["benchmarks.gpu_check", "--dry-run", "--quiet", "--out", str(out)], tmp)
    assert out.is_file(), proc.stderr[-2000:]
    report = json.loads(out.read_text())
    report["_rc"], report["_stdout"], report["_stderr"] = proc.returncode, proc.stdout, proc.stderr
    return report


def test_dry_run_report_has_the_documented_structure(dry_run):
    assert {"device", "torch", "dry_run", "checks", "rates", "projections"} <= set(dry_run)
    assert dry_run["device"] == "cpu" and dry_run["dry_run"] is True
    for check in dry_run["checks"]:
        assert set(check) == {"name", "passed", "detail"}
        assert check["passed"] in (True, False, None) and check["detail"]
    rates = dry_run["rates"]
    from benchmarks.common import reduced_precisions

    # float64, float32 and each reduced precision this machine's probe finds native
    assert {"fp64", "fp32", *reduced_precisions("cpu")} == set(rates["gemm"])
    assert rates["workloads"] and all(ROW_KEYS <= set(r) for r in rates["workloads"])
    assert {r["workload"] for r in rates["workloads"]} >= {"mlp-paper-slice", "multinomial-tau"}
    grids = dry_run["projections"]["grids"]
    assert len(grids) == 3 and all(g["seconds"] > 0 for g in grids)


def test_dry_run_checks_every_family_and_every_check_that_ran_passed(dry_run):
    names = [c["name"] for c in dry_run["checks"]]
    for command in commands():
        assert any(name.endswith("/" + command) for name in names), command
    for prefix in ("memory/", "rates/", "projections", "bf16-probe/"):
        assert any(name.startswith(prefix) for name in names), prefix
    failed = [c for c in dry_run["checks"] if c["passed"] is False]
    assert not failed, failed
    assert dry_run["_rc"] == 0, dry_run["_stderr"][-2000:]
    # on a CPU, tf32 is refused by the precision policy: a skipped check with the reason
    tf32 = next(c for c in dry_run["checks"] if c["name"] == "rates/tf32")
    assert tf32["passed"] is None and "tf32" in tf32["detail"]


def test_the_rates_it_writes_are_a_rates_file(dry_run, tmp_path):
    from softleak.simulate.estimate import load_rates

    path = tmp_path / "report.json"
    path.write_text(json.dumps({k: v for k, v in dry_run.items() if not k.startswith("_")}))
    rates = load_rates(path)  # softleak figs list --rates reads a gpu_check report as it is
    assert rates.device == "cpu" and rates.calibrations


def test_missing_optional_modules_skip_their_checks(tmp_path):
    """A GPU machine without transformers and the convex solvers: gpt2 is skipped, not failed."""
    code = (
        "import sys\n"
        "for m in ('cvxpy', 'highspy', 'clarabel', 'transformers'): sys.modules[m] = None\n"
        "from benchmarks.gpu_check import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "report.json"
    args = ["--dry-run", "--quiet", "--out", str(out), "--only", "agree-float32/gpt2"]
    proc = _run([*args, "--only", "bf16-probe/gemm", "--only", "device/"], tmp_path, code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads(out.read_text())["checks"]}
    gpt2 = checks["agree-float32/gpt2"]
    assert gpt2["passed"] is None and "transformers" in gpt2["detail"]
    assert checks["bf16-probe/gemm"]["passed"] in (True, None)


@pytest.mark.parametrize("outcome", ["engaged", "not-engaged", "absent"])
def test_a_bf16_contract_without_a_fast_path_is_a_finding_not_a_failure(outcome, tmp_path):
    """Forced probe outcomes: where bf16 (oneDNN's flag) or both contracts have no fast path,
    the probe check is ``passed: null`` with a detail that starts ``finding:``. (A forced
    "engaged" on a CPU whose flag does nothing computes float32 under the bf16 label: the check
    then fails, as it must -- the contract is checked against its oracle, not taken on trust.)"""
    out = tmp_path / "report.json"
    env_code = (
        "import os, sys\n"
        f"os.environ['SOFTLEAK_PRECISION_PROBE'] = {outcome!r}\n"
        "from benchmarks.gpu_check import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["--dry-run", "--quiet", "--out", str(out), "--only", "bf16-probe/gemm"]
    proc = _run(args, tmp_path, env_code)
    check = {c["name"]: c for c in json.loads(out.read_text())["checks"]}["bf16-probe/gemm"]
    if outcome == "engaged":
        from softleak.simulate.precision_probe import probe

        real = probe("cpu").flag_pays
        assert check["passed"] is real, check
        assert (proc.returncode == 0) == real
    else:
        assert check["passed"] is None and check["detail"].startswith("finding:"), check
        assert "bf16 (bf16 operands" in check["detail"]
        assert ("bf16r (" in check["detail"]) == (outcome == "absent")
        assert proc.returncode == 0, proc.stderr[-2000:]
