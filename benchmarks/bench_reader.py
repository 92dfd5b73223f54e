"""Benchmark: ``read_run`` against a plain CRC + parse loop on a large summary file.

The file is built from real records: the parameter histograms and the loss
scalar of a fixture run are repeated with shifted steps (34 histograms a
step by default), and every record is framed again with ``frame_record`` so
both CRCs are valid. Both measurements run in this process, on the same
file, with the same protobuf backend; each is repeated and the best time is
kept. Peak memory of ``read_run`` is measured in a fresh subprocess.

    python benchmarks/bench_reader.py            # ~120 MB, 3,000 steps
    python benchmarks/bench_reader.py --quick    # ~6 MB, 150 steps
    python benchmarks/bench_reader.py --mindinsight /path/to/mindinsight-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import google_crc32c
from google.protobuf.internal import api_implementation

from summary_doctor import read_run
from summary_doctor.reader.files import classify, run_files
from summary_doctor.reader.proto import summary_doctor_pb2 as pb
from summary_doctor.reader.records import FramingReport, frame_record, iter_records, masked_crc32c

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"
FILE_NAME = "events.out.events.summary.1700000000.0.bench_MS"
_HEADER = struct.Struct("<QI")
_CRC = struct.Struct("<I")


def _fixture_samples(run_dir: Path) -> tuple[list[list[pb.Summary.Value]], list[pb.Summary.Value]]:
    """Per recorded step, the parameter histograms (``*/auto``) and the loss scalar of a fixture run."""
    steps: list[list[pb.Summary.Value]] = []
    losses: list[pb.Summary.Value] = []
    for run_file in run_files(run_dir):
        if run_file.kind.value != "summary":
            continue
        with open(run_file.path, "rb") as stream:
            for _, payload in iter_records(stream, FramingReport()):
                event = pb.Event.FromString(payload)
                values = event.summary.value
                histograms = [v for v in values if v.HasField("histogram") and v.tag.endswith("/auto")]
                if histograms:
                    steps.append(histograms)
                losses.extend(v for v in values if v.HasField("scalar_value") and v.tag == "loss/auto")
    if not steps or not losses:
        raise SystemExit(f"{run_dir}: no parameter histograms or loss/auto scalar to repeat")
    return steps, losses


def build_file(path: Path, fixture: Path, *, steps: int, per_step: int) -> None:
    """Write ``steps`` events of ``per_step`` real histograms (plus the loss) into ``path``."""
    samples, losses = _fixture_samples(fixture)
    tags = [v.tag for v in samples[0]]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".partial")
    with open(temporary, "wb") as out:
        out.write(frame_record(pb.Event(wall_time=1.7e9, version="MindSpore.Event:1").SerializeToString()))
        for step in range(1, steps + 1):
            event = pb.Event(wall_time=1.7e9 + step * 0.05, step=step)
            source = samples[step % len(samples)]
            for slot in range(per_step):
                value = event.summary.value.add()
                value.CopyFrom(source[slot % len(source)])
                value.tag = f"block{slot // len(tags)}.{tags[slot % len(tags)]}"
            event.summary.value.add().CopyFrom(losses[step % len(losses)])
            out.write(frame_record(event.SerializeToString()))
    temporary.replace(path)


def plain_loop(path: Path) -> int:
    """The floor: read, verify both CRCs, parse each Event, touch each histogram's statistics."""
    data = path.read_bytes()
    parse = pb.Event.FromString  # faster than reusing one message with ParseFromString
    offset, size, touched = 0, len(data), 0
    while offset < size:
        length, length_crc = _HEADER.unpack_from(data, offset)
        if masked_crc32c(data[offset : offset + 8]) != length_crc:
            raise ValueError(f"bad length CRC at {offset}")
        start = offset + 12
        payload = data[start : start + length]
        (payload_crc,) = _CRC.unpack_from(data, start + length)
        if masked_crc32c(payload) != payload_crc:
            raise ValueError(f"bad data CRC at {offset}")
        event = parse(payload)
        for value in event.summary.value:
            if value.HasField("histogram"):
                histogram = value.histogram
                touched += histogram.count + len(histogram.buckets)
                histogram.min, histogram.max  # noqa: B018
        offset = start + length + 4
    return touched


