"""Shared test fixtures: real MindSpore runs under ``fixtures/runs`` and file builders."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from summary_doctor.reader.run import Run, read_run

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "runs"


@cache
def read_fixture(name: str) -> Run:
    """Read a committed fixture run once per test session (callers must not mutate it)."""
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"fixture {name} is not generated yet")
    return read_run(path, name=name)


@pytest.fixture
def fixture_run():
    """The cached reader of committed fixture runs, as a pytest fixture."""
    return read_fixture
