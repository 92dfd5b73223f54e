"""``summary-doctor audit ROOT``: argument parsing and dispatch of the batch audit.

Exit status as for a report: 0 when nothing reaches ``--fail-on``, 1 when
something does (a run that could not be read or examined counts as an
error), 2 for a usage error (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from summary_doctor import __version__
from summary_doctor.cli import EXIT_FAIL, EXIT_OK, FAIL_ON, add_rule_options, guarded, tag_overrides
from summary_doctor.errors import SummaryDoctorError
from summary_doctor.records import BatchAudit

STARTED = time.perf_counter()
FORMATS = ("text", "json", "csv", "parquet", "html")
SUFFIXES = {".txt": "text", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".html": "html", ".htm": "html"}
DESCRIPTION = """\
Audit a folder of past runs: every run below ROOT (any depth) is diagnosed,
in parallel, and summarised as one row of a table: the worst severity per
symptom id, the counts, and the run's lineage (learning rate, batch size,
optimizer, epochs, loss function, dataset size, final loss and metrics).
Results are cached, so auditing the folder again reads only what changed.
"""
EPILOG = """\
examples:
  summary-doctor audit experiments/                     table on the terminal
  summary-doctor audit experiments/ -o audit/           audit/index.html + each run's report
  summary-doctor audit experiments/ -o runs.csv         (or .parquet, .json)
  summary-doctor audit /archive --scheduler tcp://head:8786   runs examined on a Dask cluster

For the full report of one run (or a directory named 'audit'): summary-doctor PATH (e.g. ./audit).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="summary-doctor audit",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("root", nargs="?", metavar="ROOT", help="a folder of runs (searched at any depth)")
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=FORMATS, help="default: from the -o suffix (DIR/ for html), else text")
    out.add_argument(
        "-o", "--output", metavar="FILE|DIR/", help="write to FILE; DIR/ writes DIR/index.html and each run's report"
    )
    out.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colours in the text table")
    out.add_argument(
        "--fail-on",
        choices=tuple(FAIL_ON),
        default="error",
        help="lowest severity that gives exit 1 (a run that cannot be read or examined counts as an error)",
    )
    work = parser.add_argument_group("work")
    work.add_argument("-j", "--jobs", type=int, metavar="N", help="worker processes (default: all cores; 1: none)")
    work.add_argument("--cache", metavar="PATH", help="the cache file (default: in the user's cache directory)")
    work.add_argument("--no-cache", action="store_true", help="read every run again, store nothing")
    work.add_argument("--scheduler", metavar="ADDRESS", help="send the runs to this Dask scheduler (tcp://host:8786)")
    add_rule_options(parser, info=False)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (it shows only on a terminal)")
    parser.add_argument("--no-verify", action="store_true", help="skip CRC checks (faster, less safe)")
    parser.add_argument("--timings", action="store_true", help="print where the time went on stderr")
    parser.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr")
    parser.add_argument("--version", action="version", version=f"summary-doctor {__version__}")
    return parser


def _target(args: argparse.Namespace) -> tuple[str, Path | None]:
    """The format, and the directory of the index when reports go beside it (``-o DIR/``)."""
    output = args.output
    as_dir = bool(output) and (output.endswith(("/", "\\")) or Path(output).is_dir())
    if as_dir:
        if args.format not in (None, "html"):
            raise SummaryDoctorError(f"-o {output}: a directory takes the HTML index and reports; use a file")
        return "html", Path(output)
    if args.format:
        fmt = args.format
    elif output:
        fmt = SUFFIXES.get(Path(output).suffix.lower(), "")
        if not fmt:
            raise SummaryDoctorError(f"-o {output}: cannot tell the format from its suffix; add --format")
    else:
        fmt = "text"
    if fmt == "parquet" and not output:
        raise SummaryDoctorError("--format parquet writes a binary file: add -o FILE.parquet")
    return fmt, None


def _settings(args: argparse.Namespace) -> dict:
    """Validated --set/--select/--ignore (this loads the rules, so only when they are given)."""
    if not (args.set or args.select or args.ignore):
        return {}
    from summary_doctor import engine

    engine.selected_ids(args.select, args.ignore)
    return engine.parse_settings(args.set)


def _exit_status(audit: BatchAudit, fail_on: str) -> int:
    threshold = FAIL_ON[fail_on]
    if threshold is None:
        return EXIT_OK
    if any(not r.diagnosed for r in audit.records):  # unreadable or failed: counts as an error
        return EXIT_FAIL
    findings = [*audit.findings, *(f for r in audit.records for f in r.findings)]
    return EXIT_FAIL if any(f.severity.rank >= threshold for f in findings) else EXIT_OK


def _write(fmt: str, audit: BatchAudit, args: argparse.Namespace, index_dir: Path | None) -> None:
    from summary_doctor.report import audit_output

    if fmt == "parquet":
        from summary_doctor.table import write_parquet

        write_parquet(audit, args.output)
        return
    color = fmt == "text" and audit_output.use_color(args.color, bool(args.output))
    text = audit_output.render(fmt, audit, color=color)
    if index_dir is not None:
        index_dir.mkdir(parents=True, exist_ok=True)
        (index_dir / "index.html").write_text(text, encoding="utf-8")
    elif args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _run(args: argparse.Namespace) -> int:
    from summary_doctor import progress
    from summary_doctor.audit import audit_runs

    if not args.root:
        raise SummaryDoctorError("audit needs a ROOT folder (for the report of a directory named audit: ./audit)")
    if args.jobs is not None and args.jobs < 1:
        raise SummaryDoctorError(f"--jobs {args.jobs}: needs at least 1")
    fmt, index_dir = _target(args)
    settings = _settings(args)
    with progress.run_bar(enabled=progress.wanted() and not args.no_progress) as bar:
        audit = audit_runs(
            args.root,
            jobs=args.jobs,
            cache=False if args.no_cache else (args.cache or True),
            scheduler=args.scheduler,
            select=args.select,
            ignore=args.ignore,
            settings=settings,
            tags=tag_overrides(args),
            verify=not args.no_verify,
            reports=index_dir,
            progress=bar.start,
        )
    written = time.perf_counter()
    _write(fmt, audit, args, index_dir)
    if args.timings:
        _print_timings(audit, time.perf_counter() - written)
    return _exit_status(audit, args.fail_on)


def _print_timings(audit: BatchAudit, output: float) -> None:
    stats = audit.stats
    parts = {**stats.seconds, "output": output, "total": time.perf_counter() - STARTED}
    counts = f"runs={stats.runs} cached={stats.cached} examined={stats.diagnosed} jobs={stats.jobs}"
    print("timings: " + " ".join(f"{k}={v:.3f}" for k, v in parts.items()) + " " + counts, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """``summary-doctor audit ...``: returns the exit status."""
    args = build_parser().parse_args(argv)
    return guarded(_run, args)
