"""Turn decoded ``Event`` messages into column lists, one set per frame.

This is the hot loop of the reader: it touches every value of every record,
so it does the least per value that the rules need. Histogram buckets are
not turned into Python objects here (that costs ~7x the parse on a large
run); each histogram's serialized bytes go into one contiguous blob and are
decoded on demand (see ``Run.histogram_buckets``).

Two things halve its cost. Events are parsed by
``parse_event`` into a twin of ``Event`` whose histogram buckets are left as
raw bytes: decoding every bucket into a message only to encode it back for
the blob costs as much as the rest of the read. And per value the loop
appends the fields it read to flat lists and C arrays; the key columns
(file, offset, step, wall time) are stored once per event, and everything
becomes columns, vectorised, when the frames are built.
"""

from __future__ import annotations

from array import array
from operator import attrgetter
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from summary_doctor.reader.graph import Graph, graph_from_proto
from summary_doctor.reader.proto import summary_doctor_pb2 as pb
from summary_doctor.reader.tensors import decode_tensor, dtype_name, tensor_stats


def _event_with_raw_buckets() -> type[Message]:
    """``Event`` with ``Summary.Histogram.buckets`` declared ``repeated bytes`` (same wire format).

    Built in a private descriptor pool from our own schema, so both stay in step.
    A serialized histogram of this twin is byte for byte a ``pb.Summary.Histogram``.
    """
    schema = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(schema)
    summary = next(message for message in schema.message_type if message.name == "Summary")
    histogram = next(message for message in summary.nested_type if message.name == "Histogram")
    buckets = next(field for field in histogram.field if field.name == "buckets")
    buckets.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    buckets.ClearField("type_name")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(pb.Event.DESCRIPTOR.full_name))


parse_event = _event_with_raw_buckets().FromString
"""Decode an ``Event`` record for :meth:`EventColumns.add` (raises ``DecodeError``)."""

_FRAME_OF_KIND = {
    "scalar_value": "scalars",
    "histogram": "histograms",
    "tensor": "tensors",
    "image": "images",
    "loss_landscape": "landscapes",
}
_ROW_FIELDS = {
    "scalars": ("tag", "value"),
    "tensors": ("tag", "dtype", "shape", "size", "min", "max", "mean", "std", "zero_fraction", "nonfinite", "value"),
    "images": ("tag", "height", "width", "colorspace", "encoded"),
    "landscapes": ("tag", "encoded"),
}
_HISTOGRAM_COUNTS = attrgetter("count", "nan_count", "pos_inf_count", "neg_inf_count")
_HISTOGRAM_EXTREMES = attrgetter("min", "max", "sum")


class _FrameRows:
    """One frame's rows as tuples, plus the event each run of rows came from."""

    __slots__ = ("events", "rows")

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.events: list[tuple[str, int, int, float, int]] = []  # file, offset, step, wall_time, rows so far


class _HistogramRows(_FrameRows):
    """Histogram rows: tags in ``rows``, numbers in flat C arrays (compact, no object per number)."""

    __slots__ = ("bucket_counts", "counts", "extremes", "stops")

    def __init__(self) -> None:
        super().__init__()
        self.counts = array("q")  # count, nan_count, pos_inf_count, neg_inf_count per row
        self.extremes = array("d")  # min, max, sum per row
        self.bucket_counts = array("q")
        self.stops = array("q")  # end of each row's serialized histogram in the blob


