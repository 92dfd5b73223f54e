"""Benchmark: where the time of one ``summary-doctor`` command goes, and what the compiled kernel buys.

    python benchmarks/bench_phases.py              # phases of `summary-doctor RUN --format json` (110 MB run)
    python benchmarks/bench_phases.py --html       # the same for `-o report.html`
    python benchmarks/bench_phases.py --kernels    # bucket decoders and CDF-distance routes, in-process
    python benchmarks/bench_phases.py --crossover  # json with numba against without, at several run sizes

Phases are timed in a fresh interpreter, as the command runs them:
interpreter start, imports, ``read_run``, each rule, the rest of the
diagnosis (cause links, checklist), the output, and the exit. numba's
import and the loading of its cached machine code happen inside the
weight-update rule; they are also timed apart. The crossover runs the
whole command with ``SUMMARY_DOCTOR_NUMBA=0`` (numpy route) and ``=1``
(compiled route whatever the size), interleaved, best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_diagnosis import ensure_run  # noqa: E402
from bench_reader import FILE_NAME  # noqa: E402

_PHASES = textwrap.dedent(
    """
    import json, os, sys, time
    start = time.perf_counter()
    import summary_doctor.audit.examine, summary_doctor.cli, summary_doctor.report.json
    from summary_doctor import engine
    from summary_doctor.audit import examine
    from summary_doctor.audit.job import Job
    from summary_doctor.findings import AuditResult
    from summary_doctor.reader.run import read_run
    from summary_doctor.report import render
    times = {"imports": time.perf_counter() - start}
    rules, run_rule = {}, engine._run_rule

    def timed(rule, *args):
        begin = time.perf_counter()
        outcome = run_rule(rule, *args)
        rules[rule.__name__] = time.perf_counter() - begin
        return outcome

    engine._run_rule = timed
    with examine.python_strings():  # as the command examines a run
        mark = time.perf_counter()
        run = read_run(sys.argv[1])
        times["read_run"] = time.perf_counter() - mark
        mark = time.perf_counter()
        diagnosis = engine.diagnose(run)
        times["diagnose"] = time.perf_counter() - mark
        times["  of which the rules"] = sum(rules.values())
        mark = time.perf_counter()
        examine._record(diagnosis, Job.of())
        times["audit record (facts, cross-run digest)"] = time.perf_counter() - mark
    result = AuditResult(root=sys.argv[1])
    result.diagnoses.append(diagnosis)
    if sys.argv[2] == "html":
        mark = time.perf_counter()
        import matplotlib.figure, summary_doctor.report.plots
        times["matplotlib import"] = time.perf_counter() - mark
    mark = time.perf_counter()
    render(sys.argv[2], result)
    times[f"render {sys.argv[2]}"] = time.perf_counter() - mark
    times["numba loaded"] = "numba" in sys.modules
    print(json.dumps({"times": times, "rules": rules, "total": time.perf_counter() - start}), flush=True)
    os._exit(0)  # as the command does: no teardown
    """
)
_NUMBA_LOAD = textwrap.dedent(
    """
    import json, time
    import numpy as np
    import summary_doctor.audit.examine
    from summary_doctor.rules import _pair_measures as routes
    start = time.perf_counter()
    import numba
    imported = time.perf_counter()
    kernels, index = routes.compiled_kernels(2**62), np.zeros(1, dtype=np.int64)
    routes.run_kernel(kernels, [b""], index, index, np.empty(1), np.empty(1), np.empty(1, dtype=np.int8))
    print(json.dumps({"import": imported - start, "load": time.perf_counter() - imported}))
    """
)


def _child(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[dict, float]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True, cwd=REPO
    )
    return json.loads(result.stdout.strip().splitlines()[-1]), time.perf_counter() - start


def phases(run_dir: Path, fmt: str, repeat: int) -> None:
    """Each phase's best time over ``repeat`` fresh interpreters, with interpreter start and exit around them."""
    best: dict[str, float] = {}
    rules: dict[str, float] = {}
    outside = float("inf")
    for _ in range(repeat):
        measured, wall = _child(_PHASES, str(run_dir), fmt)
        for name, seconds in measured["times"].items():
            best[name] = seconds if isinstance(seconds, bool) else min(best.get(name, seconds), seconds)
        for name, seconds in measured["rules"].items():
            rules[name] = min(rules.get(name, seconds), seconds)
        outside = min(outside, wall - measured["total"])
    bare = min(_time([sys.executable, "-c", "pass"]) for _ in range(repeat))
    numba = [_child(_NUMBA_LOAD)[0] for _ in range(repeat)]
    print(f"\nphases of the {fmt} command on {run_dir.name}, best of {repeat} fresh interpreters:")
    print(f"  {'interpreter start (python -c pass)':38s} {bare:6.3f} s")
    for name, seconds in best.items():
        if not isinstance(seconds, bool):
            print(f"  {name:38s} {seconds:6.3f} s")
    print(f"  {'interpreter start, exit, the rest':38s} {outside:6.3f} s")
    print(f"  rules (numba loaded during them: {best['numba loaded']}):")
    for name, seconds in sorted(rules.items(), key=lambda item: -item[1])[:8]:
        print(f"    {name:36s} {seconds:6.3f} s")
    print(f"    {'the other ' + str(len(rules) - 8) + ' rules':36s} {sum(sorted(rules.values())[:-8]):6.3f} s")
    load = min(n["load"] for n in numba)
    print(f"  numba import {min(n['import'] for n in numba):.3f} s, loading its cached kernels {load:.3f} s")


