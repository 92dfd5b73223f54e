"""Cross-run checks (``init.rank-mismatch``): what the ranks of one job must share.

A single run cannot tell whether its ranks started from the same weights, so
the audit computes a small digest of every run (:func:`run_digest`, cached
with the run's result) and compares the digests once, across all runs
(:func:`cross_run_findings`).

This version does not compare ranks yet: digests are empty, there is no
cross-run finding, and every run keeps the ``init.rank-mismatch`` entry that
:func:`summary_doctor.diagnose` gave it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from summary_doctor.findings import ChecklistEntry, Finding
    from summary_doctor.reader.run import Run


def run_digest(run: Run) -> dict[str, Any]:
    """What cross-run checks need of one run: small, picklable and JSON-safe."""
    return {}


def cross_run_findings(digests: Mapping[str, dict[str, Any]]) -> tuple[list[Finding], dict[str, ChecklistEntry]]:
    """Cross-run findings (with ``Finding.runs`` set) from digests keyed by run name, and the
    ``init.rank-mismatch`` checklist entry of every run that took part."""
    return [], {}
