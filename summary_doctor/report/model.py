"""The report's view model: plain dataclasses between findings and templates.

Templates only lay these out; every decision (order, counts, anchors, number
formatting, what is capped) is made here, so tests check the content without
parsing HTML and the Markdown and HTML views say the same thing.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from summary_doctor.causes import explained_order
from summary_doctor.findings import AuditResult, ChecklistEntry, Diagnosis, Finding, Status
from summary_doctor.reader.run import Run
from summary_doctor.symptoms import GROUPS, SYMPTOMS

SEVERITIES = ("error", "warning", "info")


@dataclass
class Counts:
    """Findings per severity."""

    error: int = 0
    warning: int = 0
    info: int = 0

    def add(self, severity: str) -> None:
        setattr(self, severity, getattr(self, severity) + 1)

    @property
    def verdict(self) -> str:
        """The worst severity present, or ``clean``: also the CSS class of the verdict banner."""
        return next((s for s in SEVERITIES if getattr(self, s)), "clean")


@dataclass
class Plot:
    """One image: a title and its PNG as a ``data:`` URI (None when plots are off)."""

    title: str
    uri: str | None = None


@dataclass
class FindingView:
    """One finding as shown: anchor, texts, the numbers as rows, its evidence plot.

    ``depth`` > 0 for a consequence shown under the finding that explains it
    (``caused_by``, linked by ``cause_anchor``); ``explains`` lists the
    (id, anchor) of the consequences shown under this one.
    """

    anchor: str
    id: str
    severity: str
    title: str
    message: str
    hint: str
    run: str
    step: int | None
    tags: list[str]
    evidence: list[tuple[str, str]]
    plot: Plot
    runs: list[str] = field(default_factory=list)
    caused_by: str | None = None
    cause_anchor: str | None = None
    depth: int = 0
    explains: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ChecklistItem:
    """One symptom's verdict for one run, with links to the findings behind a problem."""

    id: str
    title: str
    status: str
    reason: str | None = None
    enable: str | None = None
    anchors: list[str] = field(default_factory=list)


@dataclass
class ChecklistGroup:
    """One group of the MindSpore checklist, in its order."""

    name: str
    items: list[ChecklistItem]
    problems: int = 0
    ok: int = 0
    not_checkable: int = 0


@dataclass
class FileRow:
    """One file of the run, with what reading it found."""

    file: str
    kind: str
    bytes: int
    records: int
    steps: str
    problems: list[str]


@dataclass
class Overview:
    """What the run recorded: curves, distributions, lineage; capped plots say what they left out."""

    scalars: list[Plot] = field(default_factory=list)
    scalars_note: str | None = None
    histograms: list[Plot] = field(default_factory=list)
    histograms_note: str | None = None
    hyperparameters: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[tuple[str, str]] = field(default_factory=list)
    dataset: list[tuple[int, str, str, str]] = field(default_factory=list)


@dataclass
class RunView:
    """Everything the report shows about one run."""

    anchor: str
    name: str
    path: str
    steps: str
    written: str | None
    counts: Counts
    files: list[FileRow]
    problems: list[str]
    findings: list[FindingView]
    checklist: list[ChecklistGroup]
    overview: Overview


@dataclass
class ReportView:
    """The whole report: a summary over runs, each run, and the findings across runs."""

    root: str
    counts: Counts
    runs: list[RunView]
    cross_findings: list[FindingView]
    version: str

    def to_json(self) -> dict[str, Any]:
        """The view as JSON-safe data (for golden files and debugging)."""
        return asdict(self)


