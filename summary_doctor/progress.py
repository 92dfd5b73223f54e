"""A progress bar on stderr while large runs are read, when stderr is a terminal.

Reading is the slow part of a diagnosis (hundreds of MB for long runs), so the
bar counts bytes across every file of every run. It is transient: nothing is
left on the screen, and nothing at all is drawn when stderr is not a TTY (CI
logs, pipes). Drawing uses rich, the de-facto terminal library.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from summary_doctor.reader.files import run_files

# Below this many bytes reading takes well under a second: no bar.
MIN_BYTES = 32 * 1024 * 1024


def run_bytes(run_paths: Sequence[Path]) -> int:
    """Total size of the files that will be read for ``run_paths``."""
    total = 0
    for path in run_paths:
        files = [path] if path.is_file() else [f.path for f in run_files(path)]
        total += sum(p.stat().st_size for p in files)
    return total


def _stderr() -> Any:
    """The bars go to stderr, the terminal this module checked: stdout may be a report piped elsewhere."""
    from rich.console import Console

    return Console(stderr=True)


def wanted(stream=None) -> bool:
    """True when ``stream`` (stderr by default) is an interactive terminal."""
    stream = stream or sys.stderr
    return hasattr(stream, "isatty") and stream.isatty() and os.environ.get("TERM") != "dumb"


@contextmanager
def byte_progress(total: int, *, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback advancing a bar of ``total`` bytes, or None when no bar is drawn."""
    if not enabled or total < MIN_BYTES:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = ("reading", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, console=_stderr()) as progress:
        task = progress.add_task("reading", total=total)
        yield lambda consumed: progress.advance(task, consumed)


class RunBar:
    """The audit's bar: runs done of all runs, runs per second, time left; nothing off a terminal.

    ``start(total, cached)`` is called once the cached runs are known, and
    returns the callable that counts each run examined (or None: no bar).
    """

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress = None

    def start(self, total: int, cached: int) -> Callable[[int], None] | None:
        if not self.enabled or cached >= total:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        columns = ("auditing", BarColumn(), MofNCompleteColumn(), _rate_column(), TimeRemainingColumn())
        self._progress = Progress(*columns, transient=True, console=_stderr())
        self._progress.start()
        task = self._progress.add_task("auditing", total=total, completed=cached)
        return lambda runs: self._progress.advance(task, runs)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _rate_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RunsPerSecond(ProgressColumn):
        def render(self, task: Any) -> Any:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:.1f} runs/s")

    return RunsPerSecond()


@contextmanager
def run_bar(*, enabled: bool) -> Iterator[RunBar]:
    """A :class:`RunBar`, always stopped (and erased) on the way out."""
    bar = RunBar(enabled=enabled)
    try:
        yield bar
    finally:
        bar.stop()
