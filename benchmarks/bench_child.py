"""Benchmark: diagnosing inside a MindSpore process against diagnosing in a child interpreter.

``import mindspore`` sets ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``, so
a diagnosis run inside the training process reads with protobuf's
pure-Python backend. ``summary_doctor.mindspore`` runs it in a child
interpreter without that variable instead. This measures, on the reader
benchmark's file (``bench_reader.py`` builds it; ``--quick`` for the 6 MB one):

- (a) read + diagnose in a process with the pure-Python backend (what running
  inside the training process would cost);
- (b) the same with the fast backend (upb);
- (c) ``diagnose_summary`` from a process that has the variable set: the
  child's start-up, reading, diagnosis, and the text and JSON reports.

Each in a fresh process, best of ``--repeat``, printed as ratios to (b).

    python benchmarks/bench_child.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
IN_PROCESS = """
import json, sys, time
start = time.perf_counter()
from summary_doctor import diagnose, read_run
diagnose(read_run(sys.argv[1]))
from google.protobuf.internal import api_implementation
print(json.dumps({"seconds": time.perf_counter() - start, "backend": api_implementation.Type()}))
"""
CHILD = """
import json, sys, time
start = time.perf_counter()
from summary_doctor.mindspore.diagnosis import diagnose_summary
diagnose_summary(sys.argv[1], report=None)
print(json.dumps({"seconds": time.perf_counter() - start, "backend": "child"}))
"""


def _time(code: str, run: Path, backend: str) -> dict:
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": backend}
    done = subprocess.run([sys.executable, "-c", code, str(run)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the 6 MB file (150 steps) instead of the 110 MB one")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    steps = 150 if args.quick else 3000
    run = HERE / "data" / f"steps{steps}_hist34_healthy_mlp"
    if not run.exists():
        subprocess.run(
            [sys.executable, str(HERE / "bench_reader.py"), *(["--quick"] if args.quick else [])], check=True
        )
    size = sum(f.stat().st_size for f in run.iterdir()) / 1e6
    cases = {
        "(a) in-process, pure-Python protobuf": (IN_PROCESS, "python"),
        "(b) in-process, upb": (IN_PROCESS, "upb"),
        "(c) child from a MindSpore-like process": (CHILD, "python"),
    }
    best = {
        name: min(_time(code, run, backend)["seconds"] for _ in range(args.repeat))
        for name, (code, backend) in cases.items()
    }
    base = best["(b) in-process, upb"]
    print(f"{run.name}: {size:.1f} MB, best of {args.repeat} (imports included)")
    for name, seconds in best.items():
        print(f"{name:42} {seconds:7.2f} s  {seconds / base:5.2f}x (b)")


if __name__ == "__main__":
    main()
