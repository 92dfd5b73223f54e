"""The audit's HTML index: the report's structure rules, its links, the chart, and a real browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES
from test_report_browser import CHROMIUM, DevTools, _errors, _requests
from test_report_html import Elements

from summary_doctor.audit import audit_runs, cross
from summary_doctor.findings import ChecklistEntry, Finding, Severity, Status
from summary_doctor.report.audit_output import render

HOSTILE = "evil<script>alert(1)</script>"  # two nested directories: a name cannot hold "/"
QUOTED = 'q"onload=alert(2)'
CLEAN, FAULT = "clean", "fault"


def _lab(root: Path) -> Path:
    shutil.copytree(FIXTURES / "healthy_mlp", root / CLEAN)
    shutil.copytree(FIXTURES / "oscillating", root / FAULT)
    shutil.copytree(FIXTURES / "oscillating", root / HOSTILE)
    shutil.copytree(FIXTURES / "too_few_epochs", root / QUOTED)
    (root / "broken").mkdir()
    (root / "broken" / "events.out.events.summary.1.x_MS").write_bytes(b"\x00" * 64)
    return root


def _rank_finding(runs: dict, job: object = None) -> cross.CrossRun:
    """A cross-run finding, as the rank comparison gives one, between the two oscillating copies."""
    names = tuple(sorted(n for n in runs if n in (FAULT, HOSTILE)))
    finding = Finding(
        id="init.rank-mismatch",
        severity=Severity.ERROR,
        title="ranks start from different weights",
        message="fc1.weight differs at step 1",
        hint="seed every rank alike",
        evidence={"max_difference": 0.5},
        runs=names,
    )
    return cross.CrossRun([finding], {n: ChecklistEntry("init.rank-mismatch", Status.PROBLEM) for n in names})


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """``-o DIR/``: the index and each run's report, with a cross-run finding."""
    root = tmp_path_factory.mktemp("index")
    out = root / "out"
    patch = pytest.MonkeyPatch()
    patch.setattr(cross, "compare", _rank_finding)
    try:
        audit = audit_runs(_lab(root / "lab"), jobs=2, cache=False, reports=out)
    finally:
        patch.undo()
    (out / "index.html").write_text(render("html", audit), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def page(written) -> str:
    return (written / "index.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def parsed(page) -> Elements:
    parser = Elements()
    parser.feed(page)
    return parser


def test_one_row_per_run_each_linking_to_its_own_report(written, page, parsed):
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr>") == 5
    links = [a["href"] for t, a in parsed.elements if t == "a" and not a["href"].startswith("#")]
    assert len(links) == 5 == len(set(links))  # the unreadable run's report lists its read problems
    for link in links:
        assert re.fullmatch(r"runs/[A-Za-z0-9._-]+\.html", link) and (written / link).is_file()
        report = (written / link).read_text(encoding="utf-8")
        assert "http://" not in report and "https://" not in report


def test_links_inside_the_page_have_targets_and_ids_are_unique(parsed):
    ids = [a["id"] for _, a in parsed.elements if "id" in a]
    assert len(ids) == len(set(ids))
    inside = [a["href"] for t, a in parsed.elements if t == "a" and a["href"].startswith("#")]
    assert inside and all(h[1:] in ids for h in inside)


def test_no_external_reference(page):
    for attribute in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page):
        assert attribute.startswith(("#", "data:", "runs/")), attribute
    assert not re.search(r"url\(\s*['\"]?(?!data:)", page)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "@import" not in page and "<img" not in page


def test_hostile_run_names_are_escaped(page, parsed):
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '"onload=' not in page
    assert all("alert(" not in script for script in parsed.scripts)
    for _, attributes in parsed.elements:
        assert not any(name.startswith("on") for name in attributes)


def test_chart_has_a_bar_per_symptom_found(page):
    chart = page.split('id="symptoms"')[1].split("</section>")[0]
    ids = set(re.findall(r'<text x="\d+" y="15" text-anchor="end" class="label">([a-z.-]+)</text>', chart))
    assert {"loss.oscillating", "hparam.lr-too-large", "hparam.too-few-epochs", "init.rank-mismatch"} <= ids
    assert 'class="bar error"' in chart and 'class="bar warning"' in chart


def test_cross_run_findings_are_shown_and_mark_the_runs(page):
    across = page.split('id="across-runs"')[1].split("</section>")[0]
    assert across.count("<article") == 1 and "ranks start from different weights" in across
    assert "@media print" in page and page.count("<script") == 1


def test_without_a_directory_runs_link_to_their_section(tmp_path):
    audit = audit_runs(_lab(tmp_path / "lab"), jobs=1, cache=False)
    parser = Elements()
    parser.feed(render("html", audit))
    ids = {a["id"] for _, a in parser.elements if "id" in a}
    hrefs = [a["href"] for t, a in parser.elements if t == "a"]
    assert hrefs and all(h.startswith("#") and h[1:] in ids for h in hrefs)
    # every run with findings (the healthy copy has an info finding) or a reason
    assert sum(h.startswith("#run-") for h in hrefs) == 5


def _first_runs_after_clicking(tools: DevTools, session: str, header: str) -> list[str]:
    script = f"""(() => {{
        const th = [...document.querySelectorAll('#audit-table th')].find(h => h.textContent.trim() === {header!r});
        th.click();
        return [...document.querySelectorAll('#audit-table tbody tr')].map(r => r.cells[0].textContent.trim());
    }})()"""
    return tools.call("Runtime.evaluate", session, expression=script, returnByValue=True)["result"]["value"]


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_index_loads_offline_without_errors_and_sorts(written, tmp_path):
    index = written / "index.html"
    tools = DevTools(tmp_path / "profile")
    try:
        target = next(t for t in tools.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        session = tools.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.call(f"{domain}.enable", session)
        tools.call("Page.navigate", session, url=index.as_uri())
        tools.wait_for("Page.loadEventFired")
        by_warnings = _first_runs_after_clicking(tools, session, "W")
        by_errors = _first_runs_after_clicking(tools, session, "E")
        reversed_errors = _first_runs_after_clicking(tools, session, "E")
        by_verdict = _first_runs_after_clicking(tools, session, "verdict")
    finally:
        tools.close()
    assert _errors(tools.events) == [] and _requests(tools.events, index) == []
    assert by_warnings[0] in (FAULT, HOSTILE, QUOTED)
    assert by_errors[:2] == sorted([FAULT, HOSTILE]) and reversed_errors[-2:] == sorted([FAULT, HOSTILE])
    assert by_verdict[0] == "broken"  # not examined sorts above errors: it needs a look
