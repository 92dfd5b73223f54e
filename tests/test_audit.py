"""The batch audit on a folder of real runs: the table, the cache, and runs that go wrong."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from audit_tree import COPIES, CORRUPT, LIVE, RUNS, build_tree, finish_live
from conftest import FIXTURES
from test_fixture_table import EXPECTED

from summary_doctor.audit import audit_runs, audit_table
from summary_doctor.report.json import plain
from summary_doctor.symptoms import SYMPTOM_IDS
from summary_doctor.table import rows


def problems(row: dict) -> set[str]:
    return {i for i in SYMPTOM_IDS if row[i] in ("error", "warning")}


def same(a: list[dict], b: list[dict]) -> bool:
    """Tables equal, NaN equal to NaN."""
    return json.dumps(plain(a)) == json.dumps(plain(b))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return build_tree(tmp_path_factory.mktemp("audit") / "lab")


@pytest.fixture(scope="module")
def first(tree):
    return audit_runs(tree, jobs=1, cache=False)


def test_one_row_per_run_at_any_depth_and_no_row_for_an_empty_directory(first):
    assert [r["run"] for r in rows(first)] == RUNS


def test_each_row_holds_the_runs_symptoms_as_the_report_finds_them(first):
    table = {r["run"]: r for r in rows(first)}
    for name, fixture in COPIES.items():
        assert problems(table[name]) == EXPECTED[fixture], name
        assert table[name]["status"] == "diagnosed" and table[name]["reason"] == ""
    lr = table["experiments/2026-01-10/run_2"]
    assert lr["verdict"] == "error" and lr["errors"] >= 1 and lr["loss.nan-inf"] == "error"
    assert lr["init.all-zero"] == "ok" and lr["dataset.outliers"] == "not-checkable"
    assert table["experiments/2026-01-10/run_1"]["verdict"] in ("clean", "info")  # a healthy run: no problem


def test_lineage_columns(first):
    mlp = {r["run"]: r for r in rows(first)}["experiments/2026-01-10/run_1"]
    assert mlp["learning_rate"] == pytest.approx(0.003)
    assert (mlp["batch_size"], mlp["optimizer"], mlp["epochs"]) == (32, "Momentum", 5)
    assert (mlp["loss_function"], mlp["dataset_size"]) == ("SoftmaxCrossEntropyWithLogits", 1984)
    assert mlp["final_loss"] == pytest.approx(0.1214, abs=1e-3)
    assert mlp["metrics/acc"] == pytest.approx(0.934)
    diverged = {r["run"]: r for r in rows(first)}["experiments/2026-01-10/run_2"]
    assert math.isnan(diverged["final_loss"])


def test_a_run_that_cannot_be_read_says_why_and_the_others_are_complete(first):
    table = {r["run"]: r for r in rows(first)}
    corrupt = table[CORRUPT]
    assert corrupt["status"] == "unreadable" and corrupt["verdict"] is None
    assert "nothing could be read" in corrupt["reason"] and "CRC" in corrupt["reason"]
    assert all(corrupt[i] == "not-checkable" for i in SYMPTOM_IDS)
    assert all(table[name]["status"] == "diagnosed" for name in COPIES)


def test_a_run_with_only_empty_files_is_not_called_clean(tmp_path):
    (tmp_path / "lab" / "started").mkdir(parents=True)
    (tmp_path / "lab" / "started" / "events.out.events.summary.1795850001.0.vm_MS").write_bytes(b"")
    row = rows(audit_runs(tmp_path / "lab", jobs=1, cache=False))[0]
    assert row["status"] == "unreadable" and "no record" in row["reason"] and row["verdict"] is None


def test_a_run_still_being_written_is_read_so_far(first):
    live = {r["run"]: r for r in rows(first)}[LIVE]
    assert live["status"] == "diagnosed" and live["read_problems"] == 1 and "truncated" in live["reason"]
    assert live["learning_rate"] is None  # no lineage yet


def test_the_cache_serves_unchanged_runs_and_rereads_the_one_that_grew(tmp_path):
    tree, cache = build_tree(tmp_path / "lab"), tmp_path / "cache.sqlite"
    before = audit_runs(tree, jobs=1, cache=cache)
    assert (before.stats.cached, before.stats.diagnosed) == (0, len(RUNS))
    finish_live(tree)
    after = audit_runs(tree, jobs=1, cache=cache)
    assert (after.stats.cached, after.stats.diagnosed) == (len(RUNS) - 1, 1)
    old, new = ({r["run"]: r for r in rows(a)} for a in (before, after))
    assert same([old[n] for n in RUNS if n != LIVE], [new[n] for n in RUNS if n != LIVE])
    assert new[LIVE]["last_step"] > old[LIVE]["last_step"] and new[LIVE]["read_problems"] == 0
    assert new[LIVE]["learning_rate"] == pytest.approx(0.05) and new[LIVE]["reason"] == ""
    again = audit_runs(tree, jobs=1, cache=cache)
    assert again.stats.cached == len(RUNS) and same(rows(again), rows(after))


def test_cache_follows_the_settings_and_each_runs_files(tmp_path):
    tree, cache = tmp_path / "lab", tmp_path / "cache.sqlite"
    for name in ("experiments/2026-01-10/run_1", "experiments/2026-01-10/run_2"):
        shutil.copytree(FIXTURES / COPIES[name], tree / name)
    assert audit_runs(tree, jobs=1, cache=cache).stats.cached == 0
    assert audit_runs(tree, jobs=1, cache=cache).stats.cached == 2
    for options in ({"select": ["loss"]}, {"ignore": ["loss.plateau"]}, {"tags": {"loss": "loss/auto"}}):
        assert audit_runs(tree, jobs=1, cache=cache, **options).stats.cached == 0, options
        assert audit_runs(tree, jobs=1, cache=cache, **options).stats.cached == 2, options
    changed = audit_runs(tree, jobs=1, cache=cache, settings={"loss.diverging": {"rise_factor": 3.0}})
    assert changed.stats.cached == 0
    touched = next((tree / "experiments/2026-01-10/run_1").iterdir())
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert audit_runs(tree, jobs=1, cache=cache).stats.diagnosed == 1


def test_a_run_named_from_another_root_keeps_its_cached_result_under_the_new_name(tmp_path):
    tree, cache = build_tree(tmp_path / "lab"), tmp_path / "cache.sqlite"
    audit_runs(tree, jobs=1, cache=cache)
    part = audit_runs(tree / "experiments", jobs=1, cache=cache)
    assert part.stats.diagnosed == 0
    assert [r.run for r in part.records][:2] == ["2026-01-10/run_1", "2026-01-10/run_2"]
    assert all(f.run == "2026-01-10/run_2" for f in part.records[1].findings)


def test_a_rule_that_crashes_leaves_the_row_incomplete_and_says_which(tmp_path, monkeypatch):
    from summary_doctor.rules.dynamics import LossDiverging

    def broken(self, run, context):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(LossDiverging, "check", broken)
    tree = tmp_path / "lab"
    shutil.copytree(FIXTURES / "healthy_mlp", tree / "a")
    row = rows(audit_runs(tree, jobs=1, cache=False))[0]
    assert row["status"] == "incomplete" and "LossDiverging" in row["reason"] and "ZeroDivisionError" in row["reason"]
    assert row["loss.diverging"] == "not-checkable" and row["loss.plateau"] == "ok"


def test_a_reader_bug_fails_only_that_run(tree, first, monkeypatch):
    from summary_doctor.audit import examine

    real = examine.read_run

    def buggy(path, **options):
        if str(path).endswith("rank_1"):
            raise IndexError("list index out of range")
        return real(path, **options)

    monkeypatch.setattr(examine, "read_run", buggy)
    table = {r["run"]: r for r in rows(audit_runs(tree, jobs=1, cache=False))}
    failed = table["experiments/2026-02-03/job/rank_1"]
    assert failed["status"] == "failed" and "reading stopped on IndexError" in failed["reason"]
    assert failed["verdict"] is None and table["experiments/2026-02-03/job/rank_0"]["status"] == "diagnosed"


def test_worker_processes_give_the_same_table_as_one_process(tree, first):
    parallel = audit_runs(tree, jobs=2, cache=False)
    assert parallel.stats.jobs == 2 and same(rows(parallel), rows(first))


def test_a_worker_that_dies_costs_only_its_run(tree, first, monkeypatch):
    """A crash that kills the process (not an exception) fails that run's row; the pool recovers."""
    import multiprocessing

    from summary_doctor.audit import examine, executors

    real = examine.examine

    def deadly(task, job, **options):
        if task.name == "experiments/2026-01-10/run_2":
            os._exit(3)
        return real(task, job, **options)

    monkeypatch.setattr(examine, "examine", deadly)  # forked workers inherit it
    monkeypatch.setattr(executors, "pool_context", lambda **_: multiprocessing.get_context("fork"))
    table = {r["run"]: r for r in rows(audit_runs(tree, jobs=2, cache=False))}
    dead = table["experiments/2026-01-10/run_2"]
    assert dead["status"] == "failed" and "worker process died" in dead["reason"]
    expected = {r["run"]: r for r in rows(first)}
    assert same([table[n] for n in RUNS if "run_2" not in n], [expected[n] for n in RUNS if "run_2" not in n])


def test_python_api_returns_a_dataframe_sorted_worst_first(first, tree):
    frame = audit_table(tree, jobs=1, cache=False)
    assert list(frame["run"]) == RUNS and frame.shape[1] >= 12 + len(SYMPTOM_IDS)
    worst = frame.sort_values("loss.nan-inf", ascending=False).iloc[0]
    assert worst["run"] == "experiments/2026-01-10/run_2"
    assert str(frame["verdict"].dtype) == "category" and frame["verdict"].cat.ordered
