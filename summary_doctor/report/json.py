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
from summary_doctor.records import record_of

SCHEMA = "summary-doctor/1"


def plain(value: Any) -> Any:
    """Strict-JSON values: NaN/Inf as text, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Inf" if value > 0 else "-Inf")
    return value


def run_json(diagnosis: Diagnosis) -> dict[str, Any]:
    """One entry of ``runs``: files, steps, findings, and the full checklist."""
    return record_of(diagnosis).contract_json()


def document(result: AuditResult) -> dict[str, Any]:
    """The whole contract as plain Python data."""
    return plain(
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
