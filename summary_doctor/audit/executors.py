"""Where runs are examined: in this process, in a pool of local worker processes, or on a Dask cluster.

Each takes the same tasks and calls ``done(task, record, html)`` in this
process as each run finishes, in completion order.

The local pool is started once per audit with the rules already imported:
on Linux its workers fork from a server process that imported them (the
"forkserver" start method with a preload), elsewhere they are spawned and
import them once each. A worker that dies (a crash in a C extension, the
kernel's OOM killer) does not stop the audit: the runs it held are tried
again one at a time, and the run that kills a worker again gets a row that
says so.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from typing import Any

from summary_doctor.audit.discover import RunTask
from summary_doctor.audit.job import Job
from summary_doctor.errors import SummaryDoctorError
from summary_doctor.records import RunRecord, unreadable_checklist

log = logging.getLogger(__name__)

Done = Callable[[RunTask, RunRecord, "str | None"], None]
WORKER_MODULE = "summary_doctor.audit.examine"
REPORT_MODULES = ("summary_doctor.report.html", "summary_doctor.report.plots")


def chunks(tasks: Sequence[RunTask], size: int) -> list[list[RunTask]]:
    return [list(tasks[i : i + size]) for i in range(0, len(tasks), size)]


def chunk_size(count: int, workers: int, *, most: int = 8) -> int:
    """Small enough to keep every worker busy to the end, large enough to save round trips."""
    return max(1, min(most, count // (workers * 8)))


def failed_record(task: RunTask, reason: str) -> RunRecord:
    return RunRecord(task.name, task.path, "failed", reason, checklist=unreadable_checklist(reason))


def run_here(tasks: Sequence[RunTask], job: Job, done: Done) -> None:
    """One run after the other, in this process (``--jobs 1``, or a single run to examine)."""
    from summary_doctor.audit.examine import examine

    for task in tasks:
        examined = examine(task, job)
        done(task, examined.record, examined.html)


def pool_context(*, reports: bool = False) -> BaseContext:
    """forkserver with the rules (and the report's plotting, when it is wanted) preloaded where
    available (Linux), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([WORKER_MODULE, *REPORT_MODULES] if reports else [WORKER_MODULE])
        return context
    return multiprocessing.get_context("spawn")


def _warm() -> None:
    """Pool initializer: import the rules before the first run (a no-op after a preload)."""
    import summary_doctor.audit.examine  # noqa: F401


def _pool_round(tasks: list[RunTask], job: Job, done: Done, *, jobs: int, size: int, context: BaseContext) -> list:
    """Examine ``tasks`` in a fresh pool; return those whose results were lost to a dead worker."""
    from summary_doctor.audit.examine import examine_chunk

    lost: list[RunTask] = []
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_warm)
    try:
        futures = {pool.submit(examine_chunk, chunk, job): chunk for chunk in chunks(tasks, size)}
        for future in as_completed(futures):
            chunk = futures[future]
            try:
                results = future.result()
            except BrokenProcessPool:
                lost += chunk
                continue
            except Exception as error:  # e.g. a result that cannot be sent back
                results = [(failed_record(t, f"worker error: {type(error).__name__}: {error}"), None) for t in chunk]
            for task, (record, html) in zip(chunk, results, strict=True):
                done(task, record, html)
    except BaseException:  # Ctrl-C: drop what has not started instead of finishing it
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    order = {task.path: i for i, task in enumerate(tasks)}
    return sorted(lost, key=lambda task: order[task.path])


def run_pool(tasks: Sequence[RunTask], job: Job, done: Done, *, jobs: int, context: BaseContext | None = None) -> None:
    """Examine ``tasks`` on ``jobs`` local worker processes."""
    context = context or pool_context(reports=job.reports)
    remaining, workers, size = list(tasks), jobs, chunk_size(len(tasks), jobs, most=2)
    while remaining:
        lost = _pool_round(remaining, job, done, jobs=workers, size=size, context=context)
        if lost and (workers, size) == (1, 1):
            culprit, remaining = lost[0], lost[1:]  # one worker, one run at a time: the first lost one did it
            log.warning("%s: the worker process died while examining it", culprit.name)
            done(culprit, failed_record(culprit, "the worker process died while examining this run"), None)
            workers, size = jobs, chunk_size(len(remaining), jobs, most=2)
        elif lost:
            log.info("a worker process died; examining its %d run(s) one at a time", len(lost))
            remaining, workers, size = lost, 1, 1
        else:
            remaining = []


def _client(scheduler: Any) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise SummaryDoctorError("--scheduler needs dask.distributed: pip install 'summary-doctor[dask]'") from None
    if isinstance(scheduler, Client):
        return scheduler
    try:
        return Client(scheduler, timeout="20s")
    except (OSError, TimeoutError, ValueError) as error:
        raise SummaryDoctorError(f"--scheduler {scheduler}: cannot connect ({error})") from None


def run_dask(tasks: Sequence[RunTask], job: Job, done: Done, *, scheduler: Any) -> None:
    """Examine ``tasks`` on a Dask cluster (``scheduler``: its address, or a ``distributed.Client``).

    The workers need summary-doctor installed and the runs at the same paths
    (shared storage); results come back here, into the same table and cache.
    """
    from distributed import as_completed as dask_completed

    from summary_doctor.audit.examine import examine_chunk

    client = _client(scheduler)
    try:
        workers = max(1, sum(client.nthreads().values()))
        pieces = chunks(tasks, chunk_size(len(tasks), workers, most=64))
        futures = client.map(examine_chunk, pieces, job=job, pure=False)
        by_key = {future.key: piece for future, piece in zip(futures, pieces, strict=True)}
        for future, result in dask_completed(futures, with_results=True, raise_errors=False):
            piece = by_key[future.key]
            if future.status != "finished":  # result is (type, exception, traceback), or the cancellation
                error = result[1] if isinstance(result, tuple) else result
                reason = f"cluster task failed: {type(error).__name__}: {error}"
                result = [(failed_record(t, reason), None) for t in piece]
            for task, (record, html) in zip(piece, result, strict=True):
                done(task, record, html)
    finally:
        if client is not scheduler:
            client.close()
