"""summary-doctor: diagnose MindSpore training runs from their summary directories.

Public API::

    from summary_doctor import read_run, find_runs
    run = read_run("./summary_dir")
    run.scalars          # long-format pandas frames: run, file, tag, step, wall_time, value
"""

from __future__ import annotations

from summary_doctor.errors import SummaryDoctorError
from summary_doctor.reader.files import find_runs
from summary_doctor.reader.run import Run, read_run

__version__ = "0.1.0"

__all__ = ["Run", "SummaryDoctorError", "__version__", "find_runs", "read_run"]
