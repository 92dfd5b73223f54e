"""``--format json``: the machine-readable contract (``summary-doctor/1``), for CI jobs and batch audits.

Fields may be added, never renamed or removed. Non-finite numbers are written
as the strings ``"NaN"``, ``"Inf"``, ``"-Inf"`` so the output is strict JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

from summary_doctor import __version__
from summary_doctor.findings import AuditResult, Diagnosis

SCHEMA = "summary-doctor/1"


def _plain(value: Any) -> Any:
    """Strict-JSON values: NaN/Inf as text, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Inf" if value > 0 else "-Inf")
    return value


def _optional_int(value: Any) -> int | None:
    try:
        return None if value is None or value != value else int(value)
    except (TypeError, ValueError):
        return None


def run_json(diagnosis: Diagnosis) -> dict[str, Any]:
    """One entry of ``runs``: files, steps, findings, and the full checklist."""
    run = diagnosis.run
    span = run.steps
    files = [
        {"file": row.file, "records": int(row.records), "bytes": int(row.bytes), "problems": list(row.problems)}
        for row in run.files.itertuples()
    ]
    return {
        "run": run.name,
        "files": files,
        "steps": {"first": _optional_int(span[0]) if span else None, "last": _optional_int(span[1]) if span else None},
        "findings": [finding.to_json() for finding in diagnosis.findings],
        "checklist": [entry.to_json() for entry in diagnosis.checklist],
    }


def document(result: AuditResult) -> dict[str, Any]:
    """The whole contract as plain Python data."""
    return _plain(
        {
            "schema": SCHEMA,
            "version": __version__,
            "root": result.root,
            "runs": [run_json(d) for d in result.diagnoses],
            "findings": [finding.to_json() for finding in result.findings],
        }
    )


def render(result: AuditResult, *, color: bool = False) -> str:
    """The JSON document, indented, with a final newline (``color`` is ignored)."""
    return json.dumps(document(result), indent=2, allow_nan=False) + "\n"
