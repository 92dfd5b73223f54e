"""Small hand-built summary files for corrupt-input and edge-case tests.

Real behaviour is tested on the MindSpore fixtures; these builders only make
damage and edge cases that training cannot produce on demand.
"""

from __future__ import annotations

from pathlib import Path

from summary_doctor.reader.proto import summary_doctor_pb2 as pb
from summary_doctor.reader.records import frame_record


def version_event(wall_time: float = 1.0) -> pb.Event:
    return pb.Event(wall_time=wall_time, version="MindSpore.Event:1")


def scalar_event(step: int, tag: str, value: float, wall_time: float | None = None) -> pb.Event:
    event = pb.Event(wall_time=wall_time if wall_time is not None else 100.0 + step, step=step)
    event.summary.value.add(tag=tag, scalar_value=value)
    return event


def histogram_event(step: int, tag: str, values: list[float]) -> pb.Event:
    """A histogram value shaped as MindSpore writes it (linspace buckets, nan/inf counted apart)."""
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    event = pb.Event(wall_time=100.0 + step, step=step)
    histogram = event.summary.value.add(tag=tag).histogram
    histogram.count = array.size
    histogram.nan_count = int(np.isnan(array).sum())
    histogram.pos_inf_count = int(np.isposinf(array).sum())
    histogram.neg_inf_count = int(np.isneginf(array).sum())
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        histogram.min, histogram.max, histogram.sum = low, high, float(finite.sum())
        if low == high:
            low, high = low - 0.5, high + 0.5
        counts, edges = np.histogram(finite, bins=min(90, max(1, finite.size // 10 + 1)), range=(low, high))
        for left, right, count in zip(edges[:-1], edges[1:], counts, strict=True):
            histogram.buckets.add(left=float(left), width=float(right - left), count=int(count))
    return event


def write_events(path: Path, events: list[pb.Event]) -> Path:
    """Write framed events to ``path`` and return it."""
    path.write_bytes(b"".join(frame_record(event.SerializeToString()) for event in events))
    return path


def summary_name(timestamp: int = 1700000000, suffix: str = "_MS") -> str:
    return f"events.out.events.summary.{timestamp}.0.host{suffix}"


def _value(value: object) -> pb.ValueProto:
    if isinstance(value, bool):
        return pb.ValueProto(dtype=pb.DT_BOOL, bool_val=value)
    if isinstance(value, int):
        return pb.ValueProto(dtype=pb.DT_INT64, int_val=value)
    if isinstance(value, float):
        return pb.ValueProto(dtype=pb.DT_FLOAT32, float_val=value)
    return pb.ValueProto(dtype=pb.DT_STRING, str_val=str(value))


def graph_proto(
    nodes: list[tuple[str, str, str, list[str]]],
    *,
    parameters: dict[str, tuple[int, ...]],
    constants: dict[str, object] | None = None,
    attributes: dict[str, dict[str, object]] | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> pb.GraphProto:
    """A ``GraphProto`` from (name, op_type, scope, inputs) tuples, laid out as MindSpore writes them.

    ``attributes`` and ``shapes`` (output shapes) are keyed by node name;
    ``constants`` by constant name (``cst1``).
    """
    graph = pb.GraphProto(name="hand_built_graph")
    for name, op_type, scope, inputs in nodes:
        node = graph.node.add(name=name, op_type=op_type, scope=scope, full_name=f"{scope}/{op_type}-op{name}")
        for source in inputs:
            node.input.add(name=source, type=pb.InputProto.DATA_EDGE)
        for key, value in (attributes or {}).get(name, {}).items():
            node.attribute.add(name=key, value=_value(value))
        shape = (shapes or {}).get(name)
        if shape is not None:
            node.output_type.tensor_type.elem_type = pb.DT_FLOAT32
            node.output_type.tensor_type.shape.dim.extend(pb.TensorShapeProto.Dimension(size=d) for d in shape)
    for name, shape in parameters.items():
        parameter = graph.parameters.add(name=name)
        parameter.type.tensor_type.elem_type = pb.DT_FLOAT32
        parameter.type.tensor_type.shape.dim.extend(pb.TensorShapeProto.Dimension(size=d) for d in shape)
    for key, value in (constants or {}).items():
        graph.const_vals.add(key=key, value=_value(value))
    return graph


def graph_event(graph: pb.GraphProto) -> pb.Event:
    """The graph event SummaryCollector writes first (no step)."""
    event = pb.Event(wall_time=99.0)
    event.graph_def.CopyFrom(graph)
    return event