class EventColumns:
    """Accumulates the rows of every frame of one run."""

    def __init__(self, run: str) -> None:
        self.run = run
        self._histograms = _HistogramRows()
        self._frames = {
            name: self._histograms if name == "histograms" else _FrameRows() for name in _FRAME_OF_KIND.values()
        }
        self.blob = bytearray()
        self.graphs: list[Graph] = []
        self.version: str | None = None
        self.steps: list[int] = []

    def add(self, event: pb.Event, file: str, offset: int) -> None:
        """Add every value of one event (from :func:`parse_event`, or a ``pb.Event``)."""
        what = event.WhichOneof("what")
        if what == "summary":
            step = event.step
            self.steps.append(step)
            self._add_summary(event.summary, (file, offset, step, event.wall_time))
        elif what == "graph_def":
            self.graphs.append(graph_from_proto(event.graph_def, file))
        elif what == "version":
            self.version = event.version

    def _add_summary(self, summary: pb.Summary, key: tuple[str, int, int, float]) -> None:
        frames = self._frames
        histograms = self._histograms
        tags, add_counts, add_extremes = histograms.rows.append, histograms.counts.extend, histograms.extremes.extend
        add_bucket_count, add_stop = histograms.bucket_counts.append, histograms.stops.append
        scalars = frames["scalars"].rows
        before = {name: len(frame.rows) for name, frame in frames.items()}
        blob = self.blob
        for value in summary.value:
            kind = value.WhichOneof("value")
            if kind == "histogram":
                histogram = value.histogram
                blob += histogram.SerializePartialToString()
                tags(value.tag)
                add_counts(_HISTOGRAM_COUNTS(histogram))
                add_extremes(_HISTOGRAM_EXTREMES(histogram))
                add_bucket_count(len(histogram.buckets))
                add_stop(len(blob))
            elif kind == "scalar_value":
                scalars.append((value.tag, value.scalar_value))
            elif kind == "tensor":
                frames["tensors"].rows.append((value.tag, *_tensor_fields(value.tensor)))
            elif kind == "image":
                image = value.image
                frames["images"].rows.append(
                    (value.tag, image.height, image.width, image.colorspace, image.encoded_image)
                )
            elif kind == "loss_landscape":
                frames["landscapes"].rows.append((value.tag, value.loss_landscape.SerializeToString()))
        for name, frame in frames.items():
            if len(frame.rows) > before[name]:
                frame.events.append((*key, len(frame.rows)))

    @property
    def columns(self) -> dict[str, dict[str, Any]]:
        """Every frame's columns (lists or arrays of equal length), built now."""
        return {name: self.frame_columns(name) for name in self._frames}

    def frame_columns(self, name: str) -> dict[str, Any]:
        """The columns of frame ``name``: the key columns, then the frame's own."""
        frame = self._frames[name]
        if not frame.rows:
            return {}
        files, offsets, steps, walls, ends = zip(*frame.events, strict=True)
        repeats = np.diff(np.asarray(ends, dtype=np.int64), prepend=0)
        columns: dict[str, Any] = {
            "run": [self.run] * len(frame.rows),
            "file": np.repeat(np.asarray(files, dtype=object), repeats),
            "offset": np.repeat(np.asarray(offsets, dtype=np.int64), repeats),
            "step": np.repeat(np.asarray(steps, dtype=np.int64), repeats),
            "wall_time": np.repeat(np.asarray(walls, dtype=np.float64), repeats),
        }
        if isinstance(frame, _HistogramRows):
            columns.update(_histogram_columns(frame))
        else:
            columns.update(zip(_ROW_FIELDS[name], zip(*frame.rows, strict=True), strict=True))
        return columns


def _histogram_columns(frame: _HistogramRows) -> dict[str, Any]:
    """Statistics columns of histograms; min/max/sum/mean are NaN without a finite value."""
    count, nan, pos, neg = np.frombuffer(frame.counts, dtype=np.int64).reshape(-1, 4).T.copy()
    valid = count - nan - pos - neg
    has_valid = valid > 0
    low, high, total = (
        np.where(has_valid, column, np.nan)
        for column in np.frombuffer(frame.extremes, dtype=np.float64).reshape(-1, 3).T
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(has_valid, total / np.where(has_valid, valid, 1), np.nan)
    stops = np.array(frame.stops, dtype=np.int64)
    starts = np.concatenate(([0], stops[:-1]))  # histograms are the only writers of the blob, back to back
    return {
        "tag": frame.rows,
        "count": count,
        "nan_count": nan,
        "pos_inf_count": pos,
        "neg_inf_count": neg,
        "bucket_count": np.array(frame.bucket_counts, dtype=np.int64),
        "min": low,
        "max": high,
        "sum": total,
        "mean": mean,
        "blob_start": starts,
        "blob_stop": stops,
    }


def _tensor_fields(tensor: pb.TensorProto) -> tuple[Any, ...]:
    values = decode_tensor(tensor)
    low, high, mean, std, zero_fraction, nonfinite = tensor_stats(values)
    shape = tuple(int(d) for d in tensor.dims)
    return (
        dtype_name(tensor.data_type),
        shape,
        int(values.size),
        low,
        high,
        mean,
        std,
        zero_fraction,
        nonfinite,
        values,
    )
