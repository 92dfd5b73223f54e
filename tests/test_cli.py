"""The command line: the JSON contract, exit codes, formats and usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES

from summary_doctor.cli import main
from summary_doctor.symptoms import SYMPTOM_IDS

FINDING_TYPES = {
    "id": str,
    "severity": str,
    "title": str,
    "message": str,
    "hint": str,
    "tags": list,
    "evidence": dict,
}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def check_finding(finding: dict) -> None:
    for key, kind in FINDING_TYPES.items():
        assert isinstance(finding[key], kind), key
    assert finding["id"] in SYMPTOM_IDS and finding["severity"] in ("error", "warning", "info")
    assert finding["step"] is None or isinstance(finding["step"], int)
    assert finding["caused_by"] is None or finding["caused_by"] in SYMPTOM_IDS


def check_contract(document: dict, root: str) -> None:
    assert document["schema"] == "summary-doctor/1" and isinstance(document["version"], str)
    assert document["root"] == root and isinstance(document["findings"], list)
    for run in document["runs"]:
        assert isinstance(run["run"], str)
        for entry in run["files"]:
            assert isinstance(entry["file"], str) and isinstance(entry["records"], int)
            assert isinstance(entry["bytes"], int) and isinstance(entry["problems"], list)
        assert set(run["steps"]) == {"first", "last"}
        for finding in run["findings"]:
            check_finding(finding)
        present = {f["id"] for f in run["findings"]}
        assert all(f["caused_by"] in present for f in run["findings"] if f["caused_by"])
        assert [e["id"] for e in run["checklist"]] == list(SYMPTOM_IDS)
        for entry in run["checklist"]:
            assert entry["status"] in ("problem", "ok", "not-checkable")
            if entry["status"] == "not-checkable":
                assert entry["reason"] and isinstance(entry["enable"], str)
        problems = {f["id"] for f in run["findings"] if f["severity"] != "info"}
        assert problems == {e["id"] for e in run["checklist"] if e["status"] == "problem"}


def test_json_of_a_fault_fixture_follows_the_contract(capsys) -> None:
    root = str(FIXTURES / "lr_too_large")
    status, out, _ = run_cli(capsys, root, "--format", "json")
    document = json.loads(out)
    check_contract(document, root)
    assert document["runs"][0]["run"] == "."
    assert document["runs"][0]["steps"] == {"first": 1, "last": 64}
    assert status == 1  # errors found, --fail-on error by default


def test_json_of_a_folder_of_runs_names_them_relative_to_the_root(capsys) -> None:
    root = str(FIXTURES / "ranks")
    status, out, _ = run_cli(capsys, root, "--format", "json")
    document = json.loads(out)
    check_contract(document, root)
    assert [r["run"] for r in document["runs"]] == ["rank_0", "rank_1"]
    assert status == 0


@pytest.mark.parametrize(("fail_on", "expected"), [("error", 0), ("warning", 1), ("never", 0)])
def test_fail_on_sets_the_exit_status(capsys, fail_on: str, expected: int) -> None:
    status, _, _ = run_cli(capsys, str(FIXTURES / "too_few_epochs"), "--fail-on", fail_on, "--format", "json")
    assert status == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["does/not/exist"],
        ["--set", "loss.diverging.nope=1", "FIX"],
        ["--set", "loss.diverging.rise_factor=big", "FIX"],
        ["--select", "nonsense", "FIX"],
        ["--explain", "no.such-id"],
        ["-o", "report.pdf", "FIX"],
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(capsys, argv: list[str]) -> None:
    argv = [str(FIXTURES / "healthy_mlp") if a == "FIX" else a for a in argv]
    status, _, err = run_cli(capsys, *argv)
    assert status == 2
    assert err.startswith("summary-doctor: error:") and err.count("\n") == 1 and "Traceback" not in err


def test_empty_directory_is_a_usage_error(capsys, tmp_path: Path) -> None:
    status, _, err = run_cli(capsys, str(tmp_path))
    assert status == 2 and "no MindSpore summary files" in err


def test_output_file_format_from_its_suffix(capsys, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    status, out, _ = run_cli(capsys, str(FIXTURES / "healthy_mlp"), "-o", str(target))
    assert out == "" and status == 0
    check_contract(json.loads(target.read_text()), str(FIXTURES / "healthy_mlp"))


def test_text_report_leads_with_the_cause_and_summarises_runs(capsys) -> None:
    status, out, _ = run_cli(capsys, str(FIXTURES), "--fail-on", "never")
    assert status == 0
    header = out.splitlines()[0]
    assert header.split() == ["run", "errors", "warnings", "first", "cause"]
    assert any(line.startswith("lr_too_large ") and "hparam.lr-too-large" in line for line in out.splitlines())
    block = out.split("run lr_too_large:", 1)[1].split("\nrun ", 1)[0]
    assert block.index("hparam.lr-too-large") < block.index("loss.diverging") < block.index("weight.overflow")
    assert "explained by loss.nan-inf (above)" in block
    assert "checklist:" in block and "api.construct-constraint" in block


def test_list_rules_and_explain(capsys) -> None:
    status, out, _ = run_cli(capsys, "--list-rules")
    assert status == 0 and all(symptom_id in out for symptom_id in SYMPTOM_IDS)
    status, out, _ = run_cli(capsys, "--explain", "loss.oscillating")
    assert status == 0 and "How to fix" in out and "min_swing = 2.0" in out


def test_loss_tag_option_reaches_the_rules(capsys) -> None:
    _, out, _ = run_cli(capsys, str(FIXTURES / "healthy_mlp"), "--format", "json", "--loss-tag", "missing_tag")
    checklist = {e["id"]: e for e in json.loads(out)["runs"][0]["checklist"]}
    assert checklist["loss.diverging"]["status"] == "not-checkable"
    assert "--loss-tag" in checklist["loss.diverging"]["reason"]


def test_text_has_a_header_and_a_findings_table_without_colour_off_a_terminal(capsys) -> None:
    status, out, _ = run_cli(capsys, str(FIXTURES / "lr_too_large"))
    assert status == 1
    lines = out.splitlines()
    assert lines[0].startswith("run .: steps 1..") and "ERROR 4" in lines[0]
    assert any(line.split()[:3] == ["ERROR", "7", "hparam.lr-too-large"] for line in lines)
    assert any(line.split()[:4] == ["ERROR", "7", "└", "loss.nan-inf"] for line in lines)
    assert any(line.startswith("  histograms: 5 tag(s)") for line in lines)
    assert "\033[" not in out
    assert lines[-1].startswith("plots: summary-doctor ")


def test_colour_can_be_forced(capsys) -> None:
    _, out, _ = run_cli(capsys, str(FIXTURES / "lr_too_large"), "--color", "always")
    assert "\033[31mERROR\033[0m" in out


def test_progress_is_off_without_a_terminal_and_counts_run_bytes(tmp_path) -> None:
    import io

    from summary_doctor import progress

    assert not progress.wanted(io.StringIO())
    with progress.byte_progress(10**12, enabled=False) as advance:
        assert advance is None
    run_dir = FIXTURES / "resumed"
    expected = sum(p.stat().st_size for p in run_dir.iterdir() if "summary." in p.name)
    assert progress.run_bytes([run_dir]) == expected


def test_json_says_which_finding_explains_which(capsys) -> None:
    _, out, _ = run_cli(capsys, str(FIXTURES / "lr_too_large"), "--format", "json")
    causes = {f["id"]: f["caused_by"] for f in json.loads(out)["runs"][0]["findings"]}
    assert causes == {
        "dataset.too-few-samples": None,  # info: neither a cause nor an effect
        "hparam.lr-too-large": None,
        "loss.diverging": "hparam.lr-too-large",
        "loss.nan-inf": "loss.diverging",
        "weight.overflow": "loss.nan-inf",
        "weight.update-ratio": "hparam.lr-too-large",
    }
