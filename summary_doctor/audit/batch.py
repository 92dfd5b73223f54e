"""The batch audit: every run below a root, examined in parallel (or found in the cache), in one table.

Steps: walk the tree and fingerprint each run's files; take what the cache
still holds; examine the rest (here, in a local pool, or on a Dask cluster),
storing each result as it arrives, so an interrupted audit resumes where it
stopped; compare the runs once for cross-run findings. Nothing here imports
pandas or the rules: an audit answered from the cache never loads them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from summary_doctor.audit import cross
from summary_doctor.audit.cache import Cache
from summary_doctor.audit.discover import RunTask, discover
from summary_doctor.audit.job import Job, code_fingerprint
from summary_doctor.records import AuditStats, BatchAudit, RunRecord

log = logging.getLogger(__name__)
Advance = Callable[[int], None]


def default_jobs() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def report_page(name: str) -> str:
    """Where a run's report goes, relative to the index: unique per name, safe as a file name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80] or "run"
    return f"runs/{stem}-{hashlib.sha1(name.encode()).hexdigest()[:8]}.html"


@dataclass
class _Collector:
    """Takes each finished run: keeps its record, writes its report, stores both, moves the bar."""

    job_key: str
    cache: Cache | None
    reports: Path | None
    advance: Advance | None = None
    records: dict[str, RunRecord] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)
    mismatch: bool = False

    def take(self, task: RunTask, record: RunRecord, html: str | None) -> None:
        self.records[task.path] = record
        written = self._write_report(task, html)
        # a failure may not repeat (try it again next time); a result of other code is not this code's
        if self.cache is not None and record.status != "failed" and not self._foreign(record):
            self.cache.put(task, self.job_key, record, written)
        if self.advance is not None:
            self.advance(1)

    def _write_report(self, task: RunTask, html: str | None) -> str | None:
        if self.reports is None or html is None:
            return None
        page = self.pages[task.name] = report_page(task.name)
        target = self.reports / page
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
        return str(target)

    def _foreign(self, record: RunRecord) -> bool:
        """True for a record made by other code (a cluster worker with another version): warned once."""
        if not record.code or record.code == code_fingerprint():
            return False
        if not self.mismatch:
            log.warning("a worker runs summary-doctor %s, this command %s: its results are not cached",
                        record.code, code_fingerprint())  # fmt: skip
        self.mismatch = True
        return True

    def from_cache(self, tasks: list[RunTask]) -> list[RunTask]:
        """Take every run the cache still holds (with its report, when reports are wanted); return the rest."""
        missing = []
        for task in tasks:
            hit = self.cache.get(task, self.job_key) if self.cache is not None else None
            if hit is None or not self._page_still_there(task, *hit):
                missing.append(task)
                continue
            self.records[task.path] = hit[0]
            if self.reports is not None and hit[1] is not None:
                self.pages[task.name] = report_page(task.name)
        return missing

    def _page_still_there(self, task: RunTask, record: RunRecord, written: str | None) -> bool:
        if self.reports is None or (written is None and not record.diagnosed):
            return True
        wanted = self.reports / report_page(task.name)
        return written == str(wanted) and wanted.exists()


def _examine(missing: list[RunTask], collector: _Collector, job: Job, *, jobs: int, scheduler: Any) -> None:
    from summary_doctor.audit import executors

    if scheduler is not None:
        executors.run_dask(missing, job, collector.take, scheduler=scheduler)
    elif jobs <= 1 or len(missing) <= 1:
        executors.run_here(missing, job, collector.take)
    else:
        executors.run_pool(missing, job, collector.take, jobs=min(jobs, len(missing)))


def _cross_run(records: list[RunRecord], job: Job, cache: Cache | None) -> cross.CrossRun:
    digests = cross.digests(records)
    key = cross.key(job.key(), digests)
    stored = cache.get_cross(key) if cache is not None else None
    if stored is not None:
        return cross.CrossRun.from_data(stored)
    result = cross.compare(digests, job)
    if cache is not None:
        cache.put_cross(key, result.to_data())
    return result


def _apply(records: list[RunRecord], result: cross.CrossRun) -> list[RunRecord]:
    return [
        replace(r, checklist=cross.replace_entry(r.checklist, result.entries[r.run])) if r.run in result.entries else r
        for r in records
    ]


def audit_runs(
    root: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    cache: bool | str | os.PathLike[str] = True,
    scheduler: Any = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    tags: Mapping[str, str | None] | None = None,
    verify: bool = True,
    reports: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> BatchAudit:
    """Audit every run below ``root``: one record per run, in path order, plus cross-run findings.

    ``jobs`` worker processes (default: all cores; 1 = in this process);
    ``cache`` True for the default file, a path, or False for none;
    ``scheduler`` a Dask scheduler address (or ``distributed.Client``) to send
    the runs to; ``select``/``ignore``/``settings``/``tags`` as for
    :func:`summary_doctor.diagnose` (tags by field name: ``{"loss": "my_loss"}``);
    ``reports`` a directory where each run's HTML report is written
    (``runs/<name>-<hash>.html``); ``progress(total, cached)`` is called once
    the cached runs are known and returns a callable advanced by one per run
    examined (or None).

    Raises :class:`SummaryDoctorError` when ``root`` holds no run. Where worker
    processes are spawned rather than forked (macOS, Windows), call it from
    under ``if __name__ == "__main__":`` as for any multiprocessing code.
    """
    started = time.perf_counter()
    jobs = jobs or default_jobs()
    job = Job.of(select=select, ignore=ignore, settings=settings, tags=tags, verify=verify, reports=bool(reports))
    tasks = discover(root)
    walked = time.perf_counter()
    store = None if cache is False else Cache.open(None if cache is True else cache)
    collector = _Collector(job.key(), store, Path(reports) if reports else None)
    try:
        missing = collector.from_cache(tasks)
        looked_up = time.perf_counter()
        collector.advance = progress(len(tasks), len(tasks) - len(missing)) if progress else None
        if missing:
            _examine(missing, collector, job, jobs=jobs, scheduler=scheduler)
        examined = time.perf_counter()
        records = [collector.records[t.path] for t in tasks]
        result = _cross_run(records, job, store)
    finally:
        if store is not None:
            store.close()
    fresh = [collector.records[t.path] for t in missing]
    seconds = {
        "walk": walked - started,
        "cache": looked_up - walked,
        "examine": examined - looked_up,
        "read": sum(r.seconds.get("read", 0.0) for r in fresh),
        "rules": sum(r.seconds.get("rules", 0.0) for r in fresh),
        "reports": sum(r.seconds.get("report", 0.0) for r in fresh),
        "cross": time.perf_counter() - examined,
    }
    stats = AuditStats(len(tasks), len(tasks) - len(missing), len(missing), jobs, seconds)
    return BatchAudit(str(root), _apply(records, result), result.findings, stats, dict(collector.pages))
