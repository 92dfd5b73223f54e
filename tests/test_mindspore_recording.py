"""Real MindSpore trainings recorded with summary_doctor.mindspore, diagnosed when they end.

Each training runs ``tests/mindspore_train.py`` with the python named by
``SUMMARY_DOCTOR_MINDSPORE_PYTHON`` (MindSpore needs numpy<2, so it lives in
its own environment with summary-doctor installed; ``.ci/run`` builds one).
Skipped, with the reason, when that variable is not set or that python
cannot import MindSpore and summary-doctor.

- A healthy training, with ``Model.train`` and with a hand-written
  ``value_and_grad`` loop, in GRAPH_MODE and PYNATIVE_MODE: every checklist
  item is ok or problem except those no recording can make checkable (the
  static-graph syntax, the cross-rank comparison, the graph items in
  PYNATIVE_MODE, which has no graph to record, and the gradient wiring of a
  hand-written loop), and the diagnosis finds nothing.
- ``Model.fit`` with a validation set: MindSpore's metrics become
  ``eval_loss`` / ``eval_acc`` at each epoch's last training step.
- All-zero initial weights: the diagnosis after the first epoch finds
  ``init.all-zero`` (an error) and stops the training.
- A learning rate 100x too large: the end-of-training diagnosis finds
  ``hparam.lr-too-large``.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from summary_doctor import read_run
from summary_doctor.engine import UNOBSERVABLE

pytestmark = pytest.mark.mindspore

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().parent / "mindspore_train.py"
ENV_VAR = "SUMMARY_DOCTOR_MINDSPORE_PYTHON"
_PROBE = "import mindspore, summary_doctor.mindspore.recorder; print(mindspore.__version__)"

#: Checklist items the recording exists to make checkable.
RECORDED_ITEMS = (
    "hparam.lr-too-large",
    "hparam.lr-too-small",
    "hparam.too-many-epochs",
    "hparam.too-few-epochs",
    "hparam.batch-too-large",
    "graph.weight-freezing",
    "init.all-zero",
    "loss.nan-inf",
    "loss.diverging",
    "loss.oscillating",
    "loss.plateau",
    "gradient.vanishing",
    "gradient.exploding",
    "activation.dead",
    "weight.overflow",
    "weight.update-ratio",
    "metric.overfitting",
    "dataset.missing-values",
    "dataset.outliers",
    "dataset.class-imbalance",
    "dataset.label-errors",
    "dataset.too-few-samples",
    "preprocess.not-normalized",
    "preprocess.no-shuffle",
    "preprocess.train-eval-mismatch",
)
PARAMETERS = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias")


@cache
def _mindspore_version() -> tuple[int, ...]:
    probe = subprocess.run([_mindspore_python(), "-c", _PROBE], capture_output=True, text=True, timeout=300)
    return tuple(int(part) for part in probe.stdout.strip().splitlines()[-1].split(".")[:2])


@cache
def _mindspore_python() -> str:
    python = os.environ.get(ENV_VAR)
    if not python:
        pytest.skip(f"set {ENV_VAR} to a python with MindSpore 2.x and summary-doctor installed (.ci/run builds one)")
    try:
        probe = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"{ENV_VAR}={python} cannot be run: {error}")
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["failed"])[-1]
        pytest.skip(f"{ENV_VAR}={python} cannot import MindSpore and summary_doctor.mindspore: {last}")
    return python


def _train(out: Path, *options: str) -> dict[str, Any]:
    """Run one training; its RESULT line (the verdicts, epochs trained)."""
    done = subprocess.run(
        [_mindspore_python(), str(SCRIPT), str(out), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "GLOG_v": "3"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in reversed(done.stdout.splitlines()) if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["stdout"] = done.stdout
    return result


@pytest.fixture(scope="module")
def trainings(tmp_path_factory: pytest.TempPathFactory):
    """Trainings run once per module, by name."""
    done: dict[str, tuple[Path, dict[str, Any]]] = {}

    def run(name: str, *options: str) -> tuple[Path, dict[str, Any]]:
        if name not in done:
            out = tmp_path_factory.mktemp("trainings") / name
            done[name] = (out, _train(out, *options))
        return done[name]

    return run


def _why_unrecordable(entry: dict[str, Any], api: str, mode: str) -> bool:
    """True when no recording could make this not-checkable item checkable."""
    reason = entry.get("reason") or ""
    unobservable = {missing.reason for missing in UNOBSERVABLE.values()}
    if reason in unobservable:
        return True
    if entry["id"] == "init.rank-mismatch":  # needs the other ranks' runs
        return True
    if mode == "pynative" and entry["id"].startswith(("graph.", "api.")) and "graph" in reason:
        return True  # PYNATIVE_MODE compiles no graph to record
    # a hand-written loop's train step is a function, not a Cell: only the forward network's graph is recorded
    return api == "loop" and "no gradient or optimizer" in reason


HEALTHY = [("model", "graph"), ("model", "pynative"), ("loop", "graph"), ("loop", "pynative")]


@pytest.mark.parametrize(("api", "mode"), HEALTHY, ids=[f"{a}-{m}" for a, m in HEALTHY])
def test_a_healthy_recorded_training_is_checkable_and_clean(trainings, api: str, mode: str) -> None:
    _, result = trainings(f"healthy-{api}-{mode}", "--api", api, "--mode", mode)
    verdict = result["verdicts"][-1]
    assert all(f["severity"] == "info" for f in verdict["findings"]), verdict["findings"]
    status = {entry["id"]: entry for entry in verdict["checklist"]}
    for symptom_id in RECORDED_ITEMS:
        assert status[symptom_id]["status"] in ("ok", "problem"), status[symptom_id]
    unchecked = [e for e in verdict["checklist"] if e["status"] == "not-checkable"]
    assert all(_why_unrecordable(e, api, mode) for e in unchecked), [
        e for e in unchecked if not _why_unrecordable(e, api, mode)
    ]
    assert Path(verdict["report"]).is_file()


@pytest.mark.parametrize(("api", "mode"), HEALTHY, ids=[f"{a}-{m}" for a, m in HEALTHY])
def test_the_recording_writes_the_canonical_tags(trainings, api: str, mode: str) -> None:
    out, _ = trainings(f"healthy-{api}-{mode}", "--api", api, "--mode", mode)
    run = read_run(out)
    histograms = run.current("histograms").groupby("tag")["step"].apply(set).to_dict()
    scalars = set(run.current("scalars")["tag"])
    expected = {"input", "label", "eval/input", "eval/label", "act/act1", "act/act2"}
    expected |= {f"grad/{p}" for p in PARAMETERS} | {f"{p}/auto" for p in PARAMETERS}
    assert expected <= set(histograms), expected - set(histograms)
    assert all(0 in histograms[f"{p}/auto"] for p in PARAMETERS), "parameters before the first update"
    assert histograms["grad/fc1.weight"] == histograms["input"] == histograms["act/act1"]
    assert {"loss/auto", "eval_loss", "eval_acc"} <= scalars
    assert run.lineage.hyperparameters.get("batch_size") == 32
    assert run.lineage.hyperparameters.get("train_dataset_size") == 1024
    if _mindspore_version() >= (2, 10):  # before, MindSpore cannot write it beside protobuf 7
        assert "Shuffle" in set(run.lineage.dataset_ops["op_type"])  # the pipeline, for the shuffle check
    assert (run.graph is not None) == (mode == "graph")


def test_model_fit_evaluations_become_eval_scalars_at_the_training_step(trainings) -> None:
    out, result = trainings("fit", "--api", "fit")
    scalars = read_run(out).current("scalars")
    steps = {tag: sorted(group["step"]) for tag, group in scalars.groupby("tag")}
    assert steps["eval_loss"] == steps["eval_acc"] == [32, 64, 96, 128]  # each epoch's last step
    verdict = result["verdicts"][-1]
    assert verdict["warnings"] == verdict["errors"] == 0
    assert {e["id"]: e["status"] for e in verdict["checklist"]}["metric.overfitting"] == "ok"  # from those scalars


def test_all_zero_initial_weights_stop_the_training_after_the_first_epoch(trainings) -> None:
    _, result = trainings("zero-init", "--fault", "zero-init", "--every", "1", "--stop-on-error")
    first = result["verdicts"][0]
    assert result["epochs"] == 1
    assert any(f["id"] == "init.all-zero" and f["severity"] == "error" for f in first["findings"])
    assert "init.all-zero" in result["verdicts"][-1]["ids"]
    assert "stopping the training after epoch 1" in result["stdout"]


def test_a_learning_rate_100x_too_large_is_flagged_when_training_ends(trainings) -> None:
    _, result = trainings("lr-100x", "--fault", "lr-100x")
    assert len(result["verdicts"]) == 1
    assert "hparam.lr-too-large" in result["verdicts"][0]["ids"]


_BACKENDS = """
import json, subprocess, sys
import mindspore
from google.protobuf.internal import api_implementation
from summary_doctor.mindspore.diagnosis import child_environment
probe = "from google.protobuf.internal import api_implementation; print(api_implementation.Type())"
child = subprocess.run([sys.executable, "-c", probe], env=child_environment(), capture_output=True, text=True)
print(json.dumps({"training": api_implementation.Type(), "child": child.stdout.strip()}))
"""


def test_mindspore_forces_pure_python_protobuf_and_the_diagnosing_child_gets_the_fast_one() -> None:
    done = subprocess.run([_mindspore_python(), "-c", _BACKENDS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"training": "python", "child": "upb"}
