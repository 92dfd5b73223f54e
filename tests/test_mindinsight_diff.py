"""Differential test: every value MindInsight's own loader keeps equals ours.

MindInsight 2.3.1 pins protobuf <= 3.20.1, which cannot live beside our
protobuf 7, so it runs in its own virtual environment: the python named by
``SUMMARY_DOCTOR_MINDINSIGHT_PYTHON``, or one this test builds once with pip
under ``.cache/mindinsight-venv`` in the repository (skipped, with the reason,
when that cannot be built, e.g. offline). ``mindinsight_dump.py`` prints what
MindInsight keeps for each fixture run; we read the same runs with
``read_run`` and compare.

MindInsight samples (a reservoir per tag) and caps tags, so we check that
each sample it kept is one of our current (not superseded) rows with equal
values, and, for a tag where it kept fewer samples than its cap (so nothing
was sampled away), that it kept exactly our current steps.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import venv
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from summary_doctor import find_runs, read_run
from summary_doctor.reader.run import Run

pytestmark = pytest.mark.mindinsight

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "runs"
DUMPER = Path(__file__).resolve().parent / "mindinsight_dump.py"
ENV_VAR = "SUMMARY_DOCTOR_MINDINSIGHT_PYTHON"
CACHED_VENV = ROOT / ".cache" / "mindinsight-venv"
REQUIREMENTS = ["mindinsight==2.3.1", "protobuf==3.20.1", "numpy<2", "pandas<2"]
_PROBE = "from mindinsight.datavisual.data_transform.ms_data_loader import MSDataLoader"
FLOAT32_RTOL = 1e-6


def _venv_python(directory: Path) -> Path:
    return directory / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _works(python: str | Path) -> str | None:
    """None when ``python`` can import MindInsight's loader, else why not."""
    try:
        result = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    return None if result.returncode == 0 else (result.stderr.strip().splitlines() or ["failed"])[-1]


def _build_cached_venv() -> Path:
    """Create ``.cache/mindinsight-venv`` with pip, once; skip the tests when that is impossible."""
    python = _venv_python(CACHED_VENV)
    marker = CACHED_VENV / ".complete"
    if marker.exists() and _works(python) is None:
        return python
    try:
        venv.create(CACHED_VENV, with_pip=True, clear=True)
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *REQUIREMENTS],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"cannot build a MindInsight venv in {CACHED_VENV}: {error}")
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        pytest.skip(f"cannot build a MindInsight venv (pip install {' '.join(REQUIREMENTS)} failed: {tail})")
    problem = _works(python)
    if problem is not None:
        pytest.skip(f"the MindInsight venv in {CACHED_VENV} cannot import its loader: {problem}")
    marker.write_text(" ".join(REQUIREMENTS) + "\n")
    return python


@cache
def mindinsight_python() -> str:
    configured = os.environ.get(ENV_VAR)
    if configured:
        problem = _works(configured)
        if problem is not None:
            pytest.skip(f"{ENV_VAR}={configured} cannot import MindInsight's loader: {problem}")
        return configured
    return str(_build_cached_venv())


def fixture_runs() -> list[Path]:
    return find_runs(FIXTURES) if FIXTURES.exists() else []


