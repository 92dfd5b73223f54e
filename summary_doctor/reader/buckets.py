"""Histogram buckets of many histograms at once, decoded with numpy from their bytes.

The reader keeps each histogram as the bytes it was written as (the
``encoded`` column); analysis needs the buckets of thousands of histograms
at a time. Parsing them one by one with protobuf and copying every bucket
into Python objects costs ~0.3 ms a histogram. Here all the histograms asked
for are joined into one buffer and decoded in a few numpy passes into one
:class:`BucketTable`: contiguous ``left``/``width``/``count`` arrays with
per-histogram offsets (ragged: bucket counts differ between histograms).

The wire format of MindSpore's histograms is regular: a run of bucket
records ``0a LEN 09 <left:8> 11 <width:8> 18 <count:varint>`` followed by the
statistics fields. The numpy decoder accepts a histogram only when its bytes
are exactly that (every bucket record well formed and chained from the first
byte, the rest known statistics fields); anything else (unknown fields, a
different field order, packed or otherwise surprising encodings) is decoded
by protobuf, which stays the reference: both give identical arrays (tested).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError

from summary_doctor.reader.proto import summary_doctor_pb2 as pb

log = logging.getLogger(__name__)

_BUCKET_TAG, _LEFT_TAG, _WIDTH_TAG, _COUNT_TAG = 0x0A, 0x09, 0x11, 0x18
_VARINT_FIELDS = np.zeros(256, dtype=bool)  # by tag byte: nan/+inf/-inf counts, count
_VARINT_FIELDS[[0x10, 0x18, 0x20, 0x40]] = True
_FIXED64_FIELDS = np.zeros(256, dtype=bool)  # max, min, sum
_FIXED64_FIELDS[[0x29, 0x31, 0x39]] = True
_PAD = 32  # zero bytes after the buffer, so reads a record ahead never leave it
_MAX_TAIL_FIELDS = 16
# From the byte after the left tag: left, the width tag, width (little-endian doubles, unaligned).
_LEFT_WIDTH = np.dtype([("left", "<f8"), ("width_tag", "u1"), ("width", "<f8")])


@dataclass(frozen=True)
class BucketTable:
    """The buckets of several histograms: histogram ``i`` owns ``offsets[i]:offsets[i + 1]``.

    ``index`` holds the histogram rows (labels of ``Run.histograms``) in the
    order they were asked for.
    """

    index: np.ndarray
    offsets: np.ndarray
    left: np.ndarray
    width: np.ndarray
    count: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    @property
    def sizes(self) -> np.ndarray:
        """Buckets per histogram."""
        return np.diff(self.offsets)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return sum(a.nbytes for a in (self.index, self.offsets, self.left, self.width, self.count))

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Left, width and count of histogram ``i`` (views, not copies)."""
        start, end = self.offsets[i], self.offsets[i + 1]
        return self.left[start:end], self.width[start:end], self.count[start:end]

    def take(self, positions: np.ndarray) -> BucketTable:
        """The table of histograms ``positions`` (in that order)."""
        sizes = self.sizes[positions]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        flat = _ranges(self.offsets[positions], sizes)
        return BucketTable(self.index[positions], offsets, self.left[flat], self.width[flat], self.count[flat])


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, sizes)])``, vectorised."""
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(sizes)
    shift = np.repeat(starts - (ends - sizes), sizes)
    return np.arange(total, dtype=np.int64) + shift


def decode_with_protobuf(encoded: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One histogram's buckets through protobuf: the reference decoder (empty if it does not decode)."""
    try:
        buckets = pb.Summary.Histogram.FromString(encoded).buckets
    except DecodeError:
        log.warning("histogram buckets do not decode; treated as empty")
        buckets = []
    table = np.array([(b.left, b.width, b.count) for b in buckets], dtype=float).reshape(-1, 3)
    counts = np.array([b.count for b in buckets], dtype=np.int64)
    return table[:, 0].copy(), table[:, 1].copy(), counts


