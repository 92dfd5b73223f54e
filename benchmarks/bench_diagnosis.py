"""Benchmark: the whole ``summary-doctor`` command against the plain reading loop, as processes.

Both sides are whole processes started from the shell, process start
included: the baseline is ``bench_reader.plain_loop`` (CRC + parse of every
record, the least any reader does) in a fresh interpreter that imports only
protobuf and google-crc32c; against it run ``summary-doctor RUN --format
json`` and ``summary-doctor RUN -o report.html``. The three are interleaved,
repeated, and the best wall time of each is kept; ratios are of best times,
in wall time and in CPU time (user + system: less sensitive to other jobs).
Peak resident memory of each command is its own (``ru_maxrss`` of a child
process); the diagnosis's peak above the interpreter's resident size after
imports is measured in-process (Linux ``VmHWM``, reset after the imports).

    python benchmarks/bench_diagnosis.py              # the 3,000-step run of bench_reader.py
    python benchmarks/bench_diagnosis.py --scaling    # also 250 / 1,000 / 3,000 steps (1x, 4x, 12x)
    python benchmarks/bench_diagnosis.py --small-tags # also 100 parameters x 100 steps, with a profile

Where the time of one command goes, the decoders and the compiled kernel's
crossover: ``bench_phases.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_reader import DATA, FILE_NAME, build_file  # noqa: E402

# The plain loop of bench_reader.py, in a process that imports no more than it needs.
_PLAIN = textwrap.dedent(
    """
    import importlib.util, struct, sys
    import google_crc32c
    spec = importlib.util.spec_from_file_location("pb", sys.argv[2])
    pb = importlib.util.module_from_spec(spec); spec.loader.exec_module(pb)
    HEADER, CRC = struct.Struct("<QI"), struct.Struct("<I")
    def masked(data):
        crc = google_crc32c.value(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    data = open(sys.argv[1], "rb").read()
    parse, offset, touched = pb.Event.FromString, 0, 0
    while offset < len(data):
        length, length_crc = HEADER.unpack_from(data, offset)
        assert masked(data[offset : offset + 8]) == length_crc
        start = offset + 12
        payload = data[start : start + length]
        assert masked(payload) == CRC.unpack_from(data, start + length)[0]
        for value in parse(payload).summary.value:
            if value.HasField("histogram"):
                histogram = value.histogram
                touched += histogram.count + len(histogram.buckets)
                histogram.min, histogram.max
        offset = start + length + 4
    """
)
# What no diagnosis can remove: the interpreter, the imports of the json command, and reading the run.
_IMPORTS = "import summary_doctor.cli, summary_doctor.audit.examine, summary_doctor.report.json"
_FLOOR = _IMPORTS + "; import sys; from summary_doctor import read_run; read_run(sys.argv[1])"
_PEAK = textwrap.dedent(
    """
    import resource, subprocess, sys
    started = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    sys.exit(started.returncode)
    """
)
_DELTA = textwrap.dedent(
    """
    import json, sys
    import summary_doctor.audit.examine  # the rules and pandas: imports, not the diagnosis
    from summary_doctor.audit import audit
    from summary_doctor.report import render

    def status(field):
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) for line in lines if line.startswith(field + ":"))

    if sys.argv[3] == "numba":  # numba's import and machine code: a fixed cost, counted with the imports
        import numpy as np
        from summary_doctor.rules import _pair_measures as routes
        kernels, index = routes.compiled_kernels(2**62), np.zeros(1, dtype=np.int64)
        routes.run_kernel(kernels, [b""], index, index, np.empty(1), np.empty(1), np.empty(1, dtype=np.int8))
    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    result = audit(sys.argv[1])
    after_diagnosis = status("VmHWM")
    if sys.argv[2] == "html":
        render("html", result)
    peaks = {"before": before, "diagnosis": after_diagnosis, "html": status("VmHWM")}
    print(json.dumps(peaks | {"numba": "numba" in sys.modules}))
    """
)


def _commands(run_dir: Path, out: Path, before: Path | None = None) -> dict[str, list[str]]:
    python = sys.executable
    pb2 = REPO / "summary_doctor" / "reader" / "proto" / "summary_doctor_pb2.py"
    commands = {
        "plain": [python, "-c", _PLAIN, str(run_dir / FILE_NAME), str(pb2)],
        "imports": [python, "-c", _IMPORTS],
        "floor": [python, "-c", _FLOOR, str(run_dir)],
        "json": [python, "-m", "summary_doctor", str(run_dir), "--format", "json", "-o", str(out / "r.json")],
        "html": [python, "-m", "summary_doctor", str(run_dir), "-o", str(out / "r.html")],
    }
    if before is not None:  # the same commands from another checkout: -m puts the working folder first
        commands["json_before"] = [
            "env",
            "-C",
            str(before),
            f"PYTHONPATH={before}",
            "PYTHONDONTWRITEBYTECODE=1",
            *commands["json"],
        ]
        commands["html_before"] = [
            "env",
            "-C",
            str(before),
            f"PYTHONPATH={before}",
            "PYTHONDONTWRITEBYTECODE=1",
            *commands["html"],
        ]
    return commands


def _run(command: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, the process and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):  # 1: findings at --fail-on level
        raise SystemExit(f"{command[:4]} failed: {result.stderr[-2000:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def best_times(commands: dict[str, list[str]], repeat: int) -> dict[str, list[tuple[float, float]]]:
    """Every (wall, CPU) time of each command, the commands interleaved so that load hits all alike."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            times[name].append(_run(command))
    return times


