"""Many runs: find them at any depth below a root, read and diagnose each, name them relative to the root."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from summary_doctor.engine import Settings, diagnose, selected_ids
from summary_doctor.errors import SummaryDoctorError
from summary_doctor.findings import AuditResult, Diagnosis
from summary_doctor.reader.files import find_runs
from summary_doctor.reader.run import ProgressCallback, read_run
from summary_doctor.rules import ranks
from summary_doctor.rules.base import Context

log = logging.getLogger(__name__)


def relative_name(run_path: Path, root: Path) -> str:
    """``run_path`` relative to the root directory ("." for the root itself), with "/" separators."""
    if run_path.resolve() == root.resolve():
        return "."
    base = root if root.is_dir() else root.parent
    try:
        relative = run_path.resolve().relative_to(base.resolve())
    except ValueError:
        return str(run_path)
    return relative.as_posix() if str(relative) != "." else "."


def runs_below(root: str | os.PathLike[str]) -> list[Path]:
    """The runs ``audit`` would diagnose: ``root`` itself when it is a file, else every run below it.

    Raises :class:`SummaryDoctorError` when ``root`` does not exist or holds no summary file.
    """
    path = Path(root)
    if not path.exists():
        raise SummaryDoctorError(f"{path}: no such file or directory")
    run_paths = [path] if path.is_file() else find_runs(path)
    if not run_paths:
        raise SummaryDoctorError(f"{path}: no MindSpore summary files found (looked at any depth)")
    return run_paths


def audit(
    root: str | os.PathLike[str],
    *,
    run_paths: Sequence[Path] | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    settings: Settings | None = None,
    context: Context | None = None,
    verify: bool = True,
    on_run: Callable[[Diagnosis], None] | None = None,
    progress: ProgressCallback | None = None,
) -> AuditResult:
    """Diagnose every run below ``root`` (a run directory, a folder of runs, or one file).

    Raises :class:`SummaryDoctorError` when ``root`` does not exist or holds no
    summary file. Runs are diagnosed one after the other, in path order;
    ``run_paths`` saves the walk when the caller already has :func:`runs_below`;
    ``progress`` is called with the bytes consumed as files are read.
    """
    path = Path(root)
    if run_paths is None:
        run_paths = runs_below(root)
    select, ignore = list(select or []), list(ignore or [])
    result = AuditResult(root=str(root))
    for run_path in run_paths:
        run = read_run(run_path, name=relative_name(run_path, path), verify=verify, progress=progress)
        diagnosis = diagnose(run, select=select or None, ignore=ignore, settings=settings, context=context)
        result.diagnoses.append(diagnosis)
        if on_run is not None:
            on_run(diagnosis)
    if ranks.ID in selected_ids(select or None, ignore):
        digests = {d.run.name: ranks.run_digest(d.run) for d in result.diagnoses}
        add_cross_run(result, digests, settings)
    return result


def add_cross_run(result: AuditResult, digests: dict[str, dict], settings: Settings | None = None) -> None:
    """Compare the runs' digests across runs: top-level findings, and each rank's ``init.rank-mismatch`` entry."""
    rule = ranks.RankMismatch(**dict((settings or {}).get(ranks.ID, {})))
    findings, entries = ranks.cross_run_findings(digests, rule=rule)
    result.findings.extend(findings)
    for diagnosis in result.diagnoses:
        entry = entries.get(diagnosis.run.name)
        if entry is not None:
            diagnosis.checklist = [entry if e.id == entry.id else e for e in diagnosis.checklist]
