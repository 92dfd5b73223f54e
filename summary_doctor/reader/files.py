"""Which files make a run, in which order, and which directories are runs.

The rules follow MindInsight's ``SummaryWatcher`` and ``MSDataLoader`` so a
user sees the same runs in both tools, with two deliberate differences:
``find_runs`` walks any depth (MindInsight stops at one level and silently
ignores ``exp/rank_0``), and nothing is capped or sampled.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from summary_doctor.errors import SummaryDoctorError

SUMMARY_PATTERN = re.compile(r"summary\.(?P<timestamp>\d+)")


class FileKind(str, Enum):
    """What a file in a run directory holds."""

    SUMMARY = "summary"
    LINEAGE = "lineage"
    EXPLAIN = "explain"
    GRAPH = "graph"


@dataclass(frozen=True)
class RunFile:
    """One file of a run, with the timestamp embedded in its name."""

    path: Path
    kind: FileKind
    timestamp: int


def classify(name: str) -> FileKind | None:
    """Kind of a file from its name, or None when it is not ours to read."""
    if SUMMARY_PATTERN.search(name):
        if name.endswith("_lineage"):
            return FileKind.LINEAGE
        if name.endswith("_explain"):
            return FileKind.EXPLAIN
        return FileKind.SUMMARY
    if name.endswith(".pb"):
        return FileKind.GRAPH
    return None


def _timestamp(name: str) -> int:
    match = SUMMARY_PATTERN.search(name)
    return int(match.group("timestamp")) if match else 0


def run_files(directory: Path) -> list[RunFile]:
    """The files of one run directory in reading order.

    Ascending timestamp; on equal timestamps descending name, as MindInsight
    sorts them, so that restarted jobs are read oldest first.
    """
    files = []
    for entry in os.scandir(directory):
        if not entry.is_file(follow_symlinks=False):
            continue
        kind = classify(entry.name)
        if kind is not None:
            files.append(RunFile(Path(entry.path), kind, _timestamp(entry.name)))
    files.sort(key=lambda f: f.path.name, reverse=True)
    files.sort(key=lambda f: f.timestamp)
    return files


def has_summary_files(directory: Path) -> bool:
    """True when the directory itself holds summary or lineage files."""
    try:
        return any(
            SUMMARY_PATTERN.search(entry.name) and entry.is_file(follow_symlinks=False)
            for entry in os.scandir(directory)
        )
    except OSError:
        return False


def find_runs(root: str | os.PathLike[str]) -> list[Path]:
    """Every directory under ``root`` (any depth, root included) holding summary files.

    Symbolic links are not followed, so a link loop cannot hang the walk.
    Raises :class:`SummaryDoctorError` when ``root`` does not exist.
    """
    root_path = Path(root)
    if not root_path.exists():
        raise SummaryDoctorError(f"{root}: no such file or directory")
    if root_path.is_file():
        if classify(root_path.name) is None:
            raise SummaryDoctorError(f"{root}: not a MindSpore summary file")
        return [root_path]
    runs = []
    for directory, subdirs, _ in os.walk(root_path, followlinks=False):
        subdirs.sort()
        if has_summary_files(Path(directory)):
            runs.append(Path(directory))
    return sorted(runs)
