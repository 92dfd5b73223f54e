"""The whole CLI on every fixture: the warning/error ids must be exactly the ones in ``fixtures/expected.json``.

Healthy fixtures must show nothing (the false-positive budget is zero); each
fault fixture shows its symptoms. A fixture not generated yet is skipped; a
fixture without a manifest row fails, so the manifest grows with the
fixtures. ``benchmarks/detection.py`` reads the same manifest.
"""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES, ROOT

from summary_doctor.cli import main
from summary_doctor.reader.files import find_runs
from summary_doctor.symptoms import BY_ID

MANIFEST: dict[str, dict] = json.loads((ROOT / "fixtures" / "expected.json").read_text(encoding="utf-8"))["fixtures"]
EXPECTED: dict[str, set[str]] = {name: set(entry["expected"]) for name, entry in MANIFEST.items()}
#: Issue 9's bar: the false-positive budget is judged on at least this many healthy runs.
MIN_HEALTHY = 20


def _fixture_names() -> list[str]:
    if not FIXTURES.exists():
        return []
    return sorted(path.relative_to(FIXTURES).as_posix() for path in find_runs(FIXTURES))


def _problem_ids(capsys: pytest.CaptureFixture[str], name: str) -> tuple[set[str], int]:
    status = main([str(FIXTURES / name), "--format", "json", "--fail-on", "never"])
    document = json.loads(capsys.readouterr().out)
    (run,) = document["runs"]
    return {f["id"] for f in run["findings"] if f["severity"] in ("warning", "error")}, status


@pytest.mark.parametrize("name", _fixture_names())
def test_fixture_shows_exactly_its_symptoms(capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert name in EXPECTED, f"fixture {name} has no row in fixtures/expected.json: add what it should show"
    found, status = _problem_ids(capsys, name)
    assert status == 0
    assert found == EXPECTED[name]


def test_manifest_rows_are_well_formed() -> None:
    for name, entry in MANIFEST.items():
        assert entry["kind"] in ("healthy", "fault"), name
        assert set(entry["expected"]) <= set(BY_ID), f"{name}: unknown symptom id"
        if entry["kind"] == "healthy":
            assert entry["expected"] == [], f"{name}: a healthy fixture may not expect a warning"
        else:
            assert entry["fault"], f"{name}: a fault fixture names its fault"
            # A fault whose own id this version does not analyse expects nothing, and says why.
            assert entry["expected"] or entry.get("why"), f"{name}: no expected id and no why"


def test_false_positive_budget_is_judged_on_enough_healthy_runs() -> None:
    healthy = [name for name, entry in MANIFEST.items() if entry["kind"] == "healthy"]
    on_disk = set(_fixture_names())
    if not on_disk:
        pytest.skip("fixtures are not generated")
    assert len([n for n in healthy if n in on_disk]) >= MIN_HEALTHY
