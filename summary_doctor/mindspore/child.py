"""``python -m summary_doctor.mindspore.child DIR``: the diagnosis run for a training process.

Runs in a fresh interpreter started by :mod:`summary_doctor.mindspore.diagnosis`
with a clean environment, so the reader gets protobuf's fast backend even
though the training process imported MindSpore (which forces the pure-Python
one). Reads the directory once, prints the terminal report, and writes the
JSON (for the training process to act on) and HTML reports. Never imports
MindSpore.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from summary_doctor.errors import SummaryDoctorError

EXIT_OK, EXIT_USAGE = 0, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m summary_doctor.mindspore.child")
    parser.add_argument("path", help="the summary directory of the training")
    parser.add_argument("--json", metavar="FILE", help="write the JSON report here")
    parser.add_argument("--html", metavar="FILE", help="write the HTML report here")
    parser.add_argument("--color", action="store_true", help="ANSI colours in the terminal report")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Diagnose ``path``; print the text report; write the asked reports. 2 on unreadable input."""
    from summary_doctor.audit import audit
    from summary_doctor.report import render

    args = _parser().parse_args(argv)
    try:
        result = audit(args.path)
    except SummaryDoctorError as error:
        print(f"summary-doctor: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    for fmt, target in (("json", args.json), ("html", args.html)):
        if target:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            Path(target).write_text(render(fmt, result), encoding="utf-8")
    sys.stdout.write(render("text", result, color=args.color))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
