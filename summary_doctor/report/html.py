"""``--format html``: one self-contained page to attach to a bug ticket.

Everything is inline (CSS, the optional sort script, PNGs as ``data:`` URIs)
so the page works offline and in a mail client. Jinja2 autoescaping is on for
every template: tag names, scopes and paths come from users' code.
"""

from __future__ import annotations

from summary_doctor.findings import AuditResult
from summary_doctor.report.jinja import environment
from summary_doctor.report.model import ReportView, build_report


def render_view(view: ReportView) -> str:
    """Lay out an already built view (tests build it once and check both)."""
    return environment().get_template("report.html.j2").render(report=view)


def render(result: AuditResult, *, color: bool = False) -> str:
    """The HTML report of ``result``; ``color`` is ignored (the page has its own)."""
    return render_view(build_report(result))
