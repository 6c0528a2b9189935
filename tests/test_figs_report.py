"""The reproduction report (``softleak figs report``), ``figs all`` going on past a failing figure,
and ``figs list --json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softleak.cli import main
from softleak.compare import claims as C
from softleak.compare.document import Document
from softleak.paper_figs import registry
from softleak.paper_figs.registry import Preset, Recipe

GOOD = C.Claim("figa.rises", "Accuracy rises with rho (Fig. A).", paper=0.5)
BAD = C.Claim("figa.jump", "The jump sits at alpha = 1 (sec. 4).")


def _make_good(tables, out, preset):
    from softleak.compare.style import write_text_atomic

    write_text_atomic(Path(out) / "figa.png", "not really a png")
    return {
        "text": "figure A line one\nline two",
        "files": [str(Path(out) / "figa.png"), str(Path(out) / "figa.pdf")],
        "claims": [
            C.judge_monotone(GOOD, [0.1, 0.3, 0.6], increasing=True),
            C.judge_close(BAD, 1.4, 1.0, 0.1, why_not="finite training"),
        ],
    }


def _make_bad(tables, out, preset):
    raise RuntimeError("the sweep ran out of patience\nsecond line")


FAKE = {
    "figa": Recipe(
        "figa", "Figure A", {"quick": Preset({}, "a note")}, _make_good, claims=(GOOD, BAD)
    ),
    "figb": Recipe("figb", "Figure B", {"quick": Preset({}, "b note")}, _make_bad),
}


@pytest.fixture
def fake_recipes(monkeypatch):
    monkeypatch.setattr(registry, "load_recipes", lambda: dict(FAKE))


def test_figs_all_goes_on_past_a_failure_reports_it_and_exits_non_zero(
    fake_recipes, tmp_path, capsys, monkeypatch
):
    root = tmp_path / "root"
    code = main(["figs", "all", "--out", str(root), "--no-progress", "--device", "cpu"])
    assert code == 1
    err = capsys.readouterr().err
    assert "figb failed: RuntimeError: the sweep ran out of patience" in err
    assert "second line" not in err
    assert (root / "figb" / "error.txt").read_text().startswith("RuntimeError")
    summary = json.loads((root / "figa" / "summary.json").read_text())
    assert [c["verdict"] for c in summary["claims"]] == ["holds", "fails"]
    md = (root / "report.md").read_text()
    html = (root / "report.html").read_text()
    assert "1 of 2 claims hold, 1 fail, 0 untested" in md and "1 figure(s) failed" in md
    assert "| figa.jump |" in md and "finite training" in md
    assert '<img src="figa/figa.png"' in html and "figb" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    # a rerun where the figure succeeds clears its failure from the report
    FAKE_OK = dict(FAKE, figb=Recipe("figb", "Figure B", {"quick": Preset({})}, _make_good_b))
    monkeypatch.setattr(registry, "load_recipes", lambda: FAKE_OK)
    assert main(["figs", "all", "--out", str(root), "--no-progress", "--device", "cpu"]) == 0
    assert not (root / "figb" / "error.txt").exists()
    assert "failed" not in (root / "report.md").read_text().split("## Claims")[0]


def _make_good_b(tables, out, preset):
    return {"text": "b"}


def test_figs_report_rereads_a_root_and_refuses_an_empty_one(fake_recipes, tmp_path, capsys):
    root = tmp_path / "root"
    main(["figs", "all", "--out", str(root), "--no-progress", "--device", "cpu"])
    (root / "report.md").unlink()
    assert main(["figs", "report", str(root)]) == 0
    assert (root / "report.md").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["figs", "report", str(empty)]) == 2
    assert "holds no figure folders" in capsys.readouterr().err
    assert not list(empty.iterdir())  # nothing written
    assert main(["figs", "list", str(root)]) == 2  # ROOT is for report only


@pytest.mark.parametrize(
    "text, cause",
    [
        ("{not json", "Expecting property name"),
        ('{"claims": "all hold"}', "'claims' is str, not a list"),
        ('{"claims": [{"id": "a", "verdict": "maybe"}]}', "verdict is 'maybe'"),
        ('{"claims": [{"id": 3, "verdict": "holds"}]}', "claim 0's 'id' is int"),
        ('{"run_s": "long"}', "'run_s' is str"),
        ('{"files": [1]}', "'files' holds"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_a_damaged_summary_is_a_failure_in_the_report_and_one_line_exit_2(
    fake_recipes, tmp_path, capsys, text, cause
):
    """A summary.json a user edited (it does not parse, or its fields have other types) is a
    user error: one line naming the file and the cause, exit 2; the report is still written and
    lists the figure as failed."""
    root = tmp_path / "root"
    (root / "figa").mkdir(parents=True)
    (root / "figa" / "summary.json").write_text(text)
    assert main(["figs", "report", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "summary.json does not read" in err[0] and cause in err[0], err
    assert "does not read" in (root / "report.md").read_text()


def test_the_document_writes_the_same_content_in_both_formats(tmp_path):
    doc = Document("T")
    doc.heading("Claims")
    doc.paragraph("a < b & c")
    doc.table(
        ["x", "y|z"], [["1", "holds"], ["2", "fails"]], marks=["holds", "fails"], mark_column=1
    )
    doc.image("fig/a.png", "caption")
    paths = doc.write(tmp_path, "r")
    html, md = paths["r.html"].read_text(), paths["r.md"].read_text()
    assert "a &lt; b &amp; c" in html and "a &lt; b &amp; c" in md  # both render a < b & c
    assert '<tr class="fails"><td>2</td><td class="mark">fails</td></tr>' in html
    assert "| x | y\\|z |" in md and "![caption](<fig/a.png>)" in md
    with pytest.raises(ValueError, match="relative"):
        doc.image(str(tmp_path / "a.png"))
    with pytest.raises(ValueError, match="one mark per row"):
        doc.table(["x"], [["1"]], marks=[])


def test_markdown_escapes_html_from_notes_and_titles_as_the_page_does(tmp_path):
    """Raw HTML in a title, a heading, a note, a cell or a caption is shown, never rendered: no
    tag survives in either format."""
    evil = '<img src=x onerror="alert(1)"><script>steal()</script>'
    doc = Document(f"T {evil}")
    doc.heading(evil)
    doc.paragraph(f"note {evil}")
    doc.table(["c"], [[evil]])
    doc.image("fig/a.png", evil)
    paths = doc.write(tmp_path, "r")
    for text in (paths["r.html"].read_text(), paths["r.md"].read_text()):
        assert "<script" not in text and "<img src=x" not in text
        assert "&lt;script&gt;steal()&lt;/script&gt;" in text


@pytest.mark.parametrize("workers", [1, 2, 1000])
def test_figs_list_json_has_every_recipe_and_a_deduplicated_quick_total(
    capsys, monkeypatch, tmp_path, workers
):
    from softleak.paper_figs import suite
    from softleak.simulate.estimate import estimate

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the built-in rates
    monkeypatch.setattr(suite, "default_workers", lambda device: workers)
    assert main(["figs", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    recipes = registry.load_recipes()
    rows = out["recipes"]
    assert {r["figure"] for r in rows} == set(recipes)
    for r in rows:
        assert {"figure", "preset", "cpu_s", "h200_s", "claims", "assumed"} <= set(r)
        assert r["claims"] == [c.id for c in recipes[r["figure"]].claims]
    # Oracle: every distinct sweep once; on 1 worker the sum of their estimates, on as many
    # workers as sweeps the largest, on 2 at least half the sum and the largest
    quick = {n: r for n, r in recipes.items() if "quick" in r.presets}
    jobs, _ = suite.plan(quick, "quick", "data", "cpu", None)
    costs = [estimate(spec)["cpu_s"] for spec in jobs.values()]
    total = out["all_quick_cpu_s"]
    assert out["workers"] == workers
    if workers == 1:
        assert total == pytest.approx(sum(costs), abs=0.1)
    elif workers >= len(costs):
        assert total == pytest.approx(max(costs), abs=0.1)
    else:
        assert max(max(costs), sum(costs) / 2) - 0.1 <= total <= sum(costs) / 2 + max(costs)


def _tiny_sweep(seed: int):
    from softleak.simulate.spec import SweepSpec

    return SweepSpec(
        "multinomial", d=(10,), c=(2,), alpha=(0.5, 1.0), rho=(0.8,), tau=(1.0,), seeds=1,
        teacher_epochs=40, student_epochs=40, seed=seed,
    )  # fmt: skip


def _make_table(tables, out, preset):
    return {"text": ", ".join(f"{k}: {len(t)} rows" for k, t in sorted(tables.items()))}


def _sweep_recipes():
    shared, own, broken = _tiny_sweep(0), _tiny_sweep(1), _tiny_sweep(2)
    return {
        "figa": Recipe("figa", "A", {"quick": Preset({"shared": shared, "own": own})}, _make_table),
        "figb": Recipe("figb", "B", {"quick": Preset({"shared": shared})}, _make_table),
        "figc": Recipe("figc", "C", {"quick": Preset({"broken": broken})}, _make_table),
    }


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sweeps_on_worker_processes_run_once_and_match_one_process(
    workers, tmp_path, monkeypatch, capsys
):
    import pandas as pd

    monkeypatch.setattr(registry, "load_recipes", _sweep_recipes)
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "broken").write_text("a file where a sweep folder belongs")
    args = ["figs", "all", "--out", str(root), "--no-progress", "--device", "cpu"]
    assert main([*args, "--workers", workers]) == 1  # figc's sweep fails; the others are drawn
    captured = capsys.readouterr()
    err = captured.err
    assert "figc failed" in err and "broken" in err
    if workers == "2":  # the shared sweep is one job of three
        assert "3 sweeps on 2 worker process(es)" in captured.out and "[3/3]" in captured.out
    assert json.loads((root / "figb" / "summary.json").read_text())["text"] == "shared: 2 rows"
    manifest = (root / "data" / "shared" / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == len({json.loads(line)["unit"] for line in manifest})  # run once
    table = pd.read_parquet(root / "data" / "own" / "results.parquet")
    reference = tmp_path / "reference"
    from softleak.simulate.experiments import run_experiment

    alone = run_experiment(_tiny_sweep(1), reference, threads=1, progress=False)
    cols = ["alpha", "seed", "student_test_acc", "student_train_acc", "teacher_train_acc"]
    key = ["alpha", "seed"]
    pd.testing.assert_frame_equal(
        table[cols].sort_values(key).reset_index(drop=True),
        alone[cols].sort_values(key).reset_index(drop=True),
    )


SENSITIVE = C.Claim(
    "figa.margin", "A difference at its margin (Fig. A).", machine_sensitive="float32 kernels"
)


def test_figs_report_expect_lists_moved_verdicts_and_fails_only_on_held_ones(
    fake_recipes, tmp_path, capsys, monkeypatch
):
    """``figs report ROOT --expect FILE``: the verdicts against a reference list; a move of a
    machine-sensitive claim is listed, not held."""
    fake = dict(FAKE)
    fake["figa"] = Recipe(
        "figa", "Figure A", {"quick": Preset({}, "a note")}, _make_good,
        claims=(GOOD, BAD, SENSITIVE),
    )  # fmt: skip
    monkeypatch.setattr(registry, "load_recipes", lambda: fake)
    root = tmp_path / "root"
    assert main(["figs", "all", "--out", str(root), "--no-progress", "--device", "cpu"]) == 1
    capsys.readouterr()
    ref = tmp_path / "ref.json"
    # as the run: holds, fails; a sensitive claim the run did not judge moves without failing
    ref.write_text(json.dumps({"verdicts": {"figa.rises": "holds", "figa.jump": "fails",
                                            "figa.margin": "holds"}}))  # fmt: skip
    assert main(["figs", "report", str(root), "--expect", str(ref)]) == 0
    out = capsys.readouterr().out
    assert "figa.margin: holds in" in out and "machine-sensitive: float32 kernels" in out
    assert "2 as in" in out and "0 moved, 1 machine-sensitive" in out
    ref.write_text(json.dumps({"verdicts": {"figa.rises": "fails", "figa.jump": "fails"}}))
    assert main(["figs", "report", str(root), "--expect", str(ref)]) == 1
    out = capsys.readouterr().out
    assert "figa.rises: fails in" in out and "holds here (MOVED)" in out
    ref.write_text("[1, 2]")
    assert main(["figs", "report", str(root), "--expect", str(ref)]) == 2
    assert "is not a verdicts file" in capsys.readouterr().err
    # the machine-sensitive reason reaches the claim's note
    summary = json.loads((root / "figa" / "summary.json").read_text())
    assert summary["claims"][0]["note"] == ""
    record = C.untested(SENSITIVE, "not run")
    assert record["note"] == "not run; machine-sensitive: float32 kernels"


def test_the_committed_quick_verdicts_name_every_declared_claim():
    """tests/fixtures/quick_verdicts.json stays in step with the recipes: every claim a recipe
    declares has a committed verdict, and every committed verdict a claim."""
    from softleak.compare.claims import VERDICTS
    from softleak.paper_figs.verdicts import read_reference

    reference = read_reference(Path(__file__).parent / "fixtures" / "quick_verdicts.json")
    declared = {c.id for r in registry.load_recipes().values() for c in r.claims}
    assert set(reference) == declared
    assert set(reference.values()) <= set(VERDICTS)


@pytest.mark.slow
def test_a_full_quick_run_reproduces_the_committed_verdicts(tmp_path):
    """~30-45 minutes on a 2-core CPU: every verdict that is not machine-sensitive as committed."""
    fixture = Path(__file__).parent / "fixtures" / "quick_verdicts.json"
    root = tmp_path / "quick"
    main(["figs", "all", "--preset", "quick", "--out", str(root), "--no-progress"])
    assert main(["figs", "report", str(root), "--expect", str(fixture)]) == 0
