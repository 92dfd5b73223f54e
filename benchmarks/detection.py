"""Detection benchmark: every fixture through the whole CLI, counted per symptom id.

For each warning/error id, how many fault fixtures it fires on (and whether
the manifest expected it there), how many it misses where it was expected,
and how many healthy fixtures it fires on. A threshold change shows its
trade-off in one table: a healthy column above 0 is a false alarm, a missed
column above 0 a lost detection.

    python benchmarks/detection.py                      # the table, then every mismatch
    python benchmarks/detection.py --save before.json   # keep the per-fixture ids
    python benchmarks/detection.py --compare before.json  # and list what changed since

Expectations come from ``fixtures/expected.json`` (the same manifest
``tests/test_fixture_table.py`` asserts). Fixtures are diagnosed one after
the other, each with ``summary-doctor RUN --format json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from summary_doctor.cli import main as cli_main
from summary_doctor.reader.files import find_runs

REPO = Path(__file__).resolve().parent.parent
RUNS = REPO / "fixtures" / "runs"
MANIFEST = REPO / "fixtures" / "expected.json"


@dataclass
class Tally:
    """Fire counts of one symptom id over the fixtures."""

    expected_hits: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    healthy: list[str] = field(default_factory=list)


def problem_ids(run_dir: Path) -> dict[str, str]:
    """Warning/error ids the CLI reports on one run, with the first title of each."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        status = cli_main([str(run_dir), "--format", "json", "-o", str(out), "--fail-on", "never", "--no-progress"])
        if status != 0:
            raise SystemExit(f"summary-doctor failed on {run_dir} (exit {status})")
        (run,) = json.loads(out.read_text(encoding="utf-8"))["runs"]
    found: dict[str, str] = {}
    for finding in run["findings"]:
        if finding["severity"] in ("warning", "error"):
            found.setdefault(finding["id"], finding["title"])
    return found


def tally(manifest: dict[str, dict], results: dict[str, dict[str, str]]) -> dict[str, Tally]:
    """Per id: where it fired as expected, where it was missed, where it fired unexpectedly."""
    table: dict[str, Tally] = {}
    for name, found in results.items():
        entry = manifest[name]
        expected = set(entry["expected"])
        for symptom in expected | set(found):
            row = table.setdefault(symptom, Tally())
            if entry["kind"] == "healthy":
                row.healthy.append(name)
            elif symptom in expected and symptom in found:
                row.expected_hits.append(name)
            elif symptom in expected:
                row.missed.append(name)
            else:
                row.unexpected.append(name)
    return dict(sorted(table.items()))


def render(table: dict[str, Tally], n_fault: int, n_healthy: int) -> str:
    header = (
        "| symptom id | fault: fires as expected | fault: missed | fault: fires, not expected "
        f"| healthy: fires (of {n_healthy}) |"
    )
    lines = [f"{n_fault} fault fixtures, {n_healthy} healthy fixtures", "", header, "|---|---|---|---|---|"]
    for symptom, row in table.items():
        lines.append(
            f"| {symptom} | {len(row.expected_hits)} | {len(row.missed)} | {len(row.unexpected)} | {len(row.healthy)} |"
        )
    return "\n".join(lines)


def mismatches(manifest: dict[str, dict], results: dict[str, dict[str, str]]) -> list[str]:
    lines = []
    for name, found in results.items():
        expected = set(manifest[name]["expected"])
        for symptom in sorted(set(found) - expected):
            lines.append(f"  {name}: unexpected {symptom}: {found[symptom]}")
        for symptom in sorted(expected - set(found)):
            lines.append(f"  {name}: missed {symptom}")
    return lines


def changes(before: dict[str, list[str]], after: dict[str, dict[str, str]]) -> list[str]:
    lines = []
    for name in sorted(set(before) | set(after)):
        old, new = set(before.get(name, [])), set(after.get(name, {}))
        if old != new:
            gained, lost = sorted(new - old), sorted(old - new)
            lines.append(f"  {name}: +{', '.join(gained) or '-'}  -{', '.join(lost) or '-'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--save", metavar="FILE", help="write each fixture's warning/error ids to FILE (JSON)")
    parser.add_argument("--compare", metavar="FILE", help="list fixtures whose ids changed since a --save FILE")
    parser.add_argument("names", nargs="*", help="only these fixtures (default: all)")
    args = parser.parse_args(argv)
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))["fixtures"]
    on_disk = sorted(p.relative_to(RUNS).as_posix() for p in find_runs(RUNS))
    unlisted = [n for n in on_disk if n not in manifest]
    if unlisted:
        print(f"fixtures without a manifest row (skipped): {', '.join(unlisted)}", file=sys.stderr)
    names = [n for n in (args.names or on_disk) if n in manifest]
    results = {}
    for name in names:
        results[name] = problem_ids(RUNS / name)
        print(f"  {name}: {', '.join(sorted(results[name])) or '-'}", file=sys.stderr, flush=True)
    n_fault = sum(manifest[n]["kind"] == "fault" for n in names)
    print(render(tally(manifest, results), n_fault, len(names) - n_fault))
    wrong = mismatches(manifest, results)
    print("\nmismatches against fixtures/expected.json:" if wrong else "\nno mismatch against fixtures/expected.json")
    print("\n".join(wrong))
    if args.compare:
        before = json.loads(Path(args.compare).read_text(encoding="utf-8"))
        print(f"\nchanged since {args.compare}:")
        print("\n".join(changes(before, results)) or "  nothing")
    if args.save:
        saved = {name: sorted(found) for name, found in results.items()}
        Path(args.save).write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
