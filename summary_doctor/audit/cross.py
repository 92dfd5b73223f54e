"""Findings across runs (ranks of one job): the digests of all runs compared once, after every run.

Every way of running an audit (one process, a pool, a cluster, the cache)
ends here with the same digests, so cross-run findings never depend on how
the runs were examined. The comparison's result is cached under a key of
every digest, so an audit answered from the cache does not load the rules.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from summary_doctor.audit.job import Job
from summary_doctor.findings import ChecklistEntry, Finding, Severity
from summary_doctor.records import RunRecord, entry_data, entry_from_data, finding_data, finding_from_data

log = logging.getLogger(__name__)

RANK_ID = "init.rank-mismatch"


@dataclass
class CrossRun:
    """Cross-run findings, and the checklist entry that replaces each participating run's own."""

    findings: list[Finding] = field(default_factory=list)
    entries: dict[str, ChecklistEntry] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        return {
            "findings": [finding_data(f) for f in self.findings],
            "entries": {name: entry_data(e) for name, e in self.entries.items()},
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CrossRun:
        return cls(
            [finding_from_data(f) for f in data["findings"]],
            {name: entry_from_data(e) for name, e in data["entries"].items()},
        )


def digests(records: list[RunRecord]) -> dict[str, dict[str, Any]]:
    """Digests of the runs the rules ran on, by run name."""
    return {r.run: r.digest for r in records if r.diagnosed}


def key(job_key: str, runs: Mapping[str, dict[str, Any]]) -> str:
    """Changes when any run's name or digest does, or the code or settings do."""
    text = json.dumps([job_key, sorted(runs.items())], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _crash(error: Exception, names: list[str]) -> Finding:
    return Finding(
        id=RANK_ID,
        severity=Severity.ERROR,
        title=f"internal error: the cross-run comparison failed ({type(error).__name__})",
        message=f"Comparing the runs stopped with {type(error).__name__}: {error}; ranks were not compared. "
        "Every run's own diagnosis is complete.",
        hint="This is a bug in summary-doctor, not in your training: please report it (run with -v for details).",
        evidence={"internal_error": f"{type(error).__name__}: {error}"},
        runs=tuple(names),
    )


def compare(runs: Mapping[str, dict[str, Any]], job: Job) -> CrossRun:
    """Cross-run findings from the digests (``rules.ranks``); a crash there becomes an error finding.

    Nothing is compared when ``--select``/``--ignore`` leave ``init.rank-mismatch``
    out; ``--set init.rank-mismatch.FIELD=VALUE`` reaches the comparison.
    """
    from summary_doctor.engine import selected_ids
    from summary_doctor.rules import ranks

    if ranks.ID not in selected_ids(job.select or None, job.ignore):
        return CrossRun()
    try:
        rule = ranks.RankMismatch(**job.settings_dict().get(ranks.ID, {}))
        findings, entries = ranks.cross_run_findings(runs, rule=rule)
    except Exception as error:
        log.debug("cross-run comparison failed", exc_info=True)
        return CrossRun([_crash(error, sorted(runs))])
    return CrossRun(list(findings), dict(entries))


def replace_entry(checklist: list[ChecklistEntry], entry: ChecklistEntry | None) -> list[ChecklistEntry]:
    """The checklist with the cross-run entry in place of the run's own entry of that id."""
    if entry is None:
        return checklist
    return [entry if e.id == entry.id else e for e in checklist]
