"""``summary-doctor audit``: formats, exit codes, usage errors, and what a cached audit does not load."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from audit_tree import CORRUPT, RUNS, build_tree
from test_cli import check_contract, run_cli

from summary_doctor.symptoms import SYMPTOM_IDS


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    return build_tree(tmp_path_factory.mktemp("cli") / "lab")


@pytest.fixture(scope="module")
def cache(lab, tmp_path_factory) -> str:
    """A cache filled once, so each format below is written from it."""
    from summary_doctor.audit import audit_runs

    path = tmp_path_factory.mktemp("cache") / "audit.sqlite"
    audit_runs(lab, jobs=1, cache=path)
    return str(path)


def audit_cli(capsys, lab, cache, *options):
    return run_cli(capsys, "audit", str(lab), "--cache", cache, "--jobs", "1", *options)


def test_json_is_the_contract_plus_the_table(capsys, lab, cache):
    status, out, _ = audit_cli(capsys, lab, cache, "--format", "json")
    document = json.loads(out)
    check_contract(document, str(lab))
    assert [r["run"] for r in document["runs"]] == RUNS
    assert [r["run"] for r in document["table"]] == RUNS
    assert {r["status"] for r in document["runs"]} == {"diagnosed", "unreadable"}
    assert document["audit"] == {"runs": len(RUNS), "cached": len(RUNS), "examined": 0, "jobs": 1}
    nan_loss = document["table"][RUNS.index("experiments/2026-01-10/run_2")]["final_loss"]
    assert nan_loss == "NaN" and status == 1


def test_csv_has_a_header_and_a_row_per_run(capsys, lab, cache):
    _, out, _ = audit_cli(capsys, lab, cache, "--format", "csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["run"] for r in table] == RUNS
    assert set(SYMPTOM_IDS) <= set(table[0]) and {"learning_rate", "final_loss", "verdict"} <= set(table[0])
    assert table[RUNS.index(CORRUPT)]["status"] == "unreadable"


def test_parquet_is_written_through_pyarrow(capsys, lab, cache, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "runs.parquet"
    audit_cli(capsys, lab, cache, "-o", str(target))
    table = pq.read_table(target)
    assert table.num_rows == len(RUNS) and table.column("run").to_pylist() == RUNS


def test_text_lists_every_run_then_what_stands_out(capsys, lab, cache):
    status, out, _ = audit_cli(capsys, lab, cache)
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1 : len(RUNS) + 1]] == RUNS
    assert f"{len(RUNS)} run(s): 1 error" in out and "1 unreadable" in out and "most frequent:" in out
    assert "\033[" not in out and status == 1


def test_fail_on_never_exits_0(capsys, lab, cache):
    assert audit_cli(capsys, lab, cache, "--fail-on", "never", "--format", "csv")[0] == 0


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["audit"], "needs a ROOT"),
        (["audit", "--format", "parquet", "."], "-o FILE.parquet"),
        (["audit", ".", "--jobs", "0"], "at least 1"),
        (["audit", ".", "-o", "table.xyz"], "suffix"),
        (["audit", ".", "--format", "json", "-o", "somewhere/"], "a directory takes the HTML index"),
        (["audit", "does/not/exist"], "no such file"),
        (["audit", "."], "no MindSpore summary files"),
        (["audit", ".", "--select", "nonsense"], "not a symptom id"),
        (["audit", ".", "--set", "loss.diverging.nope=1"], "no threshold"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(capsys, argv, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run_cli(capsys, *argv)
    assert status == 2 and err.count("\n") == 1 and err.startswith("summary-doctor: error:")
    assert says in err


def test_a_directory_named_audit(capsys, tmp_path, monkeypatch):
    """``summary-doctor ./audit`` reports on it; ``summary-doctor audit`` alone says how to."""
    import shutil

    from conftest import FIXTURES

    shutil.copytree(FIXTURES / "healthy_mlp", tmp_path / "audit")
    monkeypatch.chdir(tmp_path)
    status, out, _ = run_cli(capsys, "./audit", "--format", "json")
    assert status == 0 and json.loads(out)["runs"][0]["run"] == "."
    status, _, err = run_cli(capsys, "audit")
    assert status == 2 and "./audit" in err
    status, out, _ = run_cli(capsys, "audit", "audit", "--no-cache", "--jobs", "1", "--format", "json")
    assert status == 0 and json.loads(out)["table"][0]["run"] == "."


def test_audit_is_mentioned_in_the_main_help(capsys):
    with pytest.raises(SystemExit):
        run_cli(capsys, "--help")
    assert "summary-doctor audit" in capsys.readouterr().out


def test_a_cached_audit_loads_neither_pandas_nor_the_rules_nor_matplotlib(lab, cache):
    code = (
        "import sys; from summary_doctor.cli import main; "
        f"status = main(['audit', {str(lab)!r}, '--cache', {cache!r}, '--format', '{{fmt}}', '-o', {os.devnull!r}]); "
        "heavy = [m for m in ('pandas', 'matplotlib', 'summary_doctor.rules', 'summary_doctor.engine') "
        "if m in sys.modules]; print(status, heavy)"
    )
    for fmt in ("json", "csv", "html", "text"):
        done = subprocess.run([sys.executable, "-c", code.replace("{fmt}", fmt)], capture_output=True, text=True)
        assert done.stdout.strip() == "1 []", (fmt, done.stdout, done.stderr)


def test_the_run_bar_counts_runs_and_only_when_asked(capsys):
    from summary_doctor.progress import run_bar

    with run_bar(enabled=False) as bar:
        assert bar.start(10, 0) is None
    with run_bar(enabled=True) as bar:
        assert bar.start(5, 5) is None  # everything came from the cache: nothing to show
    with run_bar(enabled=True) as bar:
        advance = bar.start(10, 4)
        advance(3)
        task = bar._progress.tasks[0]
        assert (task.completed, task.total) == (7, 10) and bar._progress.console.stderr
    assert bar._progress is None and capsys.readouterr().out == ""