def decode_table(encoded: Sequence[bytes], index: np.ndarray | None = None) -> BucketTable:
    """Decode the buckets of every histogram in ``encoded`` (serialized ``Summary.Histogram``) at once."""
    index = np.arange(len(encoded)) if index is None else np.asarray(index)
    sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    ends = np.cumsum(sizes)
    starts = ends - sizes
    joined = b"".join(encoded) + bytes(_PAD)
    data = np.frombuffer(joined, dtype=np.uint8)
    records = _candidate_records(data, int(ends[-1]) if len(ends) else 0)
    owner = np.searchsorted(ends, records, side="right")
    regular = _regular_histograms(data, records, owner, starts, ends)
    keep = regular[owner]
    records, owner = records[keep], owner[keep]
    per_histogram = np.bincount(owner, minlength=len(encoded)).astype(np.int64)
    fallback = {int(i): decode_with_protobuf(encoded[i]) for i in np.flatnonzero(~regular)}
    for i, (left, _, _) in fallback.items():
        per_histogram[i] = len(left)
    offsets = np.concatenate([[0], np.cumsum(per_histogram)]).astype(np.int64)
    columns = [np.empty(int(offsets[-1]), dtype=t) for t in (np.float64, np.float64, np.int64)]
    target = _ranges(offsets[:-1][regular], per_histogram[regular])
    for column, values in zip(columns, _record_values(data, records), strict=True):
        column[target] = values
    for i, values in fallback.items():
        for column, part in zip(columns, values, strict=True):
            column[offsets[i] : offsets[i + 1]] = part
    return BucketTable(index, offsets, *columns)


def _candidate_records(data: np.ndarray, size: int) -> np.ndarray:
    """Byte positions shaped like a bucket record (tags at their places, a plausible length)."""
    found = np.flatnonzero(data[:size] == _BUCKET_TAG)
    found = found[data[found + 2] == _LEFT_TAG]
    found = found[(data[found + 11] == _WIDTH_TAG) & (data[found + 20] == _COUNT_TAG)]
    length = data[found + 1]
    return found[(length >= 20) & (length <= 29)]  # 19 bytes + a count varint of 1 to 10 bytes


def _regular_histograms(
    data: np.ndarray, records: np.ndarray, owner: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Per histogram: its bytes are exactly a chain of bucket records from its first byte, then statistics.

    A candidate found inside a double, a bucket after the statistics or a
    malformed record breaks the chain, and the histogram goes to protobuf.
    """
    regular = np.ones(len(starts), dtype=bool)
    following = records + 2 + data[records + 1]
    regular[owner[~_varint_ends_at(data, records + 21, following)]] = False
    first = np.ones(len(records), dtype=bool)
    first[1:] = owner[1:] != owner[:-1]
    regular[owner[first & (records != starts[owner])]] = False
    linked = owner[1:] == owner[:-1]
    regular[owner[:-1][linked & (following[:-1] != records[1:])]] = False
    last = np.ones(len(records), dtype=bool)
    last[:-1] = ~linked
    tails = starts.copy()
    tails[owner[last]] = following[last]
    return regular & _statistics_only(data, tails, ends)


def _varint_ends_at(data: np.ndarray, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Whether the varint starting at ``begin`` is exactly the bytes up to ``end`` (10 bytes at most)."""
    length = end - begin
    ok = (length >= 1) & (length <= 10)
    ok &= (data[begin] >= 0x80) != (length == 1)
    longer = np.flatnonzero(ok & (length > 1))
    for k in range(1, 10):
        if not longer.size:
            break
        byte = data[begin[longer] + k]
        last = length[longer] == k + 1
        ok[longer] = np.where(last, byte < (2 if k == 9 else 0x80), byte >= 0x80)
        longer = longer[~last & ok[longer]]
    return ok


def _statistics_only(data: np.ndarray, position: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Whether each histogram's bytes from ``position`` to its end are known statistics fields only."""
    position = position.copy()
    ok = position <= ends
    active = np.flatnonzero(ok & (position < ends))
    for _ in range(_MAX_TAIL_FIELDS):
        if not active.size:
            break
        at = position[active]
        tag = data[at]
        varint = _VARINT_FIELDS[tag]
        window = data[at[:, None] + 1 + np.arange(10)] < 0x80
        bad = ~(varint | _FIXED64_FIELDS[tag]) | (varint & ~window.any(axis=1))
        at = at + np.where(varint, 2 + window.argmax(axis=1), 9)
        ok[active[bad]] = False
        position[active] = at
        active = active[~bad & (at < ends[active])]
    ok[active] = False
    return ok & (position == ends)


def _record_values(data: np.ndarray, records: np.ndarray) -> tuple[np.ndarray, ...]:
    """Left, width (little-endian doubles at any byte offset) and count (a varint) of each record."""
    pairs = np.ndarray(shape=(max(len(data) - 17, 0),), dtype="V17", buffer=data, strides=(1,))[records + 3]
    doubles = pairs.view(_LEFT_WIDTH)
    length = data[records + 1] - 19
    count = (data[records + 21] & 0x7F).astype(np.uint64)
    longer = np.flatnonzero(length > 1)
    for k in range(1, 10):
        if not longer.size:
            break
        count[longer] |= (data[records[longer] + 21 + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        longer = longer[length[longer] > k + 1]
    return doubles["left"].astype(np.float64), doubles["width"].astype(np.float64), count.view(np.int64)
