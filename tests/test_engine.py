"""The engine: crash isolation, the checklist for all ids, selection and threshold settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from summary_doctor.engine import UsageError, diagnose, explain, parse_settings, selected_ids
from summary_doctor.findings import Finding, Status
from summary_doctor.rules.base import REGISTRY, Context, Rule
from summary_doctor.symptoms import SYMPTOM_IDS


@dataclass
class _Exploding(Rule):
    """Always raises."""

    ids = ("loss.plateau",)

    def check(self, run, context: Context) -> Iterator[Finding]:
        raise ZeroDivisionError("boom")


@pytest.fixture
def exploding_rule():
    REGISTRY.append(_Exploding)
    yield _Exploding
    REGISTRY.remove(_Exploding)


def statuses(diagnosis) -> dict[str, Status]:
    return {entry.id: entry.status for entry in diagnosis.checklist}


def test_checklist_has_every_id_once_in_order(fixture_run) -> None:
    diagnosis = diagnose(fixture_run("healthy_cnn"))
    assert [entry.id for entry in diagnosis.checklist] == list(SYMPTOM_IDS)
    got = statuses(diagnosis)
    assert got["loss.diverging"] is Status.OK and got["metric.overfitting"] is Status.OK
    assert got["api.construct-constraint"] is Status.NOT_CHECKABLE
    assert got["dataset.missing-values"] is Status.OK  # its input is recorded (input_hist)
    assert got["preprocess.train-eval-mismatch"] is Status.NOT_CHECKABLE  # no evaluation input recorded


def test_a_crashing_rule_is_a_finding_and_hides_nothing(fixture_run, exploding_rule) -> None:
    diagnosis = diagnose(fixture_run("lr_too_large"))
    crash = [f for f in diagnosis.findings if "internal error" in f.title]
    assert len(crash) == 1 and "_Exploding" in crash[0].title and crash[0].id == "loss.plateau"
    assert {"loss.nan-inf", "loss.diverging"} <= {f.id for f in diagnosis.findings}


def test_problem_status_follows_findings(fixture_run) -> None:
    got = statuses(diagnose(fixture_run("lr_too_large")))
    assert got["loss.nan-inf"] is Status.PROBLEM
    assert got["hparam.too-many-epochs"] is Status.NOT_CHECKABLE  # no eval curve in that run


def test_ignore_by_group_removes_findings_and_marks_the_checklist(fixture_run) -> None:
    diagnosis = diagnose(fixture_run("lr_too_large"), ignore=["loss"])
    assert not any(f.id.startswith("loss.") for f in diagnosis.findings)
    entry = next(e for e in diagnosis.checklist if e.id == "loss.nan-inf")
    assert entry.status is Status.NOT_CHECKABLE and "--ignore" in entry.reason


def test_selection_by_id_and_group() -> None:
    assert selected_ids(["hparam.lr-too-large"]) == {"hparam.lr-too-large"}
    assert selected_ids(["loss"], ["loss.plateau"]) == {"loss.nan-inf", "loss.diverging", "loss.oscillating"}
    with pytest.raises(UsageError):
        selected_ids(["los"])


def test_settings_are_validated_and_typed() -> None:
    assert parse_settings(["loss.diverging.rise_factor=3"]) == {"loss.diverging": {"rise_factor": 3.0}}
    for bad in ("loss.diverging.nope=1", "loss.nope.rise_factor=1", "loss.diverging.rise_factor=x", "novalue"):
        with pytest.raises(UsageError):
            parse_settings([bad])


def test_settings_reach_the_rule(fixture_run) -> None:
    run = fixture_run("lr_too_small")
    assert "loss.plateau" in {f.id for f in diagnose(run).findings}
    relaxed = diagnose(run, settings={"loss.plateau": {"converged_ratio": 2.0}})
    assert "loss.plateau" not in {f.id for f in relaxed.findings}


def test_explain_prints_the_docstring_headings() -> None:
    text = explain("hparam.lr-too-large")
    for heading in ("What it detects", "Why it matters", "Typical causes", "How to fix", "Thresholds"):
        assert heading in text
    assert "max_update_ratio = 0.1" in text
    assert "not observable" in explain("api.construct-constraint")
