"""The runs below a root, diagnosed in this process and kept whole: what ``summary-doctor PATH`` reports.

The full report draws plots from each run's frames, so the runs stay in
memory and nothing is cached; each run still goes through the audit's own
per-run function (:func:`~summary_doctor.audit.examine.examine`) and
cross-run step, so both say the same about every run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from summary_doctor.audit import cross
from summary_doctor.audit.discover import RunTask, relative_name, runs_below
from summary_doctor.audit.job import Job
from summary_doctor.findings import AuditResult, Diagnosis

if TYPE_CHECKING:
    from summary_doctor.reader.run import ProgressCallback
    from summary_doctor.rules.base import Context


def audit(
    root: str | os.PathLike[str],
    *,
    run_paths: Sequence[Path] | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    context: Context | None = None,
    verify: bool = True,
    on_run: Callable[[Diagnosis], None] | None = None,
    progress: ProgressCallback | None = None,
) -> AuditResult:
    """Diagnose every run below ``root`` (a run directory, a folder of runs, or one file).

    Raises :class:`SummaryDoctorError` when ``root`` does not exist, holds no
    summary file, or a run cannot be read. Runs are diagnosed one after the
    other, in path order; ``run_paths`` saves the walk when the caller already
    has :func:`runs_below`; ``progress`` is called with the bytes consumed as
    files are read.
    """
    from summary_doctor.audit.examine import examine

    path = Path(root)
    if run_paths is None:
        run_paths = runs_below(root)
    tags = context.tags if context is not None else None
    job = Job.of(select=select, ignore=ignore, settings=settings, tags=tags, verify=verify)
    result = AuditResult(root=str(root))
    digests = {}
    for run_path in run_paths:
        task = RunTask(str(run_path), relative_name(run_path, path))
        examined = examine(task, job, strict=True, keep=True, progress=progress)
        assert examined.diagnosis is not None
        result.diagnoses.append(examined.diagnosis)
        digests[task.name] = examined.record.digest
        if on_run is not None:
            on_run(examined.diagnosis)
    crossed = cross.compare(digests, job)
    result.findings = crossed.findings
    for diagnosis in result.diagnoses:
        diagnosis.checklist = cross.replace_entry(diagnosis.checklist, crossed.entries.get(diagnosis.run.name))
    return result
