"""The audit table: one row per run, its worst severity per symptom id, its counts and its lineage.

Rows are plain dicts (the JSON, CSV and the index page use them without
pandas); :func:`to_frame` makes the DataFrame of the Python API, with the
symptom and verdict columns as ordered categoricals so that sorting puts the
worst first. Parquet goes through pyarrow (an optional extra).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from summary_doctor.findings import Finding, Status
from summary_doctor.records import BatchAudit, RunRecord
from summary_doctor.symptoms import SYMPTOM_IDS

if TYPE_CHECKING:
    import pandas as pd

#: A symptom cell, from least to most severe.
CELL_ORDER = ("not-checkable", "ok", "info", "warning", "error")
VERDICT_ORDER = ("clean", "info", "warning", "error")
BASE_COLUMNS = (
    "run",
    "status",
    "reason",
    "verdict",
    "errors",
    "warnings",
    "infos",
    "first_step",
    "last_step",
    "files",
    "bytes",
    "read_problems",
)
LINEAGE_COLUMNS = (
    "learning_rate",
    "batch_size",
    "optimizer",
    "epochs",
    "loss_function",
    "dataset_size",
    "network",
    "final_loss",
    "final_eval_loss",
    "final_eval_accuracy",
)


def _is_internal(finding: Finding) -> bool:
    return "internal_error" in finding.evidence


def symptom_cells(record: RunRecord, findings: list[Finding]) -> dict[str, str]:
    """Per id: the worst severity of its findings, else the checklist status (``ok``, ``not-checkable``)."""
    cells = {e.id: e.status.value for e in record.checklist}
    worst: dict[str, str] = {}
    for finding in findings:
        if _is_internal(finding):
            continue
        severity = finding.severity.value
        if CELL_ORDER.index(severity) > CELL_ORDER.index(worst.get(finding.id, "ok")):
            worst[finding.id] = severity
    for symptom_id in SYMPTOM_IDS:
        cell = worst.get(symptom_id) or cells.get(symptom_id, Status.NOT_CHECKABLE.value)
        cells[symptom_id] = "warning" if cell == Status.PROBLEM.value else cell  # a problem is at least a warning
    return {symptom_id: cells[symptom_id] for symptom_id in SYMPTOM_IDS}


def _verdict(record: RunRecord, findings: list[Finding]) -> str | None:
    if not record.diagnosed:
        return None
    return max((f.severity.value for f in findings), key=CELL_ORDER.index, default="clean")


def row(record: RunRecord, findings: list[Finding]) -> dict[str, Any]:
    """One run's row (``findings``: its own and the cross-run findings naming it)."""
    first, last = record.steps if record.steps else (None, None)
    counts = {s: sum(f.severity.value == s for f in findings) for s in ("error", "warning", "info")}
    data: dict[str, Any] = {
        "run": record.run,
        "status": record.status,
        "reason": record.reason,
        "verdict": _verdict(record, findings),
        "errors": counts["error"],
        "warnings": counts["warning"],
        "infos": counts["info"],
        "first_step": first,
        "last_step": last,
        "files": len(record.files),
        "bytes": sum(f["bytes"] for f in record.files),
        "read_problems": sum(len(f["problems"]) for f in record.files),
    }
    data |= {column: record.facts.get(column) for column in LINEAGE_COLUMNS}
    data |= {k: v for k, v in record.facts.items() if k.startswith("metrics/")}
    return data | symptom_cells(record, findings)


def columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Base, lineage, every metric any run has (sorted), then the symptom ids in checklist order."""
    metrics = sorted({k for r in rows for k in r if k.startswith("metrics/")})
    return [*BASE_COLUMNS, *LINEAGE_COLUMNS, *metrics, *SYMPTOM_IDS]


def rows(audit: BatchAudit) -> list[dict[str, Any]]:
    """Every run's row with every column (None where a run has no value), in path order."""
    table = [row(r, audit.findings_of(r)) for r in audit.records]
    names = columns(table)
    return [{name: r.get(name) for name in names} for r in table]


def to_frame(audit: BatchAudit) -> pd.DataFrame:
    """The table as a DataFrame: symptom cells and verdict are ordered categoricals (worst last)."""
    import pandas as pd

    data = rows(audit)
    frame = pd.DataFrame(data, columns=columns(data))
    for symptom_id in SYMPTOM_IDS:
        frame[symptom_id] = pd.Categorical(frame[symptom_id], categories=CELL_ORDER, ordered=True)
    frame["verdict"] = pd.Categorical(frame["verdict"], categories=VERDICT_ORDER, ordered=True)
    return frame


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return "" if value is None else value


def to_csv(audit: BatchAudit) -> str:
    """The table as CSV text (a header line; empty cell for no value, ``NaN`` for a NaN)."""
    data = rows(audit)
    names = columns(data)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([_csv_value(r[name]) for name in names] for r in data)
    return out.getvalue()


def write_parquet(audit: BatchAudit, path: str) -> None:
    """The table as a Parquet file, through pyarrow (``pip install 'summary-doctor[parquet]'``)."""
    from summary_doctor.errors import SummaryDoctorError

    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:  # absent, or too new for this numpy (pyarrow 26 needs numpy 2)
        raise SummaryDoctorError(
            f"--format parquet needs a working pyarrow ({error}): pip install 'summary-doctor[parquet]' "
            "(beside numpy < 2: 'pyarrow<26')"
        ) from None
    data = rows(audit)
    names = columns(data)
    arrays = {}
    for name in names:
        values = [r[name] for r in data]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds (a metric that is text in one run)
            arrays[name] = pa.array([None if v is None else str(v) for v in values])
    pq.write_table(pa.table(arrays), path)
