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


GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/ files from the current output")


@pytest.fixture
def golden(request):
    """Compare text with ``tests/golden/NAME``, or rewrite it under ``--update-golden``."""

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if request.config.getoption("--update-golden"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"no golden file {name}: run pytest --update-golden"
        assert text == path.read_text(encoding="utf-8"), f"{name} differs: check it, then pytest --update-golden"

    return check


@pytest.fixture
def synthetic_run(tmp_path):
    """Write a small summary file (histograms per tag and step, plus a loss curve) and read it back.

    ``histograms`` maps tag -> {step: values}; ``loss`` is the ``loss/auto``
    curve, one value per step from 1 (None: no loss recorded).
    """
    from builders import histogram_event, scalar_event, summary_name, version_event, write_events

    def build(histograms: dict, loss: list[float] | None = None, name: str = "synthetic") -> Run:
        events = [version_event()]
        if loss is not None:
            events += [scalar_event(step, "loss/auto", value) for step, value in enumerate(loss, start=1)]
        for tag, series in histograms.items():
            events += [histogram_event(step, tag, list(values)) for step, values in series.items()]
        directory = tmp_path / name
        directory.mkdir()
        write_events(directory / summary_name(), events)
        return read_run(directory, name=name)

    return build
