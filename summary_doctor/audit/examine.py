"""The per-run work of every audit: read one run, diagnose it, keep what the audit needs.

``summary-doctor PATH`` (the full report) and ``summary-doctor audit`` (the
table) both go through :func:`examine`. In an audit it runs in worker
processes or on cluster workers and never raises for a bad run: the record's
status and reason say what went wrong, and the other runs go on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import NamedTuple

from summary_doctor.audit.discover import RunTask
from summary_doctor.audit.facts import run_facts
from summary_doctor.audit.job import Job, code_fingerprint
from summary_doctor.engine import diagnose, is_internal
from summary_doctor.errors import SummaryDoctorError
from summary_doctor.findings import AuditResult, Diagnosis
from summary_doctor.reader.run import ProgressCallback, Run, read_run
from summary_doctor.records import RunRecord, record_of, unreadable_checklist
from summary_doctor.rules import ranks

log = logging.getLogger(__name__)


class Examined(NamedTuple):
    """What :func:`examine` gives back: the record, and on request the diagnosis (with its run) and HTML."""

    record: RunRecord
    diagnosis: Diagnosis | None = None
    html: str | None = None


def _not_diagnosed(task: RunTask, status: str, reason: str) -> RunRecord:
    return RunRecord(
        run=task.name, path=task.path, status=status, reason=reason, checklist=unreadable_checklist(reason)
    )


def _failed(task: RunTask, stage: str, error: BaseException) -> RunRecord:
    log.debug("%s failed while %s", task.name, stage, exc_info=True)
    reason = f"{stage} stopped on {type(error).__name__}: {error} (a summary-doctor bug: please report it)"
    return _not_diagnosed(task, "failed", reason)


def _status(record: RunRecord, run: Run, notes: list[str]) -> None:
    """Fill the record's status and reason: why a row is not a plain 'diagnosed'."""
    crashed = [
        f"rule {f.evidence.get('rule', f.id)} failed: {f.evidence['internal_error']}"
        for f in record.findings
        if is_internal(f)
    ]
    if crashed or notes:
        record.status, record.reason = "incomplete", "; ".join(crashed + notes)
        return
    problems = run.problems
    if not any(f["records"] for f in record.files):
        why = problems[0] if problems else "its files hold no record yet (the job stopped early, or just started)"
        record.status, record.reason = "unreadable", f"nothing could be read: {why}"
    elif problems:
        record.reason = f"{len(problems)} read problem(s): {problems[0]}"


def _record(diagnosis: Diagnosis, job: Job) -> RunRecord:
    """The diagnosis as a record, with the table's facts and the cross-run digest."""
    record = record_of(diagnosis)
    notes = []
    try:
        record.facts = run_facts(diagnosis.run, job.context())
    except Exception as error:  # the table loses a few cells, never the run
        log.debug("facts of %s failed", record.run, exc_info=True)
        notes.append(f"lineage columns failed ({type(error).__name__}: {error})")
    try:
        record.digest = ranks.run_digest(diagnosis.run)
    except Exception as error:
        log.debug("digest of %s failed", record.run, exc_info=True)
        notes.append(f"cross-run digest failed ({type(error).__name__}: {error})")
    _status(record, diagnosis.run, notes)
    record.code = code_fingerprint()
    return record


def _html(diagnosis: Diagnosis, task: RunTask) -> str:
    from summary_doctor.report import render

    return render("html", AuditResult(root=task.path, diagnoses=[diagnosis]))


def _read(task: RunTask, job: Job, *, strict: bool, progress: ProgressCallback | None) -> Run | RunRecord:
    """The run, or the record of a run that could not be read."""
    try:
        return read_run(task.path, name=task.name, verify=job.verify, progress=progress)
    except SummaryDoctorError as error:
        if strict:
            raise
        return _not_diagnosed(task, "unreadable", str(error))
    except Exception as error:
        if strict:
            raise
        return _failed(task, "reading", error)


def _report(record: RunRecord, diagnosis: Diagnosis, task: RunTask) -> str | None:
    started = time.process_time()
    try:
        return _html(diagnosis, task)
    except Exception as error:  # the row stays; only its page is missing
        log.debug("report of %s failed", task.name, exc_info=True)
        record.status, record.reason = "incomplete", f"report failed ({type(error).__name__}: {error})"
        return None
    finally:
        record.seconds["report"] = time.process_time() - started


def python_strings() -> contextlib.AbstractContextManager:
    """Strings inferred by pandas kept in Python objects, not pyarrow, while a run is examined.

    pandas 3 stores inferred strings (column labels included) in pyarrow
    arrays when pyarrow is installed; on the small frames of a diagnosis every
    column lookup then costs more: the rules took 1.4x the CPU, for the same
    values. Scoped, so the caller's own pandas settings are left as they were.
    """
    import pandas as pd

    try:
        return pd.option_context("mode.string_storage", "python")
    except (KeyError, ValueError):  # an older or newer pandas without this option
        return contextlib.nullcontext()


def examine(
    task: RunTask, job: Job, *, strict: bool = False, keep: bool = False, progress: ProgressCallback | None = None
) -> Examined:
    """Read and diagnose one run.

    ``strict`` lets errors through (the report of a path stops on them);
    ``keep`` returns the diagnosis with its run; ``job.reports`` adds the
    run's HTML report.
    """
    with python_strings():
        return _examine(task, job, strict=strict, keep=keep, progress=progress)


def _examine(task: RunTask, job: Job, *, strict: bool, keep: bool, progress: ProgressCallback | None) -> Examined:
    started = time.process_time()
    run = _read(task, job, strict=strict, progress=progress)
    if isinstance(run, RunRecord):
        return Examined(run)
    read = time.process_time()
    try:
        settings, context = job.settings_dict(), job.context()
        diagnosis = diagnose(run, select=job.select or None, ignore=job.ignore, settings=settings, context=context)
        record = _record(diagnosis, job)
    except Exception as error:
        if strict:
            raise
        return Examined(_failed(task, "diagnosing", error))
    record.seconds = {"read": read - started, "rules": time.process_time() - read}
    html = _report(record, diagnosis, task) if job.reports else None
    return Examined(record, diagnosis if keep else None, html)


def examine_chunk(tasks: Sequence[RunTask], job: Job) -> list[tuple[RunRecord, str | None]]:
    """:func:`examine` over a few runs: one task for a worker process or a cluster worker."""
    results = []
    for task in tasks:
        examined = examine(task, job)
        results.append((examined.record, examined.html))
    return results
