"""What an audit keeps of each run: a small, picklable, JSON-safe record, and the audit of many runs.

A :class:`RunRecord` holds everything the table, the JSON contract and the
index page say about a run, without its frames: the cache stores it, worker
processes and cluster workers send it back. Nothing here imports pandas.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from summary_doctor.findings import ChecklistEntry, Finding, Severity, Status
from summary_doctor.symptoms import SYMPTOM_IDS

if TYPE_CHECKING:
    from summary_doctor.findings import Diagnosis

#: A record's status: diagnosed; incomplete (a rule or the digest failed, the rest ran);
#: unreadable (nothing could be read); failed (reading or diagnosing stopped on an error).
STATUSES = ("diagnosed", "incomplete", "unreadable", "failed")


def finding_data(finding: Finding) -> dict[str, Any]:
    """Every field of a finding as plain data (the cache's form; the contract's is ``to_json``)."""
    data = {f.name: getattr(finding, f.name) for f in dataclasses.fields(Finding)}
    data["severity"] = finding.severity.value
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def finding_from_data(data: dict[str, Any]) -> Finding:
    """The inverse of :func:`finding_data`; fields a later version added are kept, unknown keys ignored."""
    values = {}
    for f in dataclasses.fields(Finding):
        if f.name in data:
            value = data[f.name]
            values[f.name] = tuple(value) if isinstance(f.default, tuple) and isinstance(value, list) else value
    values["severity"] = Severity(values["severity"])
    return Finding(**values)


def entry_data(entry: ChecklistEntry) -> dict[str, Any]:
    return {"id": entry.id, "status": entry.status.value, "reason": entry.reason, "enable": entry.enable}


def entry_from_data(data: dict[str, Any]) -> ChecklistEntry:
    return ChecklistEntry(data["id"], Status(data["status"]), data.get("reason"), data.get("enable"))


@dataclass
class RunRecord:
    """One run as an audit keeps it: files, steps, findings, checklist, lineage facts, digest.

    ``facts`` are the table's lineage columns (learning rate, batch size, final
    loss...); ``digest`` is what cross-run checks need; ``seconds`` the CPU
    seconds of reading, the rules and the report; ``code`` the fingerprint of
    the code that made it.
    """

    run: str
    path: str
    status: str = "diagnosed"
    reason: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    steps: tuple[int | None, int | None] | None = None
    findings: list[Finding] = field(default_factory=list)
    checklist: list[ChecklistEntry] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    digest: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    code: str = ""

    @property
    def diagnosed(self) -> bool:
        """True when the rules ran (completely or not)."""
        return self.status in ("diagnosed", "incomplete")

    def renamed(self, name: str) -> RunRecord:
        """The same record under another name (the same run audited from another root)."""
        if name == self.run:
            return self
        findings = [dataclasses.replace(f, run=name) if f.run == self.run else f for f in self.findings]
        return dataclasses.replace(self, run=name, findings=findings)

    def to_data(self) -> dict[str, Any]:
        """Everything, as plain data for the cache (NaN stays a float)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["steps"] = list(self.steps) if self.steps else None
        data["findings"] = [finding_data(f) for f in self.findings]
        data["checklist"] = [entry_data(e) for e in self.checklist]
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RunRecord:
        """The inverse of :meth:`to_data`."""
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["steps"] = tuple(data["steps"]) if data.get("steps") else None
        values["findings"] = [finding_from_data(f) for f in data.get("findings", [])]
        values["checklist"] = [entry_from_data(e) for e in data.get("checklist", [])]
        return cls(**values)

    def contract_json(self) -> dict[str, Any]:
        """The run's entry of ``runs`` in the JSON contract (``shared/json-output.md``)."""
        first, last = self.steps if self.steps else (None, None)
        return {
            "run": self.run,
            "files": [
                {"file": f["file"], "records": f["records"], "bytes": f["bytes"], "problems": list(f["problems"])}
                for f in self.files
            ],
            "steps": {"first": first, "last": last},
            "findings": [f.to_json() for f in self.findings],
            "checklist": [e.to_json() for e in self.checklist],
        }


def _optional_int(value: Any) -> int | None:
    try:
        return None if value is None or value != value else int(value)
    except (TypeError, ValueError):
        return None


def file_entries(diagnosis: Diagnosis) -> list[dict[str, Any]]:
    """The run's files frame as plain rows."""
    return [
        {
            "file": str(row.file),
            "kind": str(row.kind),
            "records": int(row.records),
            "bytes": int(row.bytes),
            "problems": [str(p) for p in row.problems],
            "first_step": _optional_int(row.first_step),
            "last_step": _optional_int(row.last_step),
        }
        for row in diagnosis.run.files.itertuples()
    ]


def record_of(diagnosis: Diagnosis) -> RunRecord:
    """The record of a diagnosis (``facts``, ``digest`` and ``seconds`` are left to the caller)."""
    run = diagnosis.run
    span = run.steps
    return RunRecord(
        run=run.name,
        path=str(run.path),
        files=file_entries(diagnosis),
        steps=(_optional_int(span[0]), _optional_int(span[1])) if span else None,
        findings=list(diagnosis.findings),
        checklist=list(diagnosis.checklist),
    )


def unreadable_checklist(reason: str) -> list[ChecklistEntry]:
    """Every id not checkable, because the run itself could not be read or diagnosed."""
    enable = "make the run readable (see the reason), or move it out of the audited folder"
    return [ChecklistEntry(i, Status.NOT_CHECKABLE, reason, enable) for i in SYMPTOM_IDS]


@dataclass
class AuditStats:
    """How an audit went: how many runs came from the cache, and where the time went (seconds)."""

    runs: int = 0
    cached: int = 0
    diagnosed: int = 0
    jobs: int = 1
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class BatchAudit:
    """The audit of a folder of runs: one record per run, in path order, and the cross-run findings.

    ``reports`` maps a run's name to its HTML report, relative to the index
    page, when reports were written beside it.
    """

    root: str
    records: list[RunRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    stats: AuditStats = field(default_factory=AuditStats)
    reports: dict[str, str] = field(default_factory=dict)

    def findings_of(self, record: RunRecord) -> list[Finding]:
        """The run's own findings, then the cross-run findings that name it."""
        return record.findings + [f for f in self.findings if record.run in f.runs]
