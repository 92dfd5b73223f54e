"""summary-doctor: diagnose MindSpore training runs from their summary directories.

Public API::

    from summary_doctor import read_run, find_runs
    run = read_run("./summary_dir")
    run.scalars          # long-format pandas frames: run, file, tag, step, wall_time, value
    diagnosis = diagnose(run)
    diagnosis.findings   # Finding(id, severity, title, message, hint, step, evidence)

    table = audit_table("./experiments")   # one row per run below, in parallel, cached: a DataFrame
"""

from __future__ import annotations

from importlib import import_module

from summary_doctor.errors import SummaryDoctorError
from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.files import find_runs

__version__ = "0.1.0"

__all__ = [
    "Finding",
    "Run",
    "Severity",
    "SummaryDoctorError",
    "__version__",
    "audit_runs",
    "audit_table",
    "diagnose",
    "find_runs",
    "read_run",
]

#: Imported on first use: the command line starts fast, and an audit answered from
#: its cache never loads pandas, the rules or matplotlib.
_LAZY = {
    "Run": "summary_doctor.reader.run",
    "read_run": "summary_doctor.reader.run",
    "diagnose": "summary_doctor.engine",
    "audit_runs": "summary_doctor.audit",
    "audit_table": "summary_doctor.audit",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'summary_doctor' has no attribute {name!r}")
