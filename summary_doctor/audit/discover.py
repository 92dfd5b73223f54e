"""Which runs lie below a root, their names relative to it, and the fingerprint of each run's files.

The fingerprint (name, size, modification time in ns of every file the reader
would read) is what the cache compares: a run still being written grows, so
it is read again; a run nobody touched is served from the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from summary_doctor.errors import SummaryDoctorError
from summary_doctor.reader.files import find_runs, run_files

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class RunTask:
    """One run to audit: where it is (absolute), its name relative to the root, its files' fingerprint."""

    path: str
    name: str
    files: Fingerprint = ()


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
    """``root`` itself when it is a file, else every run below it (any depth).

    Raises :class:`SummaryDoctorError` when ``root`` does not exist or holds no summary file.
    """
    path = Path(root)
    if not path.exists():
        raise SummaryDoctorError(f"{path}: no such file or directory")
    run_paths = [path] if path.is_file() else find_runs(path)
    if not run_paths:
        raise SummaryDoctorError(f"{path}: no MindSpore summary files found (looked at any depth)")
    return run_paths


def fingerprint(path: str | os.PathLike[str]) -> Fingerprint:
    """(name, size, mtime_ns) of every file the reader reads for this run, in reading order.

    A file that vanishes meanwhile is left out: the fingerprint then differs
    from any stored one and the run is read again.
    """
    path = Path(path)
    files = [path] if path.is_file() else [f.path for f in run_files(path)]
    prints = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        prints.append((file.name, stat.st_size, stat.st_mtime_ns))
    return tuple(prints)


def discover(root: str | os.PathLike[str]) -> list[RunTask]:
    """Every run below ``root`` with its name and fingerprint, in path order.

    Names are relative to the root as walked (the walk never follows a link),
    so no path is resolved per run; paths are absolute, for the cache key.
    """
    run_paths = runs_below(root)
    base = Path(root) if Path(root).is_dir() else Path(root).parent
    real_base = os.path.realpath(base)
    tasks = []
    for run_path in run_paths:
        relative = run_path.relative_to(base).as_posix() if run_path != Path(root) else "."
        absolute = real_base if relative == "." else os.path.join(real_base, relative)
        if run_path.is_file():
            absolute = os.path.realpath(run_path)
        tasks.append(RunTask(absolute, relative, fingerprint(run_path)))
    return tasks
