"""``--format text``: findings root cause first with their numbers, then a compact checklist summary.

Plain text that reads well in a terminal and in a CI log; ``color=True``
only adds ANSI colours to the severity labels. A finding explained by
another (``caused_by``) is listed under it, indented, keeping its own id and
severity.
"""

from __future__ import annotations

from summary_doctor.causes import explained_order
from summary_doctor.findings import AuditResult, Diagnosis, Finding, Severity, Status
from summary_doctor.report.inventory import inventory_lines

_COLORS = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.INFO: "\033[36m"}
_RESET = "\033[0m"


def _label(severity: Severity, color: bool) -> str:
    text = severity.value.upper()
    return f"{_COLORS[severity]}{text}{_RESET}" if color else text


def finding_lines(finding: Finding, *, color: bool = False, depth: int = 0) -> list[str]:
    """A finding: severity, id and title, then its message and hint (and its cause), indented by ``depth``."""
    step = f" (step {finding.step})" if finding.step is not None else ""
    pad = "    " * depth
    lines = [
        f"  {pad}{'└ ' if depth else ''}{_label(finding.severity, color)} {finding.id}: {finding.title}{step}",
        f"      {pad}{finding.message}",
    ]
    if finding.caused_by:
        lines.append(f"      {pad}explained by {finding.caused_by} (above): fix that first")
    return [*lines, f"      {pad}fix: {finding.hint}"]


def checklist_lines(diagnosis: Diagnosis) -> list[str]:
    """Counts per status, then each not-checkable id with what to record."""
    counts = {status: sum(e.status is status for e in diagnosis.checklist) for status in Status}
    lines = [
        f"  checklist: {counts[Status.OK]} ok, {counts[Status.PROBLEM]} problem, "
        f"{counts[Status.NOT_CHECKABLE]} not checkable"
    ]
    unchecked = [e for e in diagnosis.checklist if e.status is Status.NOT_CHECKABLE]
    by_reason: dict[tuple[str | None, str | None], list[str]] = {}
    for entry in unchecked:
        by_reason.setdefault((entry.reason, entry.enable), []).append(entry.id)
    for (reason, enable), ids in by_reason.items():
        if len(ids) > 1:
            lines.append(f"    - {reason}: {', '.join(ids)}")
        else:
            lines.append(f"    - {ids[0]}: {reason}; to enable: {enable}")
    return lines


def header_line(diagnosis: Diagnosis, *, color: bool = False) -> str:
    """The run at a glance: name, steps, files and the count of findings per severity."""
    run = diagnosis.run
    span = run.steps
    steps = f"steps {span[0]}..{span[1]}" if span else "no steps"
    counts = ", ".join(
        _label(severity, color) + f" {sum(f.severity is severity for f in diagnosis.findings)}" for severity in Severity
    )
    return f"run {run.name}: {steps}, {len(run.files)} file(s); {counts}"


def findings_table(findings: list[Finding], *, color: bool = False) -> list[str]:
    """One line per finding, root causes first and what each explains indented under it: severity, step, id, title."""
    rows = explained_order(findings)
    width = max(len(f.id) + 2 * depth + (2 if depth else 0) for f, depth in rows)
    lines = []
    for finding, depth in rows:
        step = "" if finding.step is None else str(finding.step)
        label = _label(finding.severity, color) + " " * (7 - len(finding.severity.value))
        name = "  " * depth + ("└ " if depth else "") + finding.id
        lines.append(f"  {label} {step:>7}  {name:<{width}}  {finding.title}")
    return lines


def diagnosis_lines(diagnosis: Diagnosis, *, color: bool = False) -> list[str]:
    """One run: a header, a table of findings, their details by severity, then the checklist summary."""
    lines = [header_line(diagnosis, color=color), *inventory_lines(diagnosis.run)[1:], ""]
    if not diagnosis.findings:
        lines.append("  no findings")
    else:
        lines += [*findings_table(diagnosis.findings, color=color), ""]
    for finding, depth in explained_order(diagnosis.findings):
        lines.extend(finding_lines(finding, color=color, depth=depth))
    problems = diagnosis.run.problems
    lines.extend(f"  read problem: {problem}" for problem in problems)
    return lines + checklist_lines(diagnosis)


def summary_table(result: AuditResult) -> list[str]:
    """Several runs: one row each (run, errors, warnings, worst finding)."""
    rows = [("run", "errors", "warnings", "first cause")]
    for d in result.diagnoses:
        errors = sum(f.severity is Severity.ERROR for f in d.findings)
        warnings = sum(f.severity is Severity.WARNING for f in d.findings)
        roots = [f for f, depth in explained_order(d.findings) if depth == 0 and f.severity.rank >= 1]
        worst = next((f"{f.id}: {f.title}" for f in roots), "-")
        rows.append((d.run.name, str(errors), str(warnings), worst))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}" for r in rows]


def render(result: AuditResult, *, color: bool = False) -> str:
    """The text report of ``result``."""
    lines: list[str] = []
    if len(result.diagnoses) > 1:
        lines += [*summary_table(result), ""]
    for diagnosis in result.diagnoses:
        lines += [*diagnosis_lines(diagnosis, color=color), ""]
    if result.findings:
        lines.append(f"across runs: {len(result.findings)} finding(s)")
        for finding in result.findings:
            lines.extend(finding_lines(finding, color=color))
            lines.append(f"      runs: {', '.join(finding.runs)}")
    lines.append(f"plots: summary-doctor {result.root} -o report.html")
    return "\n".join(lines).rstrip() + "\n"