def peak_rss_mb(command: list[str]) -> float:
    """Peak resident size of one command, in MB."""
    result = subprocess.run([sys.executable, "-c", _PEAK, *command], capture_output=True, text=True)
    return int(result.stdout.strip().splitlines()[-1]) * 1024 / 1e6


def peak_above_imports_mb(run_dir: Path, fmt: str, numba: bool = False) -> dict[str, float]:
    """Peak resident size of read + diagnosis (and the HTML report) above the size after imports, in MB.

    With ``numba``, numba and the compiled kernels are loaded before the
    baseline is taken: their ~95 MB are a fixed cost, like pandas' import.
    """
    command = [sys.executable, "-c", _DELTA, str(run_dir), fmt, "numba" if numba else "-"]
    kib = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    mb = {k: (kib[k] - kib["before"]) * 1024 / 1e6 for k in ("diagnosis", "html")}
    return mb | {"before": kib["before"] * 1024 / 1e6, "numba": kib["numba"]}


def ensure_run(steps: int, per_step: int, fixture: Path) -> Path:
    run_dir = DATA / f"steps{steps}_hist{per_step}_{fixture.name}"
    if not (run_dir / FILE_NAME).exists():
        print(f"building {run_dir.relative_to(REPO)} ...", flush=True)
        build_file(run_dir / FILE_NAME, fixture, steps=steps, per_step=per_step)
    return run_dir


def measure(run_dir: Path, repeat: int, *, html: bool = True, before: Path | None = None) -> dict[str, float]:
    size = (run_dir / FILE_NAME).stat().st_size
    with tempfile.TemporaryDirectory() as out:
        commands = _commands(run_dir, Path(out), before)
        if not html:
            commands = {k: v for k, v in commands.items() if not k.startswith("html")}
        times = best_times(commands, repeat)
        row = {"MB": size / 1e6, **{f"{k}_s": min(w for w, _ in v) for k, v in times.items()}}
        row |= {f"{k}_cpu": min(c for _, c in v) for k, v in times.items()}
        row |= {f"{k}_spread": max(w for w, _ in v) / row[f"{k}_s"] for k, v in times.items()}
        for name in commands:
            row[f"{name}_peak_MB"] = peak_rss_mb(commands[name])
    for name in commands:
        if name != "plain":
            row[f"{name}_ratio"] = row[f"{name}_s"] / row["plain_s"]
            row[f"{name}_cpu_ratio"] = row[f"{name}_cpu"] / row["plain_cpu"]
    delta = peak_above_imports_mb(run_dir, "html" if html else "json")
    row["diagnosis_delta_x"] = delta["diagnosis"] * 1e6 / size
    if html:
        row["html_delta_x"] = delta["html"] * 1e6 / size
    if delta["numba"]:  # the compiled route was taken: also with numba counted as an import
        compiled = peak_above_imports_mb(run_dir, "html" if html else "json", numba=True)
        row["numba_fixed_MB"] = compiled["before"] - delta["before"]
        row["diagnosis_delta_numba_x"] = compiled["diagnosis"] * 1e6 / size
        if html:
            row["html_delta_numba_x"] = compiled["html"] * 1e6 / size
    return row


