"""Turn decoded ``Event`` messages into columns, one set per frame.

This is the hot loop of the reader: it touches every value of every record,
so it does the least per value that the rules need. Histogram buckets are
never turned into Python objects here (that costs ~7x the parse on a large
run): each histogram is kept as the bytes it was written as (the
``encoded`` column) and its buckets are decoded on demand
(``Run.histogram_buckets``). Only the statistics are parsed, from a twin
message without the buckets field, so upb skips them.

Per value the loop appends the fields it read to flat lists and C arrays;
the key columns (file, offset, step, wall time) are stored once per event,
and everything becomes columns, vectorised, when the frames are built.
"""

from __future__ import annotations

from array import array
from operator import attrgetter
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from summary_doctor.reader.graph import Graph, graph_from_proto
from summary_doctor.reader.proto import summary_doctor_pb2 as pb
from summary_doctor.reader.tensors import decode_tensor, dtype_name, tensor_stats


def _twin_classes() -> tuple[type[Message], type[Message]]:
    """Two wire-compatible twins of our schema, built in a private descriptor pool.

    * ``Event`` whose ``Summary.Value.histogram`` is declared ``bytes``: a
      histogram arrives as its serialized bytes, exactly a
      ``pb.Summary.Histogram``, kept as is for on-demand bucket decoding;
    * ``Summary.Histogram`` without ``buckets``: parsing the statistics skips
      the buckets as unknown fields instead of building 90 messages.

    Built from our own descriptor, so the twins stay in step with the schema.
    """
    schema = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(schema)
    summary = next(message for message in schema.message_type if message.name == "Summary")
    value = next(message for message in summary.nested_type if message.name == "Value")
    histogram_field = next(field for field in value.field if field.name == "histogram")
    histogram_field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    histogram_field.ClearField("type_name")
    histogram = next(message for message in summary.nested_type if message.name == "Histogram")
    statistics = [field for field in histogram.field if field.name != "buckets"]
    del histogram.field[:]
    histogram.field.extend(statistics)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    event = message_factory.GetMessageClass(pool.FindMessageTypeByName(pb.Event.DESCRIPTOR.full_name))
    stats = message_factory.GetMessageClass(pool.FindMessageTypeByName(pb.Summary.Histogram.DESCRIPTOR.full_name))
    return event, stats


_RawEvent, _HistogramStatistics = _twin_classes()
parse_event = _RawEvent.FromString
"""Decode an ``Event`` record for :meth:`EventColumns.add` (raises ``DecodeError``)."""
_parse_statistics = _HistogramStatistics.FromString

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
# One C call reads all seven statistics; counts are exact in float64 below 2**53 elements.
_HISTOGRAM_STATISTICS = attrgetter("count", "nan_count", "pos_inf_count", "neg_inf_count", "min", "max", "sum")


class _FrameRows:
    """One frame's rows as tuples, plus the event each run of rows came from."""

    __slots__ = ("events", "rows")

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.events: list[tuple[str, int, int, float, int]] = []  # file, offset, step, wall_time, rows so far


class _HistogramRows(_FrameRows):
    """Histogram rows: tags in ``rows``, numbers in flat C arrays (compact, no object per number)."""

    __slots__ = ("encoded", "statistics")

    def __init__(self) -> None:
        super().__init__()
        self.statistics = array("d")  # count, nan, +inf, -inf counts, min, max, sum per row
        self.encoded: list[bytes] = []  # each row's serialized Summary.Histogram


class EventColumns:
    """Accumulates the rows of every frame of one run."""

    def __init__(self, run: str) -> None:
        self.run = run
        self._histograms = _HistogramRows()
        self._frames = {
            name: self._histograms if name == "histograms" else _FrameRows() for name in _FRAME_OF_KIND.values()
        }
        self.problems: list[str] = []
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
        tags, add_statistics = histograms.rows.append, histograms.statistics.extend
        add_encoded = histograms.encoded.append
        scalars = frames["scalars"].rows
        before = {name: len(frame.rows) for name, frame in frames.items()}
        for value in summary.value:
            kind = value.WhichOneof("value")
            if kind == "histogram":
                encoded = value.histogram
                try:
                    statistics = _parse_statistics(encoded)
                except DecodeError:
                    self.problems.append(f"histogram {value.tag!r} at step {key[2]} does not decode: skipped")
                    continue
                tags(value.tag)
                add_statistics(_HISTOGRAM_STATISTICS(statistics))
                add_encoded(encoded)
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
    table = np.frombuffer(frame.statistics, dtype=np.float64).reshape(-1, 7).T
    count, nan, pos, neg = table[:4].astype(np.int64)
    valid = count - nan - pos - neg
    has_valid = valid > 0
    low, high, total = (np.where(has_valid, column, np.nan) for column in table[4:])
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(has_valid, total / np.where(has_valid, valid, 1), np.nan)
    return {
        "tag": frame.rows,
        "count": count,
        "nan_count": nan,
        "pos_inf_count": pos,
        "neg_inf_count": neg,
        "min": low,
        "max": high,
        "sum": total,
        "mean": mean,
        "encoded": frame.encoded,
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