def slug(text: str) -> str:
    """A safe fragment for an HTML id: lower-case letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def format_value(value: Any, limit: int = 160) -> str:
    """Evidence values for people: 4 significant digits, short lists and mappings."""
    if isinstance(value, bool) or value is None:
        text = str(value)
    elif isinstance(value, (int, np.integer)):
        text = f"{int(value):,}"
    elif isinstance(value, (float, np.floating)):
        text = f"{float(value):.4g}"
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = ", ".join(format_value(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def written_at(run: Run) -> str | None:
    """When the run's last record was written (its wall time), in UTC."""
    times = [run.current(kind)["wall_time"] for kind in ("scalars", "histograms", "tensors", "images")]
    latest = max((float(t.max()) for t in times if not t.empty), default=None)
    if latest is None or not np.isfinite(latest):
        return None
    return datetime.fromtimestamp(latest, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def steps_text(run: Run) -> str:
    span = run.steps
    return "no step data" if span is None else f"{span[0]:,} … {span[1]:,}"


def file_rows(run: Run) -> list[FileRow]:
    rows = []
    for row in run.files.itertuples():
        steps = "" if pd.isna(row.first_step) else f"{int(row.first_step)}…{int(row.last_step)}"
        rows.append(FileRow(row.file, row.kind, int(row.bytes), int(row.records), steps, list(row.problems)))
    return rows


def ordered(findings: list[Finding]) -> list[Finding]:
    """Most severe first; the rules' own order within a severity."""
    return sorted(findings, key=lambda f: -f.severity.rank)


def checklist_groups(entries: list[ChecklistEntry], findings: list[FindingView]) -> list[ChecklistGroup]:
    """The checklist in the MindSpore order; an id with a finding is a problem whatever the entry says."""
    by_id = {e.id: e for e in entries}
    anchors: dict[str, list[str]] = {}
    for view in findings:
        anchors.setdefault(view.id, []).append(view.anchor)
    groups = {name: ChecklistGroup(name, []) for name in GROUPS}
    for symptom in SYMPTOMS:
        entry = by_id.get(symptom.id)
        if symptom.id in anchors:
            status = Status.PROBLEM.value
        elif entry is None:
            status = Status.NOT_CHECKABLE.value
        else:
            status = entry.status.value
        item = ChecklistItem(symptom.id, symptom.title, status, anchors=anchors.get(symptom.id, []))
        if status == Status.NOT_CHECKABLE.value:
            item.reason = (entry.reason if entry else None) or "not evaluated"
            item.enable = entry.enable if entry else None
        group = groups[symptom.group]
        group.items.append(item)
        attribute = {"problem": "problems", "ok": "ok"}.get(status, "not_checkable")
        setattr(group, attribute, getattr(group, attribute) + 1)
    return list(groups.values())


def finding_view(finding: Finding, anchor: str, plot: Plot, depth: int = 0) -> FindingView:
    return FindingView(
        anchor=anchor,
        id=finding.id,
        severity=finding.severity.value,
        title=finding.title,
        message=finding.message,
        hint=finding.hint,
        run=finding.run,
        step=finding.step,
        tags=list(finding.tags),
        evidence=[(str(k), format_value(v)) for k, v in finding.evidence.items()],
        plot=plot,
        runs=list(finding.runs),
        caused_by=finding.caused_by,
        depth=depth,
    )


def link_views(views: list[FindingView]) -> list[FindingView]:
    """Point each consequence at its cause's view and each cause at its consequences (views in explained order)."""
    for i, view in enumerate(views):
        if view.depth == 0 or view.caused_by is None:
            continue
        cause = next((v for v in reversed(views[:i]) if v.id == view.caused_by and v.depth < view.depth), None)
        if cause is not None:
            view.cause_anchor = cause.anchor
            cause.explains.append((view.id, view.anchor))
    return views


MAX_SCALAR_PLOTS = 24
MAX_HISTOGRAM_PLOTS = 24


def _capped(tags: list[str], limit: int, what: str) -> tuple[list[str], str | None]:
    if len(tags) <= limit:
        return tags, None
    return tags[:limit], f"{len(tags) - limit} more {what} not drawn (showing the first {limit})."


def overview(run: Run, first_tags: list[str], *, plots: bool) -> Overview:
    """Small multiples of every scalar, one heatmap per histogram tag (the findings' tags first), lineage."""
    from summary_doctor.report import plots as drawing

    scalars, scalars_note = _capped(list(dict.fromkeys(run.current("scalars")["tag"])), MAX_SCALAR_PLOTS, "scalars")
    hist_tags = list(dict.fromkeys(run.current("histograms")["tag"]))
    hist_tags = [t for t in first_tags if t in hist_tags] + [t for t in hist_tags if t not in first_tags]
    hist_tags = list(dict.fromkeys(hist_tags))
    histograms, histograms_note = _capped(hist_tags, MAX_HISTOGRAM_PLOTS, "histogram tags")

    def plot(draw: Any, tag: str) -> Plot:
        return Plot(tag, drawing.data_uri(drawing.overview_png(draw, run, tag)) if plots else None)

    lineage = run.lineage
    return Overview(
        scalars=[plot(drawing.curves.small_multiple, t) for t in scalars],
        scalars_note=scalars_note,
        histograms=[plot(drawing.histograms.overview_heatmap, t) for t in histograms],
        histograms_note=histograms_note,
        hyperparameters=[(str(k), format_value(v)) for k, v in lineage.hyperparameters.items()],
        metrics=[(str(k), format_value(v)) for k, v in lineage.metrics.items()],
        dataset=[
            (int(op.depth), str(op.role), str(op.op_type), _op_params(op.params))
            for op in lineage.dataset_ops.itertuples()
        ],
    )


def _op_params(params: Any) -> str:
    if not isinstance(params, dict):
        return format_value(params)
    # sorted: the reader's order of these keys changes from one read to the next
    return format_value({k: params[k] for k in sorted(params) if k != "op_type"}, limit=240)


def _plot(run: Run | None, finding: Finding, *, plots: bool) -> Plot:
    title = f"evidence for {finding.id}"
    if not plots or run is None:
        return Plot(title)
    from summary_doctor.report import plots as drawing

    return Plot(title, drawing.data_uri(drawing.finding_png(run, finding)))


def run_view(diagnosis: Diagnosis, index: int, *, plots: bool = True) -> RunView:
    """The view of one diagnosed run: findings root cause first, each consequence under its cause."""
    run = diagnosis.run
    anchor = f"run-{index}"
    counts = Counts()
    findings = []
    for k, (finding, depth) in enumerate(explained_order(diagnosis.findings), start=1):
        counts.add(finding.severity.value)
        plot = _plot(run, finding, plots=plots)
        findings.append(finding_view(finding, f"{anchor}-{slug(finding.id)}-{k}", plot, depth))
    link_views(findings)
    tags = [t for f in findings for t in f.tags]
    return RunView(
        anchor=anchor,
        name=run.name,
        path=str(run.path),
        steps=steps_text(run),
        written=written_at(run),
        counts=counts,
        files=file_rows(run),
        problems=run.problems,
        findings=findings,
        checklist=checklist_groups(diagnosis.checklist, findings),
        overview=overview(run, tags, plots=plots),
    )


def _link_cross_findings(runs: list[RunView], cross: list[FindingView]) -> None:
    """A run's checklist item points to the cross-run findings that name the run."""
    for view in runs:
        for item in (i for g in view.checklist for i in g.items):
            item.anchors += [f.anchor for f in cross if f.id == item.id and view.name in f.runs]


def build_report(result: AuditResult, *, plots: bool = True) -> ReportView:
    """The view of a whole audit; ``plots=False`` skips drawing (fast, for tests of the content)."""
    from summary_doctor import __version__

    with _drawing_style(plots):  # one style context for every plot: entering it copies matplotlib's settings
        return _report(result, plots=plots, version=__version__)


def _drawing_style(plots: bool) -> AbstractContextManager[Any]:
    if not plots:
        return nullcontext()
    from summary_doctor.report.plots.style import styled

    return styled()


def _report(result: AuditResult, *, plots: bool, version: str) -> ReportView:
    runs = [run_view(d, i, plots=plots) for i, d in enumerate(result.diagnoses, start=1)]
    by_name = {d.run.name: d.run for d in result.diagnoses}
    cross = []
    for k, finding in enumerate(ordered(result.findings), start=1):
        run = next((by_name[r] for r in (*finding.runs, finding.run) if r in by_name), None)
        cross.append(finding_view(finding, f"across-{slug(finding.id)}-{k}", _plot(run, finding, plots=plots)))
    _link_cross_findings(runs, cross)
    counts = Counts()
    for severity in [f.severity for r in runs for f in r.findings] + [f.severity for f in cross]:
        counts.add(severity)
    return ReportView(root=result.root, counts=counts, runs=runs, cross_findings=cross, version=version)