def report(row: dict[str, float], title: str) -> None:
    print(f"\n{title}: {row['MB']:.1f} MB")
    spread, cpu = row["plain_spread"], row["plain_cpu"]
    print(f"  plain loop process   {row['plain_s']:7.3f} s  (worst/best {spread:.2f}; CPU {cpu:.3f} s)")
    for name, target in (("json", "2.5x, must be < 3x"), ("html", "4x, must be < 5x")):
        if f"{name}_s" in row:
            print(
                f"  summary-doctor {name:5s} {row[f'{name}_s']:7.3f} s  = {row[f'{name}_ratio']:.2f}x the plain loop"
                f"  (worst/best {row[f'{name}_spread']:.2f}; target {target}); peak RSS {row[f'{name}_peak_MB']:.0f} MB"
            )
            print(f"{'':22s}CPU {row[f'{name}_cpu']:7.3f} s  = {row[f'{name}_cpu_ratio']:.2f}x the plain loop's CPU")
    for name in ("json_before", "html_before"):
        if f"{name}_s" in row:
            seconds, ratio = row[f"{name}_s"], row[f"{name}_ratio"]
            cpu = row[f"{name}_cpu_ratio"]
            print(f"  before this change: {name[:4]} {seconds:7.3f} s = {ratio:.2f}x the plain loop (CPU {cpu:.2f}x)")
    floor, imports = row["floor_s"], row["imports_s"]
    print(
        f"  floor: python + imports {imports:.3f} s, + read_run {floor:.3f} s"
        f" = {row['floor_ratio']:.2f}x the plain loop (no diagnosis goes below it)"
    )
    print(f"  peak RSS above imports: diagnosis {row['diagnosis_delta_x']:.2f}x the file", end="")
    print(f", with the HTML report {row['html_delta_x']:.2f}x" if "html_delta_x" in row else "", "(target <= 2x)")
    if "numba_fixed_MB" in row:
        html = f", with the HTML report {row['html_delta_numba_x']:.2f}x" if "html_delta_numba_x" in row else ""
        print(
            f"  numba's import and machine code: {row['numba_fixed_MB']:.0f} MB, fixed; counted as an import, the"
            f" diagnosis peaks at {row['diagnosis_delta_numba_x']:.2f}x the file{html}"
        )


def profile_small_tags(run_dir: Path) -> str:
    """cProfile of reading + diagnosing the many-small-tags run: where its time goes."""
    from summary_doctor.audit import audit

    profiler = cProfile.Profile()
    profiler.enable()
    audit(run_dir)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
    return text.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixture", default=str(REPO / "fixtures" / "runs" / "healthy_mlp"))
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command; the best is kept")
    parser.add_argument("--scaling", action="store_true", help="also the run at 1x, 4x and 12x (250-3,000 steps)")
    parser.add_argument("--small-tags", action="store_true", help="also 100 parameters x 100 steps, profiled")
    parser.add_argument("--json", metavar="FILE", help="write the measured rows to FILE")
    parser.add_argument("--before", metavar="DIR", help="also time the commands of another checkout (e.g. main)")
    args = parser.parse_args(argv)
    fixture = Path(args.fixture)
    rows = {}
    main_run = ensure_run(3000, 34, fixture)
    before = Path(args.before).resolve() if args.before else None
    rows["3000 steps x 34"] = measure(main_run, args.repeat, before=before)
    report(rows["3000 steps x 34"], "3,000 steps x 34 histograms")
    if args.scaling:
        print("\nscaling (json; time and peak memory should grow linearly with the size):")
        print("  steps   MB     plain s   json s   json/plain   json peak MB   peak above imports / file")
        for steps in (250, 1000, 3000):
            row = measure(ensure_run(steps, 34, fixture), args.repeat, html=False)
            rows[f"scaling {steps}"] = row
            print(
                f"  {steps:5d} {row['MB']:6.1f} {row['plain_s']:9.3f} {row['json_s']:8.3f} {row['json_ratio']:10.2f}x"
                f" {row['json_peak_MB']:12.0f} {row['diagnosis_delta_x']:14.2f}x"
            )
    if args.small_tags:
        small = ensure_run(100, 100, fixture)
        rows["100 steps x 100"] = measure(small, args.repeat)
        report(rows["100 steps x 100"], "many small tags: 100 parameters x 100 steps")
        print(profile_small_tags(small))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main())