def _time(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
    return time.perf_counter() - start


def kernels(run_dir: Path, repeat: int) -> None:
    """Bucket decoders and the CDF-distance routes on the weight histograms of a run, in this process."""
    import numpy as np

    from summary_doctor import read_run
    from summary_doctor.reader.buckets import decode_table, decode_with_protobuf
    from summary_doctor.reader.proto import summary_doctor_pb2 as pb
    from summary_doctor.rules import _pair_measures as routes
    from summary_doctor.rules._bucket_stats import chunks
    from summary_doctor.rules._histograms import TagKind, rows_of_kind

    run = read_run(run_dir)
    rows = rows_of_kind(run, TagKind.WEIGHT)
    encoded = list(rows["encoded"])
    sizes = np.array([len(e) for e in encoded])
    parts = [[encoded[i] for i in part] for part in chunks(sizes, routes.NUMPY_CHUNK_BYTES)]
    tag = rows["tag"].to_numpy()
    first = np.flatnonzero(tag[1:] == tag[:-1])
    compiled = routes.compiled_kernels(2**62)
    decoders = {
        "numpy decode_table (4 MB parts)": lambda: [decode_table(part) for part in parts],
        "protobuf + copy": lambda: [decode_with_protobuf(e) for e in encoded],
        "upb parse only": lambda: [pb.Summary.Histogram.FromString(e) for e in encoded],
    }
    if compiled is not None:
        decoders["numba decode (4 MB parts)"] = lambda: [compiled.decode(*routes.joined(part)) for part in parts]
    _compare(f"decoding {len(encoded)} weight histograms ({sizes.sum() / 1e6:.0f} MB)", decoders, repeat)
    measures = {"numpy route": lambda: routes.numpy_measures(run, rows, first)}
    if compiled is not None:
        array = rows["encoded"].to_numpy()
        for threads in (1, 2):
            measures[f"compiled, {threads} thread(s)"] = lambda n=threads: _compiled(routes, n, run, rows, array, first)
    _compare(f"CDF distance + mean|w| of {len(first)} consecutive pairs", measures, repeat)


def _compiled(routes, threads: int, run, rows, encoded, first):
    routes.THREADS = threads
    import numpy as np

    sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    return routes._compiled(routes.compiled_kernels(2**62), run, rows, encoded, sizes, first)


def _compare(title: str, functions: dict, repeat: int) -> None:
    best = {name: float("inf") for name in functions}
    for function in functions.values():
        function()  # warm: compiled kernels loaded, caches filled
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    reference = next(iter(best.values()))
    print(f"\n{title}, best of {repeat}:")
    for name, seconds in best.items():
        print(f"  {name:34s} {seconds:7.3f} s  = {reference / seconds:5.2f}x as fast as the first")


def crossover(fixture: Path, repeat: int, steps: list[int]) -> None:
    """The json command with numba (forced) against without, whole processes, at several run sizes."""
    print(f"\ncrossover: `summary-doctor RUN --format json`, numpy route against compiled, best of {repeat}")
    print("  steps      MB   numpy s   compiled s   compiled / numpy")
    for count in steps:
        run_dir = ensure_run(count, 34, fixture)
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "summary_doctor", str(run_dir), "--format", "json", "-o", f"{out}/r.json"]
            routes = (("numpy", "0"), ("compiled", "1"))
            envs = {name: os.environ | {"SUMMARY_DOCTOR_NUMBA": value} for name, value in routes}
            best = {name: float("inf") for name in envs}
            for _ in range(repeat):
                for name, env in envs.items():
                    best[name] = min(best[name], _time(command, env))
        size = (run_dir / FILE_NAME).stat().st_size / 1e6
        ratio = best["compiled"] / best["numpy"]
        print(f"  {count:5d} {size:7.1f} {best['numpy']:9.3f} {best['compiled']:12.3f} {ratio:14.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixture", default=str(REPO / "fixtures" / "runs" / "healthy_mlp"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--html", action="store_true", help="also the phases of the HTML report")
    parser.add_argument("--kernels", action="store_true", help="also decoders and distance routes, in-process")
    parser.add_argument("--crossover", action="store_true", help="also numpy against compiled at several sizes")
    parser.add_argument("--steps", default="50,100,200,400,800,3000", help="run sizes for --crossover (steps)")
    args = parser.parse_args(argv)
    fixture = Path(args.fixture)
    main_run = ensure_run(3000, 34, fixture)
    phases(main_run, "json", args.repeat)
    if args.html:
        phases(main_run, "html", args.repeat)
    if args.kernels:
        kernels(main_run, args.repeat)
    if args.crossover:
        crossover(fixture, args.repeat, [int(s) for s in args.steps.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
