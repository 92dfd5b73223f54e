"""The batch audit as text (a table for the terminal), JSON (the contract plus the table), CSV or HTML.

The JSON is the report's contract (``summary-doctor/1``: ``runs`` with each
run's files, steps, findings and full checklist; cross-run ``findings``) with
fields added: each run's ``status`` and ``reason``, the ``table`` (one object
per run, every column) and ``audit`` (counts). It is written one run per
line, so it stays fast to write and easy to grep for a thousand runs.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from typing import Any

from summary_doctor import __version__
from summary_doctor.records import BatchAudit
from summary_doctor.report.json import SCHEMA, plain
from summary_doctor.symptoms import SYMPTOM_IDS
from summary_doctor.table import rows, to_csv

_COLORS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m", "clean": "\033[32m"}
_RESET = "\033[0m"


def use_color(choice: str, to_file: bool) -> bool:
    if choice != "auto":
        return choice == "always"
    return not to_file and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:  # a NaN or Inf somewhere: written as text, as everywhere in the contract
        return json.dumps(plain(value), allow_nan=False)


def render_json(audit: BatchAudit) -> str:
    """The JSON document (see the module docstring)."""
    runs = []
    for record in audit.records:
        entry = record.contract_json()
        entry["status"], entry["reason"] = record.status, record.reason
        runs.append(_dumps(entry))
    stats = audit.stats
    head = {"schema": SCHEMA, "version": __version__, "root": audit.root}
    counts = {"runs": stats.runs, "cached": stats.cached, "examined": stats.diagnosed, "jobs": stats.jobs}
    parts = [_dumps(head)[:-1], f'"audit": {_dumps(counts)}']
    parts.append('"runs": [\n  ' + ",\n  ".join(runs) + "\n]" if runs else '"runs": []')
    parts.append('"findings": ' + _dumps([f.to_json() for f in audit.findings]))
    table = [_dumps(row) for row in rows(audit)]
    parts.append('"table": [\n  ' + ",\n  ".join(table) + "\n]" if table else '"table": []')
    return ",\n".join(parts) + "\n}\n"


def _problems(row: dict[str, Any]) -> str:
    ids = [k for k in SYMPTOM_IDS if row[k] in ("error", "warning")]
    return ", ".join(ids) if row["status"] in ("diagnosed", "incomplete") else row["reason"]


def render_text(audit: BatchAudit, *, color: bool = False) -> str:
    """A line per run (verdict, counts, the ids with a warning or error), then what stands out."""
    table = rows(audit)
    width = min(60, max([len("run"), *(len(r["run"]) for r in table)]))
    lines = [f"{'run':<{width}}  {'verdict':<10} {'E':>3} {'W':>3} {'I':>3}  problems"]
    for row in table:
        verdict = row["verdict"] or row["status"]
        shown = f"{verdict:<10}"
        if color and verdict in _COLORS:
            shown = f"{_COLORS[verdict]}{shown}{_RESET}"
        counts = f"{row['errors']:>3} {row['warnings']:>3} {row['infos']:>3}"
        lines.append(f"{row['run']:<{width}}  {shown} {counts}  {_problems(row)}")
    return "\n".join([*lines, "", *summary_lines(audit, table)]) + "\n"


def summary_lines(audit: BatchAudit, table: list[dict[str, Any]]) -> list[str]:
    """How many runs per verdict and status, the most frequent symptoms, the cross-run findings."""
    verdicts = Counter(r["verdict"] for r in table if r["verdict"])
    statuses = Counter(r["status"] for r in table if r["status"] != "diagnosed")
    head = f"{len(table)} run(s): " + ", ".join(f"{verdicts[v]} {v}" for v in ("error", "warning", "info", "clean"))
    if statuses:
        head += "; " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    lines = [head, f"({audit.stats.cached} from the cache, {audit.stats.diagnosed} examined)"]
    frequent = symptom_counts(table)
    if frequent:
        top = sorted(frequent.items(), key=lambda item: -sum(item[1].values()))[:8]
        lines.append("most frequent: " + ", ".join(f"{i} ({sum(c.values())} run(s))" for i, c in top))
    for finding in audit.findings:
        lines.append(f"across runs: {finding.severity.value.upper()} {finding.id}: {finding.title}")
    return lines


def symptom_counts(table: list[dict[str, Any]]) -> dict[str, Counter]:
    """Per symptom id with any finding: how many runs have it at each severity."""
    counts: dict[str, Counter] = {}
    for row in table:
        for key in SYMPTOM_IDS:
            if row[key] in ("error", "warning", "info"):
                counts.setdefault(key, Counter())[row[key]] += 1
    return counts


def render(fmt: str, audit: BatchAudit, *, color: bool = False) -> str:
    """The audit in ``fmt``: text, json, csv or html (the index page)."""
    if fmt == "json":
        return render_json(audit)
    if fmt == "csv":
        return to_csv(audit)
    if fmt == "html":
        from summary_doctor.report.index import render_index

        return render_index(audit)
    return render_text(audit, color=color)
