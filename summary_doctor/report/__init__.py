"""Renderers: an :class:`~summary_doctor.findings.AuditResult` into text, JSON, Markdown or HTML.

Each format lives in its own module with a ``render(result, *, color=False) -> str``
function; they are imported lazily so ``--format json`` never loads matplotlib.
"""

from __future__ import annotations

from importlib import import_module

from summary_doctor.findings import AuditResult

FORMATS: dict[str, str] = {
    "text": "summary_doctor.report.text",
    "json": "summary_doctor.report.json",
    "markdown": "summary_doctor.report.markdown",
    "html": "summary_doctor.report.html",
}
SUFFIXES: dict[str, str] = {
    ".txt": "text",
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
}


def render(fmt: str, result: AuditResult, *, color: bool = False) -> str:
    """Render ``result`` in format ``fmt`` (one of :data:`FORMATS`)."""
    module = import_module(FORMATS[fmt])
    return module.render(result, color=color)
