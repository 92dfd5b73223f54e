"""The report's view model, checked as data (no HTML parsing), plus the shared sample audits.

The samples are hand-built diagnoses on real fixture runs, so the report is
tested against a stable set of findings whatever the rules currently say.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import FIXTURES, read_fixture

from summary_doctor.findings import AuditResult, ChecklistEntry, Diagnosis, Finding, Severity, Status
from summary_doctor.report.model import Counts, build_report, format_value, slug
from summary_doctor.symptoms import SYMPTOM_IDS

HOSTILE = '<script>alert(1)</script>"onload=`x`|y'


def sample_findings(run_name: str) -> list[Finding]:
    """Realistic findings of several kinds on the ``healthy_mlp`` fixture run."""
    return [
        Finding(
            "weight.update-ratio",
            Severity.WARNING,
            "fc1.weight updates are 0.00012 of its norm (below 0.001)",
            "The relative update of fc1.weight stays below the threshold for 30 of 32 recorded intervals.",
            "Raise the learning rate or check that the optimizer receives these parameters.",
            run=run_name,
            tags=("fc1.weight/auto",),
            step=10,
            evidence={"median_ratio": 0.000123, "low_threshold": 0.001},
            caused_by="init.all-zero",
        ),
        Finding(
            "loss.diverging",
            Severity.ERROR,
            "loss rose from 0.074 to 0.52 after step 150",
            "The smoothed loss grows by 600% between its minimum and the end of training.",
            "Lower the learning rate (try 10x lower) or add gradient clipping.",
            run=run_name,
            tags=("loss/auto",),
            step=150,
            evidence={"min_loss": 0.0741, "final_loss": 0.52, "min_step": 300},
        ),
        Finding(
            "init.all-zero",
            Severity.ERROR,
            "fc2.weight is all zeros at step 1",
            "Every value of fc2.weight is 0 at the first recorded step.",
            "Use a random initializer (e.g. HeUniform) instead of Zero for weights.",
            run=run_name,
            tags=("fc2.weight/auto",),
            step=1,
            evidence={"zero_fraction": 1.0, "count": 2048},
        ),
        Finding(
            "graph.weight-freezing",
            Severity.WARNING,
            "fc3.weight never changes in 310 steps",
            "The histogram of fc3.weight is identical at every recorded step.",
            "Check requires_grad and the parameters passed to the optimizer.",
            run=run_name,
            tags=("fc3.weight/auto",),
            step=1,
            evidence={"steps_unchanged": 310},
        ),
        Finding(
            "dataset.class-imbalance",
            Severity.INFO,
            "class 3 has 12x fewer samples than class 0",
            "Label counts over the recorded batches are very uneven.",
            "Resample or weight the loss by class frequency.",
            run=run_name,
            tags=("label_tensor",),
            evidence={"class_counts": {"0": 240, "1": 180, "2": 160, "3": 20}},
        ),
        Finding(
            "graph.node-connection",
            Severity.WARNING,
            f"parameter {HOSTILE} receives no gradient",
            f"The tag {HOSTILE} names a parameter with no gradient edge.",
            "Connect it to the loss or remove it.",
            run=run_name,
            tags=(HOSTILE, "fc2.weight/auto"),
            step=1,
            evidence={HOSTILE: HOSTILE},
        ),
    ]


def sample_checklist(findings: list[Finding]) -> list[ChecklistEntry]:
    """A full checklist: problems for the findings, some not checkable, the rest ok."""
    problems = {f.id for f in findings}
    entries = []
    for symptom_id in SYMPTOM_IDS:
        if symptom_id in problems:
            entries.append(ChecklistEntry(symptom_id, Status.PROBLEM))
        elif symptom_id.startswith(("api.", "gradient.", "activation.")):
            entries.append(
                ChecklistEntry(
                    symptom_id,
                    Status.NOT_CHECKABLE,
                    "no gradient or activation histograms recorded",
                    "record them, e.g. ops.HistogramSummary()('grad/fc1', g)",
                )
            )
        else:
            entries.append(ChecklistEntry(symptom_id, Status.OK))
    return entries


def sample_result(*, runs: tuple[str, ...] = ("healthy_mlp",), cross: bool = False) -> AuditResult:
    """An audit of fixture runs with hand-built findings (the first run) and a clean rest."""
    diagnoses = []
    for i, name in enumerate(runs):
        run = read_fixture(name)
        findings = sample_findings(run.name) if i == 0 else []
        diagnoses.append(Diagnosis(run, findings, sample_checklist(findings)))
    across = []
    if cross:
        across.append(
            Finding(
                "init.rank-mismatch",
                Severity.ERROR,
                "fc1.weight differs between ranks at step 1",
                "rank_0 and rank_1 start from different weights.",
                "Set the same seed on every rank (mindspore.set_seed) before building the network.",
                tags=("fc1.weight/auto",),
                step=1,
                runs=tuple(runs),
            )
        )
    return AuditResult(str(FIXTURES), diagnoses, across)


def scrub(text: str) -> str:
    """Remove what changes between machines, versions and fixture regenerations: images, paths, times."""
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,IMAGE", text)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "WRITTEN", text)
    text = re.sub(r"summary\.\d{9,}", "summary.TIME", text)
    text = text.replace(str(FIXTURES), "FIXTURES")
    from summary_doctor import __version__

    return text.replace(__version__, "VERSION")


def test_counts_and_severity_order():
    view = build_report(sample_result(), plots=False)
    run = view.runs[0]
    assert (run.counts.error, run.counts.warning, run.counts.info) == (2, 3, 1)
    assert [f.severity for f in run.findings] == ["error"] * 2 + ["warning"] * 3 + ["info"]
    assert view.counts == Counts(2, 3, 1)
    assert view.counts.verdict == "error"


def test_a_consequence_follows_its_cause_and_links_back():
    run = build_report(sample_result(), plots=False).runs[0]
    assert [f.id for f in run.findings][:3] == ["loss.diverging", "init.all-zero", "weight.update-ratio"]
    cause, effect = run.findings[1], run.findings[2]
    assert (effect.depth, effect.caused_by, effect.cause_anchor) == (1, "init.all-zero", cause.anchor)
    assert cause.explains == [("weight.update-ratio", effect.anchor)]


def test_anchors_are_unique_and_safe():
    run = build_report(sample_result(), plots=False).runs[0]
    anchors = [f.anchor for f in run.findings]
    assert len(set(anchors)) == len(anchors)
    assert all(re.fullmatch(r"[a-z0-9-]+", a) for a in anchors)
    assert slug(HOSTILE) == "script-alert-1-script-onload-x-y"


def test_checklist_in_mindspore_order_with_links():
    run = build_report(sample_result(), plots=False).runs[0]
    items = [item for group in run.checklist for item in group.items]
    assert [i.id for i in items] == list(SYMPTOM_IDS)
    by_id = {i.id: i for i in items}
    assert by_id["init.all-zero"].status == "problem"
    assert by_id["init.all-zero"].anchors == [f.anchor for f in run.findings if f.id == "init.all-zero"]
    assert by_id["gradient.vanishing"].status == "not-checkable"
    assert "HistogramSummary" in by_id["gradient.vanishing"].enable
    dataset = run.checklist[0]
    assert (dataset.name, dataset.problems, dataset.ok, dataset.not_checkable) == ("Dataset", 1, 4, 0)


def test_a_finding_without_checklist_entry_is_still_a_problem():
    run = read_fixture("healthy_mlp")
    finding = sample_findings(run.name)[1]
    view = build_report(AuditResult(".", [Diagnosis(run, [finding], [])]), plots=False)
    items = {i.id: i for g in view.runs[0].checklist for i in g.items}
    assert items["loss.diverging"].status == "problem"
    assert items["loss.plateau"].status == "not-checkable"


def test_run_header_and_overview():
    run = build_report(sample_result(), plots=False).runs[0]
    assert run.steps == "1 … 310"
    assert run.written and run.written.endswith("UTC")
    assert len(run.files) == 3 and run.problems == []
    assert [p.title for p in run.overview.scalars] == ["loss/auto"]
    assert run.overview.histograms[0].title == "fc2.weight/auto"  # the findings' tags come first
    assert ("optimizer", "Momentum") in run.overview.hyperparameters
    assert run.overview.dataset[0][2] == "Batch"


def test_evidence_is_formatted_for_people():
    assert format_value(0.000123456) == "0.0001235"
    assert format_value(2048) == "2,048"
    assert format_value({"a": 1.0, "b": [1, 2]}) == "a: 1, b: 1, 2"
    assert format_value("x" * 500).endswith("…")


def test_plots_are_png_data_uris():
    run = build_report(sample_result(), plots=True).runs[0]
    for finding in run.findings:
        assert finding.plot.uri and finding.plot.uri.startswith("data:image/png;base64,")
    assert all(p.uri for p in run.overview.scalars + run.overview.histograms)


def test_several_runs_and_cross_run_findings():
    view = build_report(sample_result(runs=("healthy_mlp", "healthy_cnn"), cross=True), plots=False)
    assert [r.anchor for r in view.runs] == ["run-1", "run-2"]
    assert view.runs[1].counts.verdict == "clean"
    assert view.cross_findings[0].anchor == "across-init-rank-mismatch-1"
    assert view.counts.error == 3


def test_view_model_golden(golden):
    view = build_report(sample_result(runs=("healthy_mlp", "healthy_cnn"), cross=True), plots=False)
    golden("report_view.json", scrub(json.dumps(view.to_json(), indent=1, ensure_ascii=False)) + "\n")


@pytest.mark.parametrize("name", ["healthy_mlp", "healthy_cnn"])
def test_engine_findings_render_when_the_engine_exists(name):
    engine = pytest.importorskip("summary_doctor.engine", reason="the rule engine is not there yet")
    diagnosis = engine.diagnose(read_fixture(name))
    view = build_report(AuditResult(str(FIXTURES), [diagnosis]), plots=False)
    assert [i.id for g in view.runs[0].checklist for i in g.items] == list(SYMPTOM_IDS)