@pytest.fixture(scope="module")
def dump() -> dict[str, Any]:
    runs = fixture_runs()
    if not runs:
        pytest.skip("no fixture runs under fixtures/runs")
    result = subprocess.run(
        [mindinsight_python(), str(DUMPER), *map(str, runs)], capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


# ---- comparison helpers ----------------------------------------------------------------------


def _float(value: Any) -> float:
    return float(value)  # "nan", "inf", "-inf" from the dump, numbers otherwise


def _same_float(ours: float, theirs: Any, *, rtol: float = 0.0) -> bool:
    theirs = _float(theirs)
    if math.isnan(ours) or math.isnan(theirs):
        return math.isnan(ours) and math.isnan(theirs)
    return ours == theirs or math.isclose(ours, theirs, rel_tol=rtol, abs_tol=0.0)


def _masked(value: float) -> float:
    """MindInsight shows NaN and infinite histogram min/max as 0 (``mask_invalid_number``)."""
    return 0.0 if not math.isfinite(value) else value


def _current_rows(frame: pd.DataFrame) -> dict[tuple[str, int], pd.Series]:
    current = frame[~frame["superseded"]] if "superseded" in frame else frame
    rows = {}
    for index, row in current.iterrows():
        key = (row["tag"], int(row["step"]))
        assert key not in rows, f"two current rows for {key}"
        rows[key] = row.rename(index)
    return rows


class Comparison:
    """Walks one run's MindInsight samples against our frames, counting compared values."""

    def __init__(self, run: Run, dump: dict[str, Any], caps: dict[str, int]) -> None:
        self.run, self.dump, self.caps = run, dump, caps
        self.compared: dict[str, int] = defaultdict(int)
        self.errors: list[str] = []

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.errors.append(message)

    def samples(self, plugin: str, frame: pd.DataFrame) -> list[tuple[dict[str, Any], pd.Series]]:
        """Pair every MindInsight sample with our current row, and check completeness per tag."""
        ours = _current_rows(frame)
        theirs = self.dump["samples"][plugin]
        by_tag: dict[str, set[int]] = defaultdict(set)
        pairs = []
        for sample in theirs:
            key = (sample["tag"], sample["step"])
            by_tag[sample["tag"]].add(sample["step"])
            if key not in ours:
                self.errors.append(f"{plugin} {key}: kept by MindInsight, not a current row of ours")
                continue
            row = ours[key]
            self.check(row["wall_time"] == sample["wall_time"], f"{plugin} {key}: wall_time")
            self.check(row["file"] == sample["file"], f"{plugin} {key}: file {row['file']} != {sample['file']}")
            pairs.append((sample, row))
        our_steps: dict[str, set[int]] = defaultdict(set)
        for tag, step in ours:
            our_steps[tag].add(step)
        for tag, steps in by_tag.items():
            if len(steps) < self.caps[plugin]:
                self.check(
                    steps == our_steps[tag],
                    f"{plugin} {tag}: MindInsight kept steps {sorted(steps ^ our_steps[tag])} differently",
                )
        if len(our_steps) > len(by_tag) and len(by_tag) < self.caps["tags"] and plugin != "tensor":
            self.errors.append(f"{plugin}: tags only we read: {sorted(set(our_steps) - set(by_tag))}")
        return pairs

    def scalars(self) -> None:
        for sample, row in self.samples("scalar", self.run.scalars):
            self.check(_same_float(row["value"], sample["value"]), f"scalar {sample['tag']}@{sample['step']}")
            self.compared["scalar values"] += 1

    def histograms(self) -> None:
        for sample, row in self.samples("histogram", self.run.histograms):
            where = f"histogram {sample['tag']}@{sample['step']}"
            buckets = self.run.histogram_buckets(row.name).sort_values("left", kind="stable")
            theirs = np.array([[_float(x) for x in bucket] for bucket in sample["buckets"]]).reshape(-1, 3)
            self.check(len(buckets) == len(theirs), f"{where}: {len(buckets)} buckets != {len(theirs)}")
            if len(buckets) == len(theirs):
                ours = buckets[["left", "width", "count"]].to_numpy(dtype=float)
                self.check(np.array_equal(ours, theirs, equal_nan=True), f"{where}: buckets differ")
            valid = row["count"] - row["nan_count"] - row["pos_inf_count"] - row["neg_inf_count"]
            self.check(int(buckets["count"].sum()) == sample["count"], f"{where}: bucket total")
            self.check(valid == sample["count"], f"{where}: count {valid} != {sample['count']}")
            self.check(_masked(row["min"]) == _float(sample["min"]), f"{where}: min {row['min']} != {sample['min']}")
            self.check(_masked(row["max"]) == _float(sample["max"]), f"{where}: max {row['max']} != {sample['max']}")
            self.compared["histogram values"] += 3 + 3 * len(theirs)

    def tensors(self) -> None:
        for sample, row in self.samples("tensor", self.run.tensors):
            where = f"tensor {sample['tag']}@{sample['step']}"
            self.check(
                tuple(row["shape"]) == tuple(sample["dims"]), f"{where}: shape {row['shape']} != {sample['dims']}"
            )
            ours = np.asarray(row["value"], dtype=np.float64).ravel()
            theirs = np.array([_float(v) for v in sample["values"]], dtype=np.float64)
            self.check(
                ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=FLOAT32_RTOL, atol=0, equal_nan=True),
                f"{where}: values differ",
            )
            self.compared["tensor values"] += 1 + theirs.size

    def images(self) -> None:
        for sample, row in self.samples("image", self.run.images):
            where = f"image {sample['tag']}@{sample['step']}"
            self.check((row["height"], row["width"]) == (sample["height"], sample["width"]), f"{where}: size")
            self.check(hashlib.sha256(row["encoded"]).hexdigest() == sample["sha256"], f"{where}: encoded bytes")
            self.compared["image values"] += 3

    def graph(self) -> None:
        graphs = self.dump["samples"]["graph"]
        if not graphs:
            return
        self.check(len(graphs) == 1, f"MindInsight kept {len(graphs)} graphs")
        theirs = graphs[-1]
        ours = next((g for g in self.run.graphs if g.file == theirs["tag"]), None)
        if ours is None:
            self.errors.append(f"graph of {theirs['tag']}: not read by us")
            return
        their_ops = {
            (name, op)
            for name, op in theirs["ops"]
            if op not in ("name_scope", "aggregation_scope", "Parameter", "Const")
        }
        our_ops = set(zip(ours.nodes["full_name"], ours.nodes["op_type"], strict=True))
        self.check(their_ops == our_ops, f"graph ops differ: {sorted(their_ops ^ our_ops)[:6]}")
        their_parameters = {name.rsplit("/", 1)[-1] for name in theirs["parameters"]}
        our_parameters = set(ours.parameters["name"])
        self.check(
            their_parameters == our_parameters, f"graph parameters differ: {sorted(their_parameters ^ our_parameters)}"
        )
        self.compared["graph nodes"] += len(their_ops) + len(their_parameters)

    def lineage(self) -> None:
        theirs = self.dump["lineage"]
        lineage = self.run.lineage
        if theirs is None:
            self.check(lineage.empty, "lineage: only we read one")
            return
        model = theirs["model_lineage"]
        ours = {
            **lineage.hyperparameters,
            "train_dataset_count": lineage.hyperparameters.get("train_dataset_size"),
            "train_dataset_path": lineage.hyperparameters.get("train_dataset_path"),
            "test_dataset_count": lineage.evaluation.get("valid_dataset_size"),
            "test_dataset_path": lineage.evaluation.get("valid_dataset_path"),
        }
        for key in (
            "loss_function",
            "network",
            "optimizer",
            "epoch",
            "batch_size",
            "device_num",
            "model_size",
            "train_dataset_count",
            "train_dataset_path",
            "test_dataset_count",
            "test_dataset_path",
        ):
            self.check(ours.get(key) == model[key], f"lineage {key}: {ours.get(key)!r} != {model[key]!r}")
        for key in ("learning_rate", "loss"):  # float32 in the file; MindInsight rounds them for display
            if model[key] is None:
                self.check(ours.get(key) is None, f"lineage {key}: only we have it")
            else:
                self.check(_same_float(ours.get(key, math.nan), model[key], rtol=FLOAT32_RTOL), f"lineage {key}")
        self.check(
            _float_dict(lineage.metrics) == _float_dict(model["metric"]),
            f"lineage metrics: {lineage.metrics} != {model['metric']}",
        )
        self.check(lineage.user_defined == model["user_defined"], "lineage user_defined")
        self.check(
            _dataset_graph(lineage.dataset_graph) == _dataset_graph(theirs["dataset_graph"] or None),
            "lineage dataset graph differs",
        )
        self.compared["lineage values"] += 13 + len(model["metric"]) + len(model["user_defined"])


def _float_dict(values: dict[str, Any]) -> dict[str, Any]:
    return {key: round(float(value), 6) if isinstance(value, float) else value for key, value in values.items()}


def _dataset_graph(node: Any) -> Any:
    """Normalised for comparison: MindInsight adds ``children: []`` to leaves and reads "None" as null."""
    if isinstance(node, dict):
        return {key: _dataset_graph(value) for key, value in node.items() if not (key == "children" and value == [])}
    if isinstance(node, list):
        return [_dataset_graph(item) for item in node]
    return None if node == "None" else node


# ---- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("run_dir", fixture_runs(), ids=lambda path: str(path.relative_to(FIXTURES)))
def test_every_value_mindinsight_keeps_equals_ours(run_dir: Path, dump: dict[str, Any]) -> None:
    comparison = Comparison(read_run(run_dir), dump["runs"][str(run_dir)], dump["caps"])
    for part in (
        comparison.scalars,
        comparison.histograms,
        comparison.tensors,
        comparison.images,
        comparison.graph,
        comparison.lineage,
    ):
        part()
    print(f"{run_dir.name}: compared {dict(comparison.compared)}")
    assert not comparison.errors, "\n".join(comparison.errors[:30])
    assert sum(comparison.compared.values()) > 0
