"""The audit cache never breaks an audit: damaged, locked, unwritable, or shared by two audits at once."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES

from summary_doctor.audit import audit_runs, cache
from summary_doctor.table import rows

RUNS = ("healthy_mlp", "oscillating")


@pytest.fixture
def lab(tmp_path) -> Path:
    for name in RUNS:
        shutil.copytree(FIXTURES / name, tmp_path / "lab" / name)
    return tmp_path / "lab"


def test_default_location_is_the_users_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.default_path() == tmp_path / "xdg" / "summary-doctor" / "audit.sqlite"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert cache.default_path() == Path.home() / ".cache" / "summary-doctor" / "audit.sqlite"


def test_a_damaged_cache_file_is_moved_aside_and_rebuilt(lab, tmp_path, caplog):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not an SQLite database" * 100)
    with caplog.at_level(logging.WARNING):
        first = audit_runs(lab, jobs=1, cache=path)
    assert first.stats.diagnosed == len(RUNS) and all(r.status == "diagnosed" for r in first.records)
    assert "damaged" in caplog.text and (tmp_path / "cache.sqlite.damaged").exists()
    assert audit_runs(lab, jobs=1, cache=path).stats.cached == len(RUNS)


def test_a_damaged_record_is_read_again(lab, tmp_path):
    path = tmp_path / "cache.sqlite"
    audit_runs(lab, jobs=1, cache=path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET record = ? WHERE path LIKE ?", (b"\x00garbage", "%healthy_mlp"))
    again = audit_runs(lab, jobs=1, cache=path)
    assert (again.stats.cached, again.stats.diagnosed) == (len(RUNS) - 1, 1)


def test_a_locked_cache_is_bypassed_with_a_warning(lab, tmp_path, caplog, monkeypatch):
    path = tmp_path / "cache.sqlite"
    expected = rows(audit_runs(lab, jobs=1, cache=False))
    monkeypatch.setattr(cache, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING):
            result = audit_runs(lab, jobs=1, cache=path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "locked" in caplog.text and "without it" in caplog.text
    assert [r["run"] for r in rows(result)] == [r["run"] for r in expected]
    assert all(r.status == "diagnosed" for r in result.records)


def test_an_unwritable_cache_location_is_bypassed(lab, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING):
        result = audit_runs(lab, jobs=1, cache=blocker / "cache.sqlite")
    assert result.stats.diagnosed == len(RUNS) and "without it" in caplog.text


def test_two_audits_at_once_share_the_cache_safely(tmp_path):
    """Two processes fill one cache at the same time; then it is intact and serves every run."""
    for name in ("healthy_mlp", "oscillating", "plateau", "healthy_regression"):
        shutil.copytree(FIXTURES / name, tmp_path / "lab" / name)
    path = tmp_path / "cache.sqlite"
    command = [sys.executable, "-m", "summary_doctor", "audit", str(tmp_path / "lab"), "--cache", str(path)]
    command += ["--jobs", "1", "--format", "json", "--fail-on", "never"]
    env = {**os.environ, "NO_COLOR": "1"}
    audits = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env) for _ in range(2)]
    errors = [p.communicate(timeout=300)[1].decode() for p in audits]
    assert [p.returncode for p in audits] == [0, 0], errors
    assert not any("WARNING" in e for e in errors), errors
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert audit_runs(tmp_path / "lab", jobs=1, cache=path).stats.cached == 4


def test_results_of_other_code_are_not_stored(lab, tmp_path, caplog, monkeypatch):
    """A cluster worker with another summary-doctor: its rows are shown, never cached as this code's."""
    from summary_doctor.audit import examine

    monkeypatch.setattr(examine, "code_fingerprint", lambda: "0.0.1+elsewhere")
    path = tmp_path / "cache.sqlite"
    with caplog.at_level(logging.WARNING):
        first = audit_runs(lab, jobs=1, cache=path)
    assert all(r.status == "diagnosed" for r in first.records) and "not cached" in caplog.text
    monkeypatch.undo()
    assert audit_runs(lab, jobs=1, cache=path).stats.cached == 0