def best_times(repeat: int, functions: dict[str, Callable[[], object]]) -> dict[str, tuple[float, float]]:
    """Best wall and best CPU time of each function, the runs interleaved so that load hits all alike."""
    best = {name: (float("inf"), float("inf")) for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


_PEAK_SCRIPT = textwrap.dedent(
    """
    import gc, json, resource, sys
    from summary_doctor import read_run

    def status(field):
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) for line in lines if line.startswith(field + ":"))

    gc.collect()
    try:  # Linux: current size, then peak of this process image only (VmHWM, reset to now)
        before = status("VmRSS")
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        peak = lambda: status("VmHWM")
    except OSError:  # ru_maxrss also counts import peaks and, after fork, the parent's size
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run = read_run(sys.argv[1])
    print(json.dumps({"before_kib": before, "after_kib": peak(), "histograms": len(run.histograms)}))
    """
)


def peak_memory(run_dir: Path) -> dict[str, int]:
    """Resident size before and peak resident size during ``read_run``, in a fresh interpreter, in KiB."""
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(run_dir)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


_MINDINSIGHT_SCRIPT = textwrap.dedent(
    """
    import logging, sys, time
    logging.disable(logging.CRITICAL)
    from mindinsight.datavisual.data_transform.ms_data_loader import MSDataLoader
    start = time.perf_counter()
    loader = MSDataLoader(sys.argv[1])
    loader.load()
    print(time.perf_counter() - start)
    """
)


def mindinsight_seconds(python: str, run_dir: Path) -> float:
    """Wall time of MindInsight's ``MSDataLoader.load()`` on the run, in its own interpreter."""
    result = subprocess.run(
        [python, "-c", _MINDINSIGHT_SCRIPT, str(run_dir)], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a ~6 MB file of 150 steps")
    parser.add_argument("--fixture", default=str(REPO / "fixtures" / "runs" / "healthy_mlp"))
    parser.add_argument("--steps", type=int, help="steps to write (default 3000, 150 with --quick)")
    parser.add_argument("--histograms", type=int, default=34, help="parameter histograms per step")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is kept")
    parser.add_argument("--rebuild", action="store_true", help="write the file even if it exists")
    parser.add_argument("--mindinsight", metavar="PYTHON", help="also time MindInsight's loader with this python")
    args = parser.parse_args(argv)
    steps = args.steps or (150 if args.quick else 3000)

    run_dir = DATA / f"steps{steps}_hist{args.histograms}_{Path(args.fixture).name}"
    path = run_dir / FILE_NAME
    assert classify(path.name) is not None
    if args.rebuild or not path.exists():
        print(f"building {path} ...", flush=True)
        build_file(path, Path(args.fixture), steps=steps, per_step=args.histograms)
    size = path.stat().st_size
    megabytes = size / 1e6

    print(f"file: {path.relative_to(REPO)}")
    print(f"      {megabytes:.1f} MB, {steps} steps, {args.histograms} histograms a step")
    print(f"backend: protobuf {api_implementation.Type()}, google-crc32c {google_crc32c.implementation}")
    path.read_bytes()  # warm the page cache for both measurements
    times = best_times(args.repeat, {"plain": lambda: plain_loop(path), "read_run": lambda: read_run(run_dir)})
    (baseline, baseline_cpu), (ours, ours_cpu) = times["plain"], times["read_run"]
    print(f"best of {args.repeat}:                         wall        MB/s     CPU")
    print(
        f"(a) plain loop (CRC + parse + touch):  {baseline:7.3f} s  {megabytes / baseline:7.1f}  {baseline_cpu:7.3f} s"
    )
    print(f"(b) read_run into frames:              {ours:7.3f} s  {megabytes / ours:7.1f}  {ours_cpu:7.3f} s")
    print(f"ratio (b)/(a): {ours / baseline:.2f}x wall, {ours_cpu / baseline_cpu:.2f}x CPU  (target <= 1.5x)")

    peak = peak_memory(run_dir)
    delta = (peak["after_kib"] - peak["before_kib"]) * 1024
    print(
        f"peak memory of read_run (peak RSS - RSS before, fresh process): {delta / 1e6:.1f} MB"
        f" = {delta / size:.2f}x the file (target <= 2x); {peak['histograms']} histogram rows"
    )

    if args.mindinsight:
        seconds = mindinsight_seconds(args.mindinsight, run_dir)
        print(f"MindInsight MSDataLoader.load(): {seconds:7.3f} s  = {seconds / baseline:.1f}x the plain loop")
    return 0


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main())
