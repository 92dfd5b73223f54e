"""The audit's HTML index page: the table of runs, how often each symptom occurs, the cross-run findings.

One self-contained file like the report (inline CSS and script, the chart as
inline SVG, no external URL, readable without JavaScript; a small script
sorts the table by any column, no server needed). Each run links to its own
report written beside the index (``-o DIR/``), or else to its section on the
page. The view is plain data built here; the template only lays it out.
No pandas and no matplotlib: an index is drawn from the records alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from summary_doctor import __version__
from summary_doctor.findings import Finding
from summary_doctor.records import BatchAudit, RunRecord
from summary_doctor.report.audit_output import symptom_counts
from summary_doctor.symptoms import BY_ID, SYMPTOM_IDS
from summary_doctor.table import CELL_ORDER, LINEAGE_COLUMNS, rows

#: Sort keys: severity order, with runs that could not be examined above errors (they need a look).
VERDICT_RANK = {"clean": 1, "info": 2, "warning": 3, "error": 4, None: 5}
CELL_TEXT = {"error": "E", "warning": "W", "info": "i", "ok": "ok", "not-checkable": "-"}
LINEAGE_TITLES = {
    "learning_rate": "lr",
    "batch_size": "batch",
    "optimizer": "optimizer",
    "epochs": "epochs",
    "loss_function": "loss function",
    "dataset_size": "dataset",
    "network": "network",
    "final_loss": "final loss",
    "final_eval_loss": "final eval loss",
    "final_eval_accuracy": "final eval acc",
}
BAR_WIDTH, ROW_HEIGHT, LABEL_WIDTH = 420, 22, 230


@dataclass
class Cell:
    """One table cell: what is shown, its sort key, its tooltip, its CSS class."""

    text: str
    sort: str = ""
    title: str = ""
    css: str = ""


@dataclass
class Header:
    """A column: its title, tooltip, whether it sorts as numbers, and a CSS class."""

    title: str
    tip: str
    numeric: bool
    css: str = ""


@dataclass
class RunRow:
    name: str
    link: str | None
    verdict: str
    cells: list[Cell]


@dataclass
class Bar:
    """One symptom of the chart: stacked rectangles per severity, in pixels, and the run counts."""

    id: str
    title: str
    y: int
    parts: list[tuple[str, int, int, int]]  # severity, x, width, runs
    total: int


@dataclass
class Section:
    """A run on the page itself (when no report of its own is written): its findings in short."""

    anchor: str
    name: str
    verdict: str
    note: str
    findings: list[Finding]


@dataclass
class PlotStub:
    title: str
    uri: None = None


@dataclass
class CrossView:
    """A cross-run finding, shaped as ``finding.html.j2`` expects (no plot: the runs link to theirs)."""

    anchor: str
    id: str
    severity: str
    title: str
    message: str
    hint: str
    step: int | None
    tags: list[str]
    runs: list[str]
    evidence: list[tuple[str, str]]
    plot: PlotStub
    # cross-run findings are neither linked to causes nor shown under one
    caused_by: str | None = None
    cause_anchor: str | None = None
    depth: int = 0
    explains: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class IndexView:
    root: str
    version: str
    counts: dict[str, int]
    cached: int
    headers: list[Header]
    rows: list[RunRow]
    bars: list[Bar]
    chart_height: int
    chart_width: int
    label_x: int
    cross: list[CrossView]
    sections: list[Section] = field(default_factory=list)


def fmt(value: Any) -> str:
    """Numbers with 4 significant digits, text as is, nothing for no value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _sort_key(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "Infinity"  # a NaN loss sorts as the worst
    return "" if value is None else str(value)


def _link(record: RunRecord, audit: BatchAudit, sections: set[str], index: int) -> str | None:
    if record.run in audit.reports:
        return audit.reports[record.run]
    return f"#run-{index}" if record.run in sections else None


def _row(row: dict[str, Any], link: str | None, lineage: list[str], symptoms: list[str]) -> RunRow:
    verdict = row["verdict"] or row["status"]
    cells = [
        Cell(verdict, str(VERDICT_RANK.get(row["verdict"], 5)), row["reason"], f"badge {verdict}"),
        *(Cell(fmt(row[k]), str(row[k])) for k in ("errors", "warnings", "infos")),
        *(Cell(CELL_TEXT[row[s]], str(CELL_ORDER.index(row[s])), f"{s}: {row[s]}", f"cell {row[s]}") for s in symptoms),
        Cell(row["status"] if row["status"] != "diagnosed" else "", title=row["reason"]),
        *(Cell(fmt(row[k]), _sort_key(row[k]), title=fmt(row[k])) for k in lineage),
    ]
    return RunRow(row["run"], link, verdict, cells)


def _bars(table: list[dict[str, Any]]) -> list[Bar]:
    counts = symptom_counts(table)
    ordered = sorted(counts.items(), key=lambda item: (-sum(item[1].values()), SYMPTOM_IDS.index(item[0])))
    scale = BAR_WIDTH / max([len(table), 1])
    bars = []
    for k, (symptom_id, by_severity) in enumerate(ordered):
        x, parts = LABEL_WIDTH, []
        for severity in ("error", "warning", "info"):
            runs = by_severity.get(severity, 0)
            if runs:
                width = max(2, round(runs * scale))
                parts.append((severity, x, width, runs))
                x += width
        title = BY_ID[symptom_id].title if symptom_id in BY_ID else symptom_id
        bars.append(Bar(symptom_id, title, k * ROW_HEIGHT, parts, sum(by_severity.values())))
    return bars


def _cross(findings: list[Finding]) -> list[CrossView]:
    return [
        CrossView(
            anchor=f"across-{k}",
            id=f.id,
            severity=f.severity.value,
            title=f.title,
            message=f.message,
            hint=f.hint,
            step=f.step,
            tags=list(f.tags),
            runs=list(f.runs),
            evidence=[(str(key), fmt(value)) for key, value in f.evidence.items()],
            plot=PlotStub(f"evidence for {f.id}"),
        )
        for k, f in enumerate(findings, start=1)
    ]


def build_index(audit: BatchAudit) -> IndexView:
    """The view of the index page."""
    table = rows(audit)
    metrics = sorted({k for r in table for k in r if k.startswith("metrics/")})
    lineage = [c for c in (*LINEAGE_COLUMNS, *metrics) if any(r.get(c) is not None for r in table)]
    symptoms = [s for s in SYMPTOM_IDS if any(r[s] in ("error", "warning", "info") for r in table)]
    sections = [] if audit.reports else _sections(audit)
    names = {s.name for s in sections}
    run_rows = [
        _row(r, _link(rec, audit, names, i), lineage, symptoms)
        for i, (r, rec) in enumerate(zip(table, audit.records, strict=True), start=1)
    ]
    headers = [Header("verdict", "worst finding", True), Header("E", "errors", True), Header("W", "warnings", True)]
    headers += [Header("I", "infos", True), *(Header(s, s, True, "symptom") for s in symptoms)]
    headers += [Header("status", "why a run was not fully examined", False)]
    headers += [Header(LINEAGE_TITLES.get(c, c.removeprefix("metrics/")), c, _numeric(table, c)) for c in lineage]
    counts = {v: sum(r["verdict"] == v for r in table) for v in ("error", "warning", "info", "clean")}
    counts["not examined"] = sum(r["verdict"] is None for r in table)
    bars = _bars(table)
    return IndexView(
        root=audit.root,
        version=__version__,
        counts=counts,
        cached=audit.stats.cached,
        headers=headers,
        rows=run_rows,
        bars=bars,
        chart_height=len(bars) * ROW_HEIGHT + 4,
        chart_width=LABEL_WIDTH + BAR_WIDTH + 90,  # room for the count after the longest bar
        label_x=LABEL_WIDTH - 6,
        cross=_cross(audit.findings),
        sections=sections,
    )


def _numeric(table: list[dict[str, Any]], column: str) -> bool:
    values = [r.get(column) for r in table if r.get(column) is not None]
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _sections(audit: BatchAudit) -> list[Section]:
    sections = []
    for i, record in enumerate(audit.records, start=1):
        findings = audit.findings_of(record)
        if findings or record.reason:
            worst = max((f.severity.value for f in findings), key=CELL_ORDER.index, default="clean")
            verdict = worst if record.diagnosed else record.status
            sections.append(Section(f"run-{i}", record.run, verdict, record.reason, findings))
    return sections


def render_index(audit: BatchAudit) -> str:
    """The index page of ``audit`` as HTML text."""
    from summary_doctor.report.jinja import environment

    return environment().get_template("index.html.j2").render(index=build_index(audit))
