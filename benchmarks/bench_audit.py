"""Batch audit benchmark: a folder of 1,000 small real runs, first audit and cached audit, whole process.

Builds (once) ``benchmarks/data/audit_<N>/``: copies of the fixture runs under
``experiments/2026-MM-DD/run_NNNN/`` and, for the two-rank fixture,
``experiments/2026-MM-DD/job_NNNN/rank_{0,1}/``. Then, each as its own
process, as a user would run it (``--format json`` to a file):

1. the first audit (an empty cache, ``--jobs`` default: every core);
2. the same audit again (everything from the cache);
3. on a smaller tree: the report command of before the audit existed
   (``summary-doctor ROOT --format json``: one run after the other, no
   cache) as the baseline, and the audit with ``--jobs 1, 2, 3`` (no cache).

It prints runs per second, each as a ratio to the baseline measured in the
same run, and where the time went (``--timings``): start-up (process
start to the audit's first line: interpreter and imports), the walk, cache
look-ups, examining (wall), reading and rules (CPU seconds summed over the
workers), output. Numbers vary with machine load: compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures" / "runs"
DATA = HERE / "data"


def fixture_runs() -> list[Path]:
    return sorted(p.parent for p in FIXTURES.rglob("*_MS*"))


def build(root: Path, count: int) -> Path:
    """``count`` runs under ``root`` (kept from one benchmark to the next; delete the folder to rebuild)."""
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    sources = fixture_runs()
    made, i = 0, 0
    while made < count:
        source = sources[i % len(sources)]
        day = f"2026-{1 + i % 12:02d}-{1 + (i // 12) % 28:02d}"
        if source.parent.name == "ranks":  # both ranks of one job, together
            if source.name != "rank_0" or made + 2 > count:
                i += 1
                continue
            for rank in ("rank_0", "rank_1"):
                shutil.copytree(source.parent / rank, root / "experiments" / day / f"job_{i:04d}" / rank)
            made += 2
        else:
            shutil.copytree(source, root / "experiments" / day / f"run_{i:04d}")
            made += 1
        i += 1
    (root / ".complete").touch()
    return root


def timed(command: list[str]) -> tuple[float, dict[str, float]]:
    """Wall seconds of a whole process, and its ``--timings`` line as numbers."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    match = re.search(r"^timings: (.*)$", done.stderr, flags=re.M)
    parts = dict(item.split("=") for item in match.group(1).split()) if match else {}
    return wall, {k: float(v) for k, v in parts.items()}


def audit_command(root: Path, out: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "summary_doctor", "audit", str(root), "--format", "json", "-o", str(out),
            "--timings", "--no-progress", *options]  # fmt: skip


def split(wall: float, t: dict[str, float]) -> str:
    startup = wall - t.get("total", wall)
    return (
        f"start-up {startup:.2f} s, walk {t['walk']:.2f} s, cache {t['cache']:.2f} s, "
        f"examine {t['examine']:.2f} s wall (read {t['read']:.1f} s + rules {t['rules']:.1f} s CPU over "
        f"{t['jobs']:.0f} worker(s), {1000 * (t['read'] + t['rules']) / max(t['examined'], 1):.0f} ms CPU a run), "
        f"cross-run {t['cross']:.2f} s, output {t['output']:.2f} s"
    )


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""


def scaling(small: Path, runs: int, jobs_list: list[int], out: Path) -> float:
    """The baseline (the report command, one run after the other) and the audit at each --jobs; no cache."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "summary_doctor", str(small), "--format", "json", "-o", str(out)])
    base = runs / (time.perf_counter() - started)
    print(f"\n{runs} runs; baseline, summary-doctor ROOT --format json (sequential, no cache): {base:.1f} runs/s")
    for jobs in jobs_list:
        wall, t = timed(audit_command(small, out, "--no-cache", "--jobs", str(jobs)))
        rate = runs / wall
        print(f"audit --jobs {jobs}: {rate:5.1f} runs/s = {rate / base:.2f}x baseline ({load()}); {split(wall, t)}")
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="runs in the big tree (default 1000)")
    parser.add_argument("--scaling-runs", type=int, default=120, help="runs for the baseline and --jobs scaling")
    parser.add_argument("--jobs", type=int, nargs="*", default=[1, 2, 3], help="--jobs values to compare")
    parser.add_argument("--no-scaling", action="store_true", help="only the first and the cached audit")
    args = parser.parse_args()
    big = build(DATA / f"audit_{args.runs}", args.runs)
    small = build(DATA / f"audit_{args.scaling_runs}", args.scaling_runs)
    print(f"{os.cpu_count()} cores, {load()}; trees in {DATA}")
    with tempfile.TemporaryDirectory() as scratch:
        out, cache = Path(scratch) / "audit.json", Path(scratch) / "cache.sqlite"
        base = None if args.no_scaling else scaling(small, args.scaling_runs, args.jobs, out)
        print(f"\n{args.runs} runs, --jobs default (every core):")
        wall, t = timed(audit_command(big, out, "--cache", str(cache)))
        first = args.runs / wall
        versus = f" = {first / base:.2f}x baseline" if base else ""
        print(f"first audit:  {first:6.1f} runs/s ({wall:.1f} s){versus} ({load()}); {split(wall, t)}")
        wall, t = timed(audit_command(big, out, "--cache", str(cache)))
        again = args.runs / wall
        print(f"cached audit: {again:6.1f} runs/s ({wall:.2f} s) = {again / first:.1f}x the first ({load()}); "
              f"{split(wall, t)}")  # fmt: skip
        print(f"JSON written: {out.stat().st_size / 1e6:.1f} MB; cache file: {cache.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
