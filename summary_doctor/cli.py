"""Command line: argument parsing and dispatch only.

Exit status: 0 when nothing reaches ``--fail-on``, 1 when something does,
2 for a usage error or unreadable input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from summary_doctor import __version__
from summary_doctor.errors import SummaryDoctorError
from summary_doctor.reader.files import find_runs
from summary_doctor.reader.run import read_run
from summary_doctor.report.inventory import inventory_lines

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="summary-doctor",
        description="Diagnose MindSpore training runs from their summary directories.",
    )
    parser.add_argument("path", help="a summary directory, a folder of runs (searched at any depth), or one file")
    parser.add_argument("--no-verify", action="store_true", help="skip CRC checks (faster, less safe)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _relative_name(run_path: Path, root: Path) -> str:
    try:
        relative = run_path.relative_to(root)
    except ValueError:
        return str(run_path)
    return str(relative) if str(relative) != "." else "."


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    root = Path(args.path)
    try:
        run_paths = find_runs(root)
        if not run_paths:
            raise SummaryDoctorError(f"{root}: no MindSpore summary files found (looked at any depth)")
        for run_path in run_paths:
            base = root if root.is_dir() else root.parent
            run = read_run(run_path, name=_relative_name(run_path, base), verify=not args.no_verify)
            print("\n".join(inventory_lines(run)))
    except SummaryDoctorError as error:
        print(f"summary-doctor: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("summary-doctor: interrupted", file=sys.stderr)
        return 130
    return EXIT_OK
