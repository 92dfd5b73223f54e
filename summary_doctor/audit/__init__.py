"""Many runs: find them at any depth below a root, diagnose each, and put them side by side.

- :func:`audit` diagnoses every run in this process and keeps the runs whole,
  for the full report of ``summary-doctor PATH``;
- :func:`audit_runs` is the batch audit of ``summary-doctor audit ROOT``:
  runs examined in parallel (or on a Dask cluster), results cached, one
  record per run; :func:`audit_table` gives its table as a pandas DataFrame.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from summary_doctor.audit.batch import audit_runs, default_jobs
from summary_doctor.audit.diagnoses import audit
from summary_doctor.audit.discover import RunTask, discover, relative_name, runs_below

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunTask", "audit", "audit_runs", "audit_table", "default_jobs", "discover", "relative_name", "runs_below"]


def audit_table(root: str | os.PathLike[str], **options: Any) -> pd.DataFrame:
    """The audit of every run below ``root`` as a DataFrame, one row per run (options of :func:`audit_runs`)."""
    from summary_doctor.table import to_frame

    return to_frame(audit_runs(root, **options))
