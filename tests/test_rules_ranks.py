"""init.rank-mismatch: digests of rank directories compared across runs, through the audit and the reports."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import FIXTURES

from summary_doctor.audit import audit
from summary_doctor.cli import main
from summary_doctor.engine import diagnose
from summary_doctor.findings import Status
from summary_doctor.rules.ranks import ID, cross_run_findings, rank_groups, run_digest


def digests(fixture_run, name):
    return {f"{name}/rank_{k}": run_digest(fixture_run(f"{name}/rank_{k}")) for k in (0, 1)}


def entry(diagnosis):
    return next(e for e in diagnosis.checklist if e.id == ID)


def test_rank_directories_grouped_by_parent():
    names = [".", "a/rank_0", "a/rank_1", "b/device_0", "b/device_1", "c/rank_0", "d/run_1"]
    assert rank_groups(names) == {
        "a": [(0, "a/rank_0"), (1, "a/rank_1")],
        "b": [(0, "b/device_0"), (1, "b/device_1")],
    }


def test_digest_is_strict_json_and_small(fixture_run):
    digest = run_digest(fixture_run("ranks_seed_mismatch/rank_0"))
    text = json.dumps(digest, allow_nan=False)
    assert len(text) < 50_000
    assert digest["parallel_mode"] == "data_parallel"
    assert sorted(digest["parameters"]) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]


def test_different_seeds_found_across_ranks(fixture_run):
    found, entries = cross_run_findings(json.loads(json.dumps(digests(fixture_run, "ranks_seed_mismatch"))))
    [finding] = found
    assert finding.runs == ("ranks_seed_mismatch/rank_0", "ranks_seed_mismatch/rank_1")
    assert set(finding.tags) == {"fc1.weight", "fc2.weight"}  # zero-initialised biases stay alike
    assert finding.step == 1
    assert {e.status for e in entries.values()} == {Status.PROBLEM}
    plot = finding.evidence["first_histograms"]
    assert len(plot["edges"]) == 41 and set(plot["shares"]) == set(finding.runs)


@pytest.mark.parametrize("name", ["ranks_same_init_sharded", "ranks"])
def test_identical_ranks_are_ok(fixture_run, name):
    found, entries = cross_run_findings(digests(fixture_run, name))
    assert found == [] and {e.status for e in entries.values()} == {Status.OK}


def test_sliced_parameters_are_not_compared(fixture_run):
    data = digests(fixture_run, "ranks_seed_mismatch")
    for digest in data.values():
        digest["parallel_mode"] = "semi_auto_parallel"
    found, entries = cross_run_findings(data)
    assert found == [] and {e.status for e in entries.values()} == {Status.NOT_CHECKABLE}


def test_one_record_per_rank_cannot_tell_an_update_from_another_init(fixture_run):
    data = copy.deepcopy(digests(fixture_run, "ranks_seed_mismatch"))
    for digest in data.values():
        digest["parameters"] = {name: records[:1] for name, records in digest["parameters"].items()}
    found, entries = cross_run_findings(data)
    assert found == []
    assert all(e.status is Status.NOT_CHECKABLE and "one record per rank" in e.reason for e in entries.values())


def test_a_single_run_says_to_diagnose_the_parent(fixture_run):
    item = entry(diagnose(fixture_run("ranks_seed_mismatch/rank_0")))
    assert item.status is Status.NOT_CHECKABLE and "PARENT" in item.enable


def test_audit_of_the_parent_sets_both_ranks_entries():
    result = audit(FIXTURES / "ranks_seed_mismatch")
    assert [f.id for f in result.findings] == [ID]
    assert result.findings[0].runs == ("rank_0", "rank_1")
    assert {entry(d).status for d in result.diagnoses} == {Status.PROBLEM}
    assert all(not d.findings for d in result.diagnoses)  # the finding is across runs, not in either run


def test_ignoring_the_id_skips_the_comparison():
    result = audit(FIXTURES / "ranks_seed_mismatch", ignore=["init"])
    assert result.findings == []


@pytest.mark.parametrize(("fmt", "heading"), [("text", "across runs"), ("markdown", "### Across runs")])
def test_every_report_has_its_section(capsys, fmt, heading):
    main([str(FIXTURES / "ranks_seed_mismatch"), "--format", fmt, "--fail-on", "never"])
    out = capsys.readouterr().out
    assert heading in out and ID in out and "rank_1" in out


def test_json_has_the_top_level_finding(capsys):
    main([str(FIXTURES / "ranks_seed_mismatch"), "--format", "json", "--fail-on", "never"])
    document = json.loads(capsys.readouterr().out)
    [finding] = document["findings"]
    assert finding["id"] == ID and finding["runs"] == ["rank_0", "rank_1"]
    assert [c["status"] for r in document["runs"] for c in r["checklist"] if c["id"] == ID] == ["problem"] * 2
