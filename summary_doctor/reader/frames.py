"""Frame schemas in one place, and the helpers that build frames from columns.

Every frame always carries its schema columns and dtypes, even when empty:
a rule can filter an empty ``scalars`` frame without first checking whether
it has a ``tag`` column (tbparse returns column-less empty frames; we don't).
Frames are built once from column lists, never row by row.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from summary_doctor.reader.derived import private_copy

_KEY = {
    "run": "object",
    "file": "object",
    "offset": "int64",
    "tag": "object",
    "step": "int64",
    "wall_time": "float64",
}

SCHEMAS: dict[str, dict[str, str]] = {
    "scalars": {**_KEY, "value": "float64", "superseded": "bool"},
    "histograms": {
        **_KEY,
        "count": "int64",
        "min": "float64",
        "max": "float64",
        "sum": "float64",
        "mean": "float64",
        "nan_count": "int64",
        "pos_inf_count": "int64",
        "neg_inf_count": "int64",
        "encoded": "object",
        "superseded": "bool",
    },
    "tensors": {
        **_KEY,
        "dtype": "object",
        "shape": "object",
        "size": "int64",
        "min": "float64",
        "max": "float64",
        "mean": "float64",
        "std": "float64",
        "zero_fraction": "float64",
        "nonfinite": "int64",
        "value": "object",
        "superseded": "bool",
    },
    "images": {
        **_KEY,
        "height": "int64",
        "width": "int64",
        "colorspace": "int64",
        "encoded": "object",
        "superseded": "bool",
    },
    "landscapes": {**_KEY, "encoded": "object"},
    "files": {
        "run": "object",
        "file": "object",
        "kind": "object",
        "bytes": "int64",
        "records": "int64",
        "skipped": "int64",
        "first_step": "Int64",
        "last_step": "Int64",
        "version": "object",
        "problems": "object",
    },
    "nodes": {
        "name": "object",
        "op_type": "object",
        "scope": "object",
        "full_name": "object",
        "instance_name": "object",
        "attributes": "object",
        "output_dtype": "object",
        "output_shape": "object",
    },
    "edges": {"source": "object", "target": "object", "edge_type": "object"},
    "parameters": {
        "name": "object",
        "dtype": "object",
        "shape": "object",
        "size": "Int64",
        "has_default": "bool",
    },
    "constants": {"name": "object", "dtype": "object", "value": "object"},
    "dataset_ops": {
        "depth": "int64",
        "role": "object",
        "op_type": "object",
        "params": "object",
    },
}


def empty_frame(name: str) -> pd.DataFrame:
    """A frame with no rows but every column of ``name``'s schema.

    Built once per schema and handed out as a copy: most runs have several
    empty frames (no tensors, images or landscapes), and building one costs
    as much as building a small full one.
    """
    return private_copy(_empty_template(name))


@functools.cache
def _empty_template(name: str) -> pd.DataFrame:
    return _build(name, {}, 0)


def build_frame(name: str, columns: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """Build frame ``name`` from column lists, in schema order and dtypes."""
    length = len(next(iter(columns.values()))) if columns else 0
    return _build(name, columns, length) if length else empty_frame(name)


def _build(name: str, columns: Mapping[str, Sequence[Any]], length: int) -> pd.DataFrame:
    schema = SCHEMAS[name]
    data = {}
    for column, dtype in schema.items():
        values = columns.get(column)
        if values is None:
            values = _default_column(dtype, length)
        if dtype == "object":
            array = np.empty(length, dtype=object)
            array[:] = list(values) if length else []
            data[column] = pd.Series(array, dtype=object, copy=False)
        elif dtype in _NUMPY_DTYPES:  # straight to numpy: pd.array would copy once more
            data[column] = np.asarray(values, dtype=dtype)
        else:
            data[column] = pd.array(values, dtype=dtype) if len(values) else pd.array([], dtype)
    return pd.DataFrame(data)


_NUMPY_DTYPES = frozenset({"int64", "float64", "bool"})
_FILL = {"bool": False, "object": None, "Int64": pd.NA, "float64": np.nan, "int64": 0}


def _default_column(dtype: str, length: int) -> list[Any]:
    return [_FILL[dtype]] * length


def mark_superseded(frame: pd.DataFrame, file_order: Mapping[str, int]) -> None:
    """Set ``superseded`` on rows that a later record of the same tag replaces.

    A row is superseded when the same ``(tag, step)`` is written again later
    (SummaryCollector writes an epoch's last step twice; a restarted job
    rewrites steps), or when a later file of the run starts that tag at or
    before this row's step (MindInsight's rule for a job restarted from a
    checkpoint). Rows are kept: rules read the current ones, reports can show
    the rest.
    """
    if frame.empty:
        return
    superseded = frame.duplicated(["tag", "step"], keep="last").to_numpy().copy()
    rank = frame["file"].map(file_order).to_numpy()
    if rank.max() > rank.min():
        firsts = frame.assign(rank=rank).groupby(["tag", "rank"])["step"].min()
        restart = np.zeros(len(frame), dtype=bool)
        for tag, group in firsts.groupby(level="tag"):
            later_first = group.to_numpy()[::-1]
            later_first = np.minimum.accumulate(later_first)[::-1]
            ranks = group.index.get_level_values("rank").to_numpy()
            for position, file_rank in enumerate(ranks[:-1]):
                rows = (frame["tag"].to_numpy() == tag) & (rank == file_rank)
                restart |= rows & (frame["step"].to_numpy() >= later_first[position + 1])
        superseded |= restart
    frame["superseded"] = superseded
