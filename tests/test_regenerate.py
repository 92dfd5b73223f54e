"""Regenerate a committed fixture with MindSpore and check the reader sees the same structure.

The committed fixtures stand in for MindSpore in every other test; this test
keeps them honest. It runs the fixture's own script from
``fixtures/scripts`` with the python named by ``SUMMARY_DOCTOR_MINDSPORE_PYTHON``
(an environment with MindSpore 2.x, which needs numpy<2, so it is usually not
the one running the tests) and compares what ``read_run`` gets from the new
run and from the committed one: the same files, tags, steps, shapes, graph and
lineage keys. Values may differ slightly between machines; structure may not.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from summary_doctor import read_run
from summary_doctor.reader.run import Run

pytestmark = pytest.mark.mindspore

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "fixtures" / "scripts"
RUNS = ROOT / "fixtures" / "runs"
ENV_VAR = "SUMMARY_DOCTOR_MINDSPORE_PYTHON"
FIXTURE = "healthy_mlp"  # small, and records scalars, histograms, images, graph and both lineages


@pytest.fixture(scope="module")
def mindspore_python() -> str:
    python = os.environ.get(ENV_VAR)
    if not python:
        pytest.skip(f"set {ENV_VAR} to a python with MindSpore 2.x installed to regenerate a fixture")
    try:
        probe = subprocess.run([python, "-c", "import mindspore"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"{ENV_VAR}={python} cannot be run: {error}")
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["failed"])[-1]
        pytest.skip(f"{ENV_VAR}={python} cannot import mindspore: {last}")
    return python


@pytest.fixture(scope="module")
def regenerated(mindspore_python: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    committed = RUNS / FIXTURE
    if not committed.exists():
        pytest.skip(f"fixture {FIXTURE} is not committed")
    out = tmp_path_factory.mktemp("regenerated") / FIXTURE
    result = subprocess.run(
        [mindspore_python, str(SCRIPTS / f"{FIXTURE}.py"), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return read_run(out, name=FIXTURE)


@pytest.fixture(scope="module")
def committed() -> Run:
    return read_run(RUNS / FIXTURE, name=FIXTURE)


def _keys(frame: pd.DataFrame, *columns: str) -> Counter:
    """Rows as a multiset of (tag, step, superseded, *columns): file names embed a timestamp."""
    names = ["tag", "step", "superseded", *columns]
    return Counter(tuple(row) for row in frame[names].itertuples(index=False, name=None))


def test_same_files(regenerated: Run, committed: Run) -> None:
    def shape(run: Run) -> list[tuple]:
        files = run.files.sort_values(["kind", "records"])
        return list(files[["kind", "records", "skipped", "first_step", "last_step", "version"]].itertuples(index=False))

    assert shape(regenerated) == shape(committed)
    assert regenerated.problems == committed.problems == []


def test_same_scalar_tags_and_steps(regenerated: Run, committed: Run) -> None:
    assert _keys(regenerated.scalars) == _keys(committed.scalars)


def test_same_histograms(regenerated: Run, committed: Run) -> None:
    assert _keys(regenerated.histograms, "count") == _keys(committed.histograms, "count")


def test_same_tensors_and_images(regenerated: Run, committed: Run) -> None:
    assert _keys(regenerated.tensors, "dtype", "shape") == _keys(committed.tensors, "dtype", "shape")
    assert _keys(regenerated.images, "height", "width", "colorspace") == _keys(
        committed.images, "height", "width", "colorspace"
    )


def test_same_graph(regenerated: Run, committed: Run) -> None:
    ours, theirs = regenerated.graph, committed.graph
    assert (ours is None) == (theirs is None)
    if ours is not None and theirs is not None:
        assert Counter(ours.nodes["op_type"]) == Counter(theirs.nodes["op_type"])
        assert sorted(ours.nodes["full_name"]) == sorted(theirs.nodes["full_name"])
        assert sorted(ours.parameters["name"]) == sorted(theirs.parameters["name"])
        assert len(ours.edges) == len(theirs.edges)


def test_same_lineage_structure(regenerated: Run, committed: Run) -> None:
    ours, theirs = regenerated.lineage, committed.lineage
    assert ours.hyperparameters.keys() == theirs.hyperparameters.keys()
    exact = {k: v for k, v in theirs.hyperparameters.items() if not isinstance(v, float)}
    assert {k: ours.hyperparameters[k] for k in exact} == exact
    assert ours.metrics.keys() == theirs.metrics.keys()
    assert ours.evaluation == theirs.evaluation
    assert ours.user_defined.keys() == theirs.user_defined.keys()
    assert ours.dataset_graph == theirs.dataset_graph
