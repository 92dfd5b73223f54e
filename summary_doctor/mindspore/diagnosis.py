"""Diagnose a summary directory from inside a training process, in a child interpreter.

Importing MindSpore sets ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``
(``mindspore/run_check/_check_version.py``) and imports protobuf, so the
whole training process runs protobuf's pure-Python backend. Reading and
diagnosing a run there is several times slower (a 6 MB run: 7.4 s instead of
1.9 s) and grows with the run, so the diagnosis runs in a child interpreter
(``sys.executable -m summary_doctor.mindspore.child``) whose environment
lacks that variable: it gets the fast backend for about 1 s of start-up,
and its memory is returned when it ends. This module itself never imports
MindSpore.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from summary_doctor.errors import SummaryDoctorError

#: Environment variables the child must not inherit from a MindSpore process.
_DROPPED = ("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION",)
REPORT_NAME = "summary-doctor.html"
CHILD = "summary_doctor.mindspore.child"


@dataclass(frozen=True)
class Verdict:
    """What the diagnosis of one summary directory found (from its JSON report)."""

    summary_dir: str
    findings: tuple[dict[str, Any], ...] = ()
    checklist: tuple[dict[str, Any], ...] = ()
    report: str | None = None
    text: str = ""
    json: dict[str, Any] = field(default_factory=dict, repr=False)

    def count(self, severity: str) -> int:
        """How many findings have ``severity`` (``error``, ``warning``, ``info``)."""
        return sum(f["severity"] == severity for f in self.findings)

    @property
    def errors(self) -> int:
        return self.count("error")

    @property
    def warnings(self) -> int:
        return self.count("warning")

    @property
    def ids(self) -> set[str]:
        """Symptom ids of the warnings and errors."""
        return {f["id"] for f in self.findings if f["severity"] in ("error", "warning")}

    def status(self, symptom_id: str) -> str | None:
        """The checklist status of ``symptom_id`` (of the first run that has it)."""
        return next((e["status"] for e in self.checklist if e["id"] == symptom_id), None)

    @property
    def headline(self) -> str:
        """One line: the verdict and where the report is."""
        where = f"; report: {self.report}" if self.report else ""
        if not self.errors and not self.warnings:
            return f"summary-doctor: no problem found in {self.summary_dir}{where}"
        return f"summary-doctor: {self.errors} error(s), {self.warnings} warning(s) in {self.summary_dir}{where}"


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the child: the current one without MindSpore's protobuf override."""
    return {k: v for k, v in (os.environ if environ is None else environ).items() if k not in _DROPPED}


def verdict_from_json(summary_dir: str, data: dict[str, Any], *, report: str | None, text: str) -> Verdict:
    """A :class:`Verdict` from the JSON contract (findings of every run and the cross-run ones)."""
    runs = data.get("runs", [])
    findings = [f for run in runs for f in run.get("findings", [])] + list(data.get("findings", []))
    checklist = [entry for run in runs for entry in run.get("checklist", [])]
    return Verdict(summary_dir, tuple(findings), tuple(checklist), report, text, data)


def diagnose_summary(
    summary_dir: str | os.PathLike[str],
    *,
    report: str | os.PathLike[str] | None = REPORT_NAME,
    python: str | None = None,
    timeout: float | None = None,
) -> Verdict:
    """Diagnose ``summary_dir`` in a child interpreter and return the :class:`Verdict`.

    ``report``: the HTML report's path, relative paths inside ``summary_dir``
    (default ``summary-doctor.html`` there); None writes none. ``python``:
    the interpreter to run (default this one). Raises
    :class:`SummaryDoctorError` when the directory cannot be diagnosed.
    """
    directory = Path(summary_dir)
    html = None if report is None else (directory / report if not Path(report).is_absolute() else Path(report))
    with tempfile.TemporaryDirectory(prefix="summary-doctor-") as tmp:
        target = Path(tmp) / "report.json"
        command = [python or sys.executable, "-m", CHILD, str(directory), "--json", str(target)]
        if html is not None:
            command += ["--html", str(html)]
        try:
            done = subprocess.run(
                command, env=child_environment(), capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SummaryDoctorError(f"the diagnosis of {directory} could not run: {error}") from None
        if done.returncode != 0 or not target.exists():
            last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise SummaryDoctorError(f"the diagnosis of {directory} failed: {last}")
        data = json.loads(target.read_text(encoding="utf-8"))
    return verdict_from_json(str(directory), data, report=None if html is None else str(html), text=done.stdout)
