"""The one Jinja2 environment of the HTML pages (the report and the audit's index)."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined


@cache
def environment() -> Environment:
    """The template environment; autoescape is forced on for every template name, not just ``*.html``."""
    return Environment(
        loader=PackageLoader("summary_doctor.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
