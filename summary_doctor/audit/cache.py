"""The audit cache: each run's record in an embedded SQLite database (stdlib ``sqlite3``).

A stored record is reused when the run's files (name, size, mtime in ns) and
the job's key (code, settings) are the same; a run that grew since is read
again, and a run whose files change while it is read is not stored.

Two audits may share the file: the journal is WAL (readers never wait),
writes wait for each other (busy timeout) and go in batches, each one
transaction. The cache is an accelerator, never a reason to fail: a damaged
file is moved aside and rebuilt, a locked or unwritable one is bypassed,
each with a warning on stderr.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import sys
import time
import zlib
from pathlib import Path
from typing import Any

from summary_doctor.audit.discover import RunTask, fingerprint
from summary_doctor.records import RunRecord

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 10.0
FLUSH_EVERY = 64
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS runs (path TEXT NOT NULL, job TEXT NOT NULL, files TEXT NOT NULL, "
    "record BLOB NOT NULL, report TEXT, written REAL NOT NULL, PRIMARY KEY (path, job)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS cross_runs (key TEXT PRIMARY KEY, result BLOB NOT NULL, written REAL NOT NULL)",
)


def default_path() -> Path:
    """The user's cache directory: ``$XDG_CACHE_HOME`` or ``~/.cache`` (macOS and Windows: their own)."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Caches"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else home / ".cache"  # the XDG spec ignores relative paths
    return base / "summary-doctor" / "audit.sqlite"


def _pack(data: Any) -> bytes:
    return zlib.compress(json.dumps(data).encode(), 1)


def _unpack(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


def _locked(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


class Cache:
    """An open cache file; every method degrades to "no cache" after a warning instead of raising."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[Any, ...]] = []
        self._flushed = time.monotonic()

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Cache:
        """Open (or create) the cache at ``path`` (default: :func:`default_path`)."""
        cache = cls(Path(path) if path is not None else default_path())
        cache._connect(retry=True)
        return cache

    @property
    def active(self) -> bool:
        return self._db is not None

    def _connect(self, *, retry: bool) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._prepare()
        except sqlite3.Error as error:
            self._fail(error, retry=retry)
        except OSError as error:
            self._disable(f"cannot be created ({error.strerror or error})")

    def _prepare(self) -> None:
        assert self._db is not None
        if self._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self._db.execute("DROP TABLE IF EXISTS runs")
                self._db.execute("DROP TABLE IF EXISTS cross_runs")
                for statement in _SCHEMA:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _disable(self, why: str) -> None:
        log.warning("audit cache %s %s: auditing without it this time", self.path, why)
        self._disable_quietly()
        self._pending = []

    def _fail(self, error: sqlite3.Error, *, retry: bool) -> None:
        """A locked or unopenable cache is bypassed; a damaged one is moved aside and rebuilt (once)."""
        damaged = isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError)
        if not (damaged and retry and self.path.is_file()):
            self._disable(f"is unusable ({'locked by another process' if _locked(error) else error})")
            return
        self._disable_quietly()
        aside = self.path.with_name(self.path.name + ".damaged")
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        except OSError as move_error:
            self._disable(f"is damaged ({error}) and cannot be moved aside ({move_error})")
            return
        log.warning("audit cache %s was damaged (%s): moved to %s and rebuilt", self.path, error, aside.name)
        self._connect(retry=False)

    def _disable_quietly(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None

    def get(self, task: RunTask, job_key: str) -> tuple[RunRecord, str | None] | None:
        """The stored record of ``task`` (renamed to its name here) and its report path, if still valid."""
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT files, record, report FROM runs WHERE path = ? AND job = ?", (task.path, job_key)
            ).fetchone()
        except sqlite3.Error as error:
            self._fail(error, retry=True)
            return None
        if row is None or row[0] != json.dumps(task.files):
            return None
        try:
            return RunRecord.from_data(_unpack(row[1])).renamed(task.name), row[2]
        except (zlib.error, ValueError, KeyError, TypeError):  # one bad row: read the run again
            log.debug("stored record of %s does not decode", task.path, exc_info=True)
            return None

    def put(self, task: RunTask, job_key: str, record: RunRecord, report: str | None = None) -> None:
        """Store a record, unless the run's files changed while it was read (it is still being written)."""
        if self._db is None or fingerprint(task.path) != task.files:
            return
        row = (task.path, job_key, json.dumps(task.files), _pack(record.to_data()), report, time.time())
        self._pending.append(row)
        if len(self._pending) >= FLUSH_EVERY or time.monotonic() - self._flushed > 1.0:
            self.flush()

    def flush(self) -> None:
        """Write the pending records in one transaction."""
        if self._db is None or not self._pending:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)", self._pending)
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            self._fail(error, retry=False)
        self._pending, self._flushed = [], time.monotonic()

    def _rollback(self) -> None:
        try:
            if self._db is not None and self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def get_cross(self, key: str) -> Any | None:
        """A stored cross-run result, as plain data."""
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT result FROM cross_runs WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as error:
            self._fail(error, retry=True)
            return None
        try:
            return None if row is None else _unpack(row[0])
        except (zlib.error, ValueError):
            return None

    def put_cross(self, key: str, data: Any) -> None:
        if self._db is None:
            return
        try:
            self._db.execute("INSERT OR REPLACE INTO cross_runs VALUES (?, ?, ?)", (key, _pack(data), time.time()))
        except sqlite3.Error as error:
            self._fail(error, retry=False)

    def close(self) -> None:
        """Write what is pending and close the file."""
        self.flush()
        self._disable_quietly()
