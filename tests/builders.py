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
