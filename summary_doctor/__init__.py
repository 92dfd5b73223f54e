"""summary-doctor: diagnose MindSpore training runs from their summary directories.

Public API::

    from summary_doctor import read_run, find_runs
    run = read_run("./summary_dir")
    run.scalars          # long-format pandas frames: run, file, tag, step, wall_time, value
    diagnosis = diagnose(run)
    diagnosis.findings   # Finding(id, severity, title, message, hint, step, evidence)
"""

from __future__ import annotations

from summary_doctor.errors import SummaryDoctorError
from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.files import find_runs
from summary_doctor.reader.run import Run, read_run

__version__ = "0.1.0"

__all__ = ["Finding", "Run", "Severity", "SummaryDoctorError", "__version__", "diagnose", "find_runs", "read_run"]


def __getattr__(name: str) -> object:
    """``diagnose`` is imported on first use: loading the rules is not needed to read a run."""
    if name == "diagnose":
        from summary_doctor.engine import diagnose

        return diagnose
    raise AttributeError(f"module 'summary_doctor' has no attribute {name!r}")
