"""Findings, checklist entries and diagnoses: the plain data between rules and reports.

Rules produce :class:`Finding` objects; the engine adds a checklist entry per
symptom id; reports render both. Nothing here knows how it will be drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # an audit served from its cache reads no run: findings stay free of pandas
    from summary_doctor.reader.run import Run


class Severity(str, Enum):
    """How bad a finding is. ``info`` is a fact worth knowing, not a problem."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """2 for error, 1 for warning, 0 for info: for sorting and ``--fail-on``."""
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Status(str, Enum):
    """Checklist status of one symptom id for one run."""

    PROBLEM = "problem"
    OK = "ok"
    NOT_CHECKABLE = "not-checkable"


@dataclass(frozen=True)
class Finding:
    """One detected symptom, with the numbers behind it and a fix hint.

    ``evidence`` holds JSON-safe values only (numbers, strings, lists of them);
    plots are drawn later by the report from the finding and the run.
    ``caused_by`` is the id of the finding that explains this one (set after
    all rules ran, on evidence: see ``summary_doctor.causes``), else None.
    """

    id: str
    severity: Severity
    title: str
    message: str
    hint: str
    run: str = "."
    tags: tuple[str, ...] = ()
    step: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    runs: tuple[str, ...] = ()
    caused_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The finding as in the JSON contract (``runs`` only for cross-run findings)."""
        data: dict[str, Any] = {
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "message": self.message,
            "hint": self.hint,
            "tags": list(self.tags),
            "step": self.step,
            "evidence": self.evidence,
            "caused_by": self.caused_by,
        }
        if self.runs:
            data["runs"] = list(self.runs)
        return data


@dataclass(frozen=True)
class ChecklistEntry:
    """The verdict on one symptom id: problem, ok, or not checkable and why."""

    id: str
    status: Status
    reason: str | None = None
    enable: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "status": self.status.value}
        if self.status is Status.NOT_CHECKABLE:
            data["reason"] = self.reason or "no evidence recorded"
            data["enable"] = self.enable or ""
        return data


@dataclass
class Diagnosis:
    """Everything said about one run."""

    run: Run
    findings: list[Finding] = field(default_factory=list)
    checklist: list[ChecklistEntry] = field(default_factory=list)

    def worst(self) -> Severity | None:
        """The most severe finding's severity, or None when there is none."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: s.rank)


@dataclass
class AuditResult:
    """Everything said about a root path: one diagnosis per run, plus cross-run findings.

    ``root`` is the path as the user gave it; each run's ``name`` is its path
    relative to the root (``"."`` for the root itself).
    """

    root: str
    diagnoses: list[Diagnosis] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
