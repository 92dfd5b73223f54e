"""A run reduced to what cross-run checks need: its parameters' first recorded histograms.

Small (a few kB to tens of kB), picklable and JSON-safe, so an audit can
cache it with the run's result and compare runs without reading them again.
Numbers keep their full precision (the comparison of ranks relies on exact
sums); NaN and Inf are written as text, which ``float()`` reads back.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from summary_doctor.reader.proto import summary_doctor_pb2 as pb
from summary_doctor.reader.run import Buckets, Run
from summary_doctor.rules._histograms import TagKind, base_name, rows_of_kind

RECORDS_KEPT = 4
_RUNNING = re.compile(r"(moving|running)_(mean|var|variance)$")


def _plain(value: Any) -> Any:
    """JSON-safe without rounding: numpy scalars to Python, NaN/Inf as text."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Inf" if value > 0 else "-Inf")
    return value


def _record(step: int, message: pb.Summary.Histogram) -> dict[str, Any]:
    return {
        "step": int(step),
        "count": int(message.count),
        "min": _plain(message.min),
        "max": _plain(message.max),
        "sum": _plain(message.sum),
        "nonfinite": int(message.nan_count + message.pos_inf_count + message.neg_inf_count),
        "histogram": base64.b64encode(message.SerializeToString()).decode("ascii"),
    }


def _tensor_histogram(value: Any) -> pb.Summary.Histogram:
    """A tensor as MindSpore would bucket it (count // 10 + 1 buckets over [min, max], at most 90)."""
    values = np.asarray(value, dtype=float).ravel()
    finite = values[np.isfinite(values)]
    message = pb.Summary.Histogram(count=len(values), nan_count=int(np.isnan(values).sum()))
    message.pos_inf_count, message.neg_inf_count = int(np.isposinf(values).sum()), int(np.isneginf(values).sum())
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        edges = np.linspace(low, high if high > low else low + 1, min(90, finite.size // 10 + 1) + 1)
        counts, _ = np.histogram(finite, bins=edges)
        for count, left, right in zip(counts, edges[:-1], edges[1:], strict=True):
            message.buckets.add(left=float(left), width=float(right - left), count=int(count))
        message.min, message.max, message.sum = low, high, float(finite.sum())
    return message


def run_digest(run: Run) -> dict[str, Any]:
    """What cross-run checks need of one run: small, picklable and JSON-safe.

    ``parallel_mode`` and ``device_num`` from the lineage, and for every
    trained parameter (weights, biases, BatchNorm scale/shift; running
    statistics left out) its first ``RECORDS_KEPT`` records: step, count,
    min, max, sum, non-finite count and the histogram bytes in base64
    (tensors are bucketed first; a tag recorded both ways is read from
    tensors).
    """
    hyper = run.lineage.hyperparameters
    parameters: dict[str, list[dict[str, Any]]] = {}
    kinds = (TagKind.WEIGHT, TagKind.OFFSET, TagKind.SCALE)
    for frame in ("tensors", "histograms"):
        for tag, records in _first_records(run, kinds, frame).items():
            name = base_name(str(tag))
            if name in parameters or _RUNNING.search(name):
                continue
            histogram = _tensor_histogram if frame == "tensors" else pb.Summary.Histogram.FromString
            parameters[name] = [_record(step, histogram(data)) for step, data in records]
    return {
        "parallel_mode": _plain(hyper.get("parallel_mode")),
        "device_num": _plain(hyper.get("device_num")),
        "parameters": parameters,
    }


def _first_records(run: Run, kinds: tuple[TagKind, ...], frame: str) -> dict[str, list[tuple[int, Any]]]:
    """Per tag (in order of first appearance), step and value (tensors) or bytes of its first records.

    ``rows_of_kind`` orders each tag's rows by step; taking them from plain
    columns, not row by row from a wide frame, keeps a run of hundreds of
    tags quick.
    """
    rows = rows_of_kind(run, *kinds, frame=frame)
    first = rows.groupby("tag", sort=False).head(RECORDS_KEPT)
    column = "value" if frame == "tensors" else "encoded"
    records: dict[str, list[tuple[int, Any]]] = {}
    for tag, step, data in zip(first["tag"], first["step"].to_numpy(), first[column].to_numpy(), strict=True):
        records.setdefault(tag, []).append((int(step), data))
    return records


def record_buckets(record: Mapping[str, Any]) -> Buckets:
    """The buckets of one digest record."""
    message = pb.Summary.Histogram.FromString(base64.b64decode(record["histogram"]))
    table = np.array([(b.left, b.width, b.count) for b in message.buckets], dtype=float).reshape(-1, 3)
    return Buckets(table[:, 0].copy(), table[:, 1].copy(), table[:, 2].astype(np.int64))


def record_mean(record: Mapping[str, Any]) -> float:
    """The exact mean of one digest record's finite values (NaN when it has none)."""
    valid = int(record["count"]) - int(record["nonfinite"])
    return float(record["sum"]) / valid if valid > 0 else math.nan
