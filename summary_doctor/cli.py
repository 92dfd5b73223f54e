"""Command line: argument parsing and dispatch only.

Exit status: 0 when nothing reaches ``--fail-on``, 1 when something does,
2 for a usage error or unreadable input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from summary_doctor import __version__
from summary_doctor.errors import SummaryDoctorError
from summary_doctor.findings import AuditResult

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
FORMATS = ("text", "json", "markdown", "html")
FAIL_ON = {"error": 2, "warning": 1, "info": 0, "never": None}


def add_rule_options(parser: argparse.ArgumentParser, *, info: bool) -> None:
    """--select/--ignore/--set and the tag overrides, shared by the report and the audit."""
    rules = parser.add_argument_group("rules")
    rules.add_argument("--select", action="append", default=[], metavar="ID", help="only these ids or groups")
    rules.add_argument("--ignore", action="append", default=[], metavar="ID", help="skip these ids or groups")
    rules.add_argument("--set", action="append", default=[], metavar="ID.FIELD=VALUE", help="change a threshold")
    if info:
        rules.add_argument("--list-rules", action="store_true", help="list symptom ids and their rules, then exit")
        rules.add_argument("--explain", metavar="ID", help="print what a symptom id checks and why, then exit")
    tags = parser.add_argument_group("tags (found by pattern unless given)")
    for option, dest in (
        ("--loss-tag", "loss"),
        ("--eval-loss-tag", "eval_loss"),
        ("--acc-tag", "accuracy"),
        ("--eval-acc-tag", "eval_accuracy"),
        ("--lr-tag", "learning_rate"),
        ("--input-tag", "input"),
        ("--label-tag", "label"),
        ("--eval-input-tag", "eval_input"),
        ("--eval-label-tag", "eval_label"),
    ):
        tags.add_argument(option, dest=f"tag_{dest}", metavar="TAG")


def tag_overrides(args: argparse.Namespace) -> dict[str, str | None]:
    """The tag options as TagOverrides field -> tag."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("tag_")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="summary-doctor",
        description="Diagnose MindSpore training runs from their summary directories.",
        epilog="To audit a folder of many runs into one table (parallel, cached), see: summary-doctor audit --help",
    )
    parser.add_argument(
        "path", nargs="?", help="a summary directory, a folder of runs (searched at any depth), or one file"
    )
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=FORMATS, help="report format (default: from the -o suffix, else text)")
    out.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    out.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colours in the text report (auto: on a terminal, unless NO_COLOR is set)",
    )
    out.add_argument(
        "--fail-on", choices=tuple(FAIL_ON), default="error", help="lowest severity that makes the exit status 1"
    )
    add_rule_options(parser, info=True)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar while reading large runs")
    parser.add_argument("--no-verify", action="store_true", help="skip CRC checks (faster, less safe)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _format(args: argparse.Namespace) -> str:
    from summary_doctor.report import SUFFIXES

    if args.format:
        return args.format
    if args.output:
        suffix = Path(args.output).suffix.lower()
        if suffix not in SUFFIXES:
            raise SummaryDoctorError(f"-o {args.output}: cannot tell the format from {suffix!r}; add --format")
        return SUFFIXES[suffix]
    return "text"


def _render(fmt: str, result: AuditResult, color: bool) -> str:
    from summary_doctor.report import FORMATS as MODULES
    from summary_doctor.report import render

    try:
        return render(fmt, result, color=color)
    except ModuleNotFoundError as error:
        if error.name == MODULES[fmt]:
            raise SummaryDoctorError(f"--format {fmt}: this installation has no {fmt} report") from None
        raise


def _use_color(args: argparse.Namespace, fmt: str) -> bool:
    if fmt != "text" or args.color == "never":
        return False
    if args.color == "always":
        return True
    return not args.output and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _exit_status(result: AuditResult, fail_on: str) -> int:
    threshold = FAIL_ON[fail_on]
    if threshold is None:
        return EXIT_OK
    findings = [*result.findings, *(f for d in result.diagnoses for f in d.findings)]
    return EXIT_FAIL if any(f.severity.rank >= threshold for f in findings) else EXIT_OK


def _info(args: argparse.Namespace) -> str | None:
    """The text of --list-rules or --explain, or None when neither was asked."""
    from summary_doctor import engine

    if args.explain:
        return engine.explain(args.explain)
    if args.list_rules:
        rows = engine.rule_table()
        width = max(len(row[0]) for row in rows)
        name_width = max(len(row[1]) for row in rows)
        return "\n".join(f"{i:<{width}}  {name:<{name_width}}  {summary}" for i, name, summary in rows) + "\n"
    return None


def _runs_below(path: str) -> list[Path]:
    from summary_doctor.audit import runs_below

    try:
        return runs_below(path)
    except SummaryDoctorError as error:
        if Path(path).name == "audit" and not Path(path).exists():
            raise SummaryDoctorError(f"{error} (to audit a folder of runs: summary-doctor audit ROOT)") from None
        raise


def _run(args: argparse.Namespace) -> int:
    from summary_doctor import engine, progress
    from summary_doctor.audit import audit
    from summary_doctor.rules.base import Context, TagOverrides

    info = _info(args)
    if info is not None:
        sys.stdout.write(info)
        return EXIT_OK
    if not args.path:
        raise SummaryDoctorError("a PATH is needed (or --list-rules / --explain ID)")
    fmt = _format(args)
    settings = engine.parse_settings(args.set)
    engine.selected_ids(args.select, args.ignore)  # validates before any reading
    overrides = TagOverrides(**tag_overrides(args))
    run_paths = _runs_below(args.path)
    show_bar = progress.wanted() and not args.no_progress
    with progress.byte_progress(progress.run_bytes(run_paths) if show_bar else 0, enabled=show_bar) as advance:
        result = audit(
            args.path,
            run_paths=run_paths,
            select=args.select,
            ignore=args.ignore,
            settings=settings,
            context=Context(tags=overrides),
            verify=not args.no_verify,
            progress=advance,
        )
    text = _render(fmt, result, _use_color(args, fmt))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return _exit_status(result, args.fail_on)


def guarded(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command: logging on stderr, one line and exit 2 for a user mistake, 130 on Ctrl-C."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return run(args)
    except SummaryDoctorError as error:
        print(f"summary-doctor: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"summary-doctor: error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("summary-doctor: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``summary-doctor``; returns the exit status.

    ``summary-doctor audit ...`` (the word first) is the batch audit; any
    other first argument is the PATH of a report (``./audit`` for a
    directory named audit).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["audit"]:
        from summary_doctor import cli_audit

        return cli_audit.main(argv[1:])
    args = build_parser().parse_args(argv)
    return guarded(_run, args)


def run() -> None:
    """The ``summary-doctor`` command and ``python -m summary_doctor``: :func:`main`, then a quick exit.

    Once the output is written, tearing the interpreter down would free
    every object of the run one by one (frames of 100,000 histograms, and
    numba's registries when it was loaded): 0.1 to 0.35 s on the benchmark
    run, for memory the operating system takes back at once. So the streams
    are flushed and the process ends with ``os._exit``. Not after
    ``summary-doctor audit``, whose pools, cluster clients and cache may
    still have exit handlers to run.
    """
    status = main()
    if sys.argv[1:2] == ["audit"]:
        sys.exit(status)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: nothing more can be said
        pass
    logging.shutdown()
    os._exit(status)
