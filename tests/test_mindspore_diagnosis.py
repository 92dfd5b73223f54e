"""The parts of summary_doctor.mindspore that need no MindSpore: tag names and the diagnosis in a child.

A training process has imported MindSpore, which sets
``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``; the diagnosis runs in a
child interpreter without it, so it reads with protobuf's fast backend.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from summary_doctor.errors import SummaryDoctorError
from summary_doctor.mindspore.diagnosis import child_environment, diagnose_summary
from summary_doctor.mindspore.tags import eval_metric_tag, gradient_tag, parameter_tag

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
_BACKEND = "from google.protobuf.internal import api_implementation; print(api_implementation.Type())"


def test_eval_metrics_get_the_names_the_rules_look_for() -> None:
    assert [eval_metric_tag(m) for m in ("loss", "accuracy", "acc", "Top1_Accuracy", "f1", "eval_loss")] == [
        "eval_loss",
        "eval_acc",
        "eval_acc",
        "eval_acc",
        "eval_f1",
        "eval_loss",
    ]
    assert (gradient_tag("fc1.weight"), parameter_tag("fc1.weight")) == ("grad/fc1.weight", "fc1.weight/auto")


def test_the_child_does_not_inherit_mindspores_protobuf_override() -> None:
    environ = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python", "HOME": "/home/x"}
    assert child_environment(environ) == {"HOME": "/home/x"}
    forced = subprocess.run([sys.executable, "-c", _BACKEND], env={**environ, "PATH": ""}, capture_output=True)
    clean = subprocess.run([sys.executable, "-c", _BACKEND], env=child_environment(environ), capture_output=True)
    assert (forced.stdout.strip(), clean.stdout.strip()) == (b"python", b"upb")


def test_diagnosis_of_a_fault_run_writes_the_report_and_returns_the_verdict(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
    run = tmp_path / "lr_too_large"
    shutil.copytree(FIXTURES / "lr_too_large", run)
    verdict = diagnose_summary(run)
    assert verdict.errors >= 1
    assert {"hparam.lr-too-large", "loss.nan-inf", "weight.overflow"} <= verdict.ids
    assert verdict.status("hparam.lr-too-large") == "problem"
    assert verdict.report == str(run / "summary-doctor.html")
    assert Path(verdict.report).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "hparam.lr-too-large" in verdict.text
    assert verdict.headline.startswith("summary-doctor: ")


def test_diagnosis_of_a_healthy_run_without_a_report(tmp_path) -> None:
    verdict = diagnose_summary(FIXTURES / "healthy_mlp", report=None)
    assert (verdict.errors, verdict.warnings, verdict.report) == (0, 0, None)
    assert "no problem found" in verdict.headline


def test_a_directory_without_summaries_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(SummaryDoctorError, match="no MindSpore summary files found") as error:
        diagnose_summary(tmp_path, report=None)
    assert "\n" not in str(error.value)
