"""``--format markdown``: a ticket-ready summary (GitHub and Gitee flavoured).

Built from the same view model as the HTML page, without plots: the verdict,
a findings table (root causes first, each consequence under its cause and
marked with the finding that explains it), the checklist's problems and
not-checkable items (ok ones counted), and the command that writes the HTML
page with the plots. Text from the logs is escaped so a tag like ``a|b``
cannot break a table.
"""

from __future__ import annotations

import re

from summary_doctor.findings import AuditResult
from summary_doctor.report.model import Counts, FindingView, ReportView, RunView, build_report

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def escape(text: object) -> str:
    """Markdown-safe inline text: table pipes, backticks, emphasis and HTML escaped; one line."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def code(text: object) -> str:
    """Inline code that survives backticks and pipes in the text (pipes must be escaped even there)."""
    body = " ".join(str(text).split()).replace("|", "\\|")
    fence = "``" if "`" in body else "`"
    return f"{fence} {body} {fence}" if fence == "``" else f"`{body}`"


def verdict(counts: Counts) -> str:
    icon = {"error": "❌", "warning": "⚠️", "info": "✅", "clean": "✅"}[counts.verdict]
    return f"{icon} **{counts.error} error(s), {counts.warning} warning(s), {counts.info} info**"


def findings_table(findings: list[FindingView]) -> list[str]:
    if not findings:
        return ["No findings: every checkable item passed.", ""]
    lines = ["| severity | id | title | step | explained by |", "|---|---|---|---|---|"]
    for f in findings:
        step = "" if f.step is None else str(f.step)
        name = "&nbsp;&nbsp;" * (f.depth - 1) + "↳ " + code(f.id) if f.depth else code(f.id)
        cause = code(f.caused_by) if f.caused_by else ""
        lines.append(f"| {f.severity} | {name} | {escape(f.title)} | {step} | {cause} |")
    lines.append("")
    for f in findings:
        indent = "  " * f.depth
        lines.append(f"{indent}- {code(f.id)}: {escape(f.hint)}")
    return [*lines, ""]


def checklist(run: RunView) -> list[str]:
    items = [(g.name, i) for g in run.checklist for i in g.items]
    ok = sum(1 for _, i in items if i.status == "ok")
    lines = [f"**Checklist**: {len(items)} items, {ok} ok.", ""]
    problems = [(g, i) for g, i in items if i.status == "problem"]
    unknown = [(g, i) for g, i in items if i.status == "not-checkable"]
    if problems:
        lines += ["| group | problem | item |", "|---|---|---|"]
        lines += [f"| {g} | {code(i.id)} | {escape(i.title)} |" for g, i in problems]
        lines.append("")
    if unknown:
        lines += ["<details><summary>Not checkable from these logs (" + str(len(unknown)) + ")</summary>", ""]
        lines += ["| id | why | to check it |", "|---|---|---|"]
        lines += [f"| {code(i.id)} | {escape(i.reason or '')} | {escape(i.enable or '')} |" for _, i in unknown]
        lines += ["", "</details>", ""]
    return lines


def run_section(run: RunView) -> list[str]:
    problems = "; ".join(escape(p) for p in run.problems) or "none"
    return [
        f"### Run {code(run.name)}",
        "",
        verdict(run.counts),
        "",
        f"- steps: {run.steps}",
        f"- files: {len(run.files)}, last written {run.written or 'unknown'}",
        f"- read problems: {problems}",
        "",
        *(
            ["No findings in this run itself: its checklist problems come from the findings across runs.", ""]
            if not run.findings and any(g.problems for g in run.checklist)
            else findings_table(run.findings)
        ),
        *checklist(run),
    ]


def render_view(view: ReportView) -> str:
    """The Markdown of an already built view."""
    lines = [f"## summary-doctor: {code(view.root)}", "", verdict(view.counts), ""]
    if len(view.runs) > 1:
        lines += ["| run | error | warning | info | steps |", "|---|---|---|---|---|"]
        for run in view.runs:
            c = run.counts
            lines.append(f"| {code(run.name)} | {c.error} | {c.warning} | {c.info} | {run.steps} |")
        lines.append("")
    if view.cross_findings:
        lines += ["### Across runs", "", *findings_table(view.cross_findings)]
        lines += [f"- {code(f.id)} runs: {', '.join(code(r) for r in f.runs)}" for f in view.cross_findings] + [""]
    for run in view.runs:
        lines += run_section(run)
    lines += [
        "The HTML report has an evidence plot for every finding and an overview of the run: "
        f"`summary-doctor {view.root.replace('`', '')} -o report.html`",
        "",
        f"<sub>summary-doctor {view.version}</sub>",
    ]
    return "\n".join(lines) + "\n"


def render(result: AuditResult, *, color: bool = False) -> str:
    """The Markdown report of ``result`` (no plots are drawn)."""
    return render_view(build_report(result, plots=False))
