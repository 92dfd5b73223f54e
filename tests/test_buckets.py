"""Tables of buckets: the numpy wire-format decoder against protobuf, on every fixture and odd bytes."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from conftest import FIXTURES, read_fixture

from summary_doctor.reader import run as run_module
from summary_doctor.reader.buckets import decode_table, decode_with_protobuf
from summary_doctor.reader.files import find_runs
from summary_doctor.reader.proto import summary_doctor_pb2 as pb

FIXTURE_NAMES = [str(p.relative_to(FIXTURES)) for p in find_runs(FIXTURES)] if FIXTURES.exists() else []


def _assert_same_as_protobuf(encoded: list[bytes]) -> None:
    table = decode_table(encoded)
    assert table.left.dtype == np.float64 and table.count.dtype == np.int64
    for i, data in enumerate(encoded):
        left, width, count = table.row(i)
        ref_left, ref_width, ref_count = decode_with_protobuf(data)
        assert left.tobytes() == ref_left.tobytes() and width.tobytes() == ref_width.tobytes()
        assert np.array_equal(count, ref_count), f"histogram {i}"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_histogram_decodes_as_protobuf_does(name):
    run = read_fixture(name)
    _assert_same_as_protobuf(list(run.histograms["encoded"]))
    table = run.bucket_table(run.histograms.index[::7])
    for i, label in enumerate(table.index):
        assert np.array_equal(table.row(i)[0], run.bucket_arrays(label).left)


def _histogram(buckets, **stats) -> pb.Summary.Histogram:
    histogram = pb.Summary.Histogram(**stats)
    for left, width, count in buckets:
        histogram.buckets.add(left=left, width=width, count=count)
    return histogram


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _bucket_bytes(left: float, width: float, count: int, *, order=(1, 2, 3), extra: bytes = b"") -> bytes:
    fields = {1: b"\x09" + struct.pack("<d", left), 2: b"\x11" + struct.pack("<d", width), 3: b"\x18" + _varint(count)}
    body = b"".join(fields[k] for k in order) + extra
    return b"\x0a" + _varint(len(body)) + body


STATS = _histogram([], nan_count=1, max=2.0, min=-1.0, sum=3.0, count=9).SerializeToString()
REGULAR = b"".join(_bucket_bytes(-1.0 + k, 1.0, k * 1000) for k in range(3))

ODD = {
    "canonical": REGULAR + STATS,
    "empty bytes": b"",
    "statistics only": STATS,
    "statistics before the buckets": STATS + REGULAR,
    "a bucket between statistics": STATS[:2] + REGULAR + STATS[2:],
    "width before left": _bucket_bytes(0.5, 0.25, 7, order=(2, 1, 3)) + STATS,
    "count first": _bucket_bytes(0.5, 0.25, 7, order=(3, 1, 2)),
    "unknown field in a bucket": _bucket_bytes(0.5, 0.25, 7, extra=b"\x20\x05") + STATS,
    "unknown field in the histogram": REGULAR + b"\x78\x01" + STATS,
    "negative count (10-byte varint)": _bucket_bytes(0.5, 0.25, -3) + STATS,
    "huge count": _bucket_bytes(0.5, 0.25, 2**62 + 12345) + STATS,
    "non-minimal varint": b"\x0a\x15\x09" + struct.pack("<d", 1.0) + b"\x11" + struct.pack("<d", 2.0) + b"\x18\x85\x00",
    "NaN and Inf edges": _bucket_bytes(float("nan"), float("inf"), 1) + STATS,
    "truncated record": REGULAR[:-3],
    "garbage": b"\x0a\x14\x09garbage-garbage-garbage",
}


@pytest.mark.parametrize("case", sorted(ODD))
def test_odd_encodings_decode_as_protobuf_does(case):
    _assert_same_as_protobuf([ODD[case]])
    _assert_same_as_protobuf([REGULAR + STATS, ODD[case], REGULAR])  # and beside regular ones


def test_a_bucket_pattern_inside_the_statistics_is_not_taken_for_a_bucket():
    # max, min and sum chosen so that their bytes line up as a bucket record's tags
    maximum = struct.unpack("<d", bytes([0x0A, 0x14, 0x09, 0, 0, 0, 0, 0x3F]))[0]
    minimum = struct.unpack("<d", bytes([0, 0, 0x11, 0, 0, 0, 0, 0x3F]))[0]
    total = struct.unpack("<d", bytes([0, 0, 0x18, 0, 0, 0, 0, 0x3F]))[0]
    stats = _histogram([], max=maximum, min=minimum, sum=total, count=4).SerializeToString()
    for data in (REGULAR + stats, stats):
        _assert_same_as_protobuf([data])
        assert len(decode_table([data]).row(0)[0]) == (3 if data.startswith(REGULAR) else 0)


def test_random_histograms_decode_as_protobuf_does():
    rng = np.random.default_rng(7)
    encoded = []
    for _ in range(300):
        n = int(rng.integers(0, 40))
        left = np.sort(rng.normal(size=n)) * 10.0 ** rng.integers(-8, 8)
        counts = rng.integers(0, 2**40, n) >> rng.integers(0, 40, n)
        stats = {k: float(v) for k, v in zip(("max", "min", "sum"), rng.normal(size=3), strict=True)}
        encoded.append(_histogram(zip(left, np.abs(left) + 1e-3, counts.tolist(), strict=True), **stats))
    _assert_same_as_protobuf([h.SerializeToString() for h in encoded])


def test_take_keeps_the_rows_asked_for():
    table = decode_table([REGULAR, b"", _bucket_bytes(5.0, 1.0, 3)])
    picked = table.take(np.array([2, 0]))
    assert list(picked.index) == [2, 0] and list(picked.sizes) == [1, 3]
    assert np.array_equal(picked.row(1)[2], table.row(0)[2])


def test_tag_buckets_are_decoded_once_and_kept_within_a_budget(fixture_run, monkeypatch):
    run = run_module.read_run(FIXTURES / "healthy_mlp", name="healthy_mlp")
    table = run.tag_buckets("fc1.weight/auto")
    assert run.tag_buckets("fc1.weight/auto") is table
    rows = run.current("histograms")
    rows = rows[rows["tag"] == "fc1.weight/auto"].sort_values("step")
    assert list(table.index) == list(rows.index)
    assert np.array_equal(table.row(4)[1], run.bucket_arrays(rows.index[4]).width)
    monkeypatch.setattr(run_module, "TAG_CACHE_BYTES", table.nbytes)
    run.tag_buckets("fc2.weight/auto")
    assert list(run.derived["tag_buckets"]) == ["fc2.weight/auto"]


def test_bucket_table_refuses_rows_that_do_not_exist():
    run = read_fixture("healthy_mlp")
    with pytest.raises(KeyError):
        run.bucket_table([0, 10**9])
    assert len(run.bucket_table([])) == 0
