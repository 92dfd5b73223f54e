"""Turn decoded ``Event`` messages into column lists, one set per frame.

This is the hot loop of the reader: it touches every value of every record,
so it does the least per value that the rules need. Histogram buckets are
not turned into Python objects here (that costs ~7x the parse on a large
run); each histogram's serialized bytes go into one contiguous blob and are
decoded on demand (see ``Run.histogram_buckets``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from summary_doctor.reader.graph import Graph, graph_from_proto
from summary_doctor.reader.proto import summary_doctor_pb2 as pb
from summary_doctor.reader.tensors import decode_tensor, dtype_name, tensor_stats

_FRAME_OF_KIND = {
    "scalar_value": "scalars",
    "histogram": "histograms",
    "tensor": "tensors",
    "image": "images",
    "loss_landscape": "landscapes",
}


class EventColumns:
    """Accumulates the rows of every frame of one run as column lists."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.columns: dict[str, defaultdict[str, list[Any]]] = {
            name: defaultdict(list) for name in _FRAME_OF_KIND.values()
        }
        self.blob = bytearray()
        self.graphs: list[Graph] = []
        self.version: str | None = None
        self.steps: list[int] = []

    def add(self, event: pb.Event, file: str, offset: int) -> None:
        """Add every value of one event."""
        what = event.WhichOneof("what")
        if what == "summary":
            step = event.step
            self.steps.append(step)
            for value in event.summary.value:
                self._add_value(value, file, offset, step, event.wall_time)
        elif what == "graph_def":
            self.graphs.append(graph_from_proto(event.graph_def, file))
        elif what == "version":
            self.version = event.version

    def _add_value(self, value: pb.Summary.Value, file: str, offset: int, step: int, wall: float) -> None:
        kind = value.WhichOneof("value")
        if kind is None:
            return
        frame = _FRAME_OF_KIND[kind]
        columns = self.columns[frame]
        columns["run"].append(self.run)
        columns["file"].append(file)
        columns["offset"].append(offset)
        columns["tag"].append(value.tag)
        columns["step"].append(step)
        columns["wall_time"].append(wall)
        if kind == "scalar_value":
            columns["value"].append(value.scalar_value)
        elif kind == "histogram":
            self._add_histogram(columns, value.histogram)
        elif kind == "tensor":
            self._add_tensor(columns, value.tensor)
        elif kind == "image":
            image = value.image
            columns["height"].append(image.height)
            columns["width"].append(image.width)
            columns["colorspace"].append(image.colorspace)
            columns["encoded"].append(image.encoded_image)
        else:
            columns["encoded"].append(value.loss_landscape.SerializeToString())

    def _add_histogram(self, columns: defaultdict[str, list[Any]], histogram: pb.Summary.Histogram) -> None:
        nan, pos, neg = histogram.nan_count, histogram.pos_inf_count, histogram.neg_inf_count
        valid = histogram.count - nan - pos - neg
        columns["count"].append(histogram.count)
        columns["nan_count"].append(nan)
        columns["pos_inf_count"].append(pos)
        columns["neg_inf_count"].append(neg)
        columns["bucket_count"].append(len(histogram.buckets))
        if valid > 0:
            columns["min"].append(histogram.min)
            columns["max"].append(histogram.max)
            columns["sum"].append(histogram.sum)
            columns["mean"].append(histogram.sum / valid)
        else:
            for name in ("min", "max", "sum", "mean"):
                columns[name].append(math.nan)
        start = len(self.blob)
        self.blob += histogram.SerializeToString()
        columns["blob_start"].append(start)
        columns["blob_stop"].append(len(self.blob))

    def _add_tensor(self, columns: defaultdict[str, list[Any]], tensor: pb.TensorProto) -> None:
        values = decode_tensor(tensor)
        low, high, mean, std, zero_fraction, nonfinite = tensor_stats(values)
        columns["dtype"].append(dtype_name(tensor.data_type))
        columns["shape"].append(tuple(int(d) for d in tensor.dims))
        columns["size"].append(int(values.size))
        columns["min"].append(low)
        columns["max"].append(high)
        columns["mean"].append(mean)
        columns["std"].append(std)
        columns["zero_fraction"].append(zero_fraction)
        columns["nonfinite"].append(nonfinite)
        columns["value"].append(values)
