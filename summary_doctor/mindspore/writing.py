"""Writing extra values through an open ``SummaryRecord`` without disturbing its collector.

Only one ``SummaryRecord`` may be open in a process, so everything the
recorder adds goes through the collector's own record. It is written with
the record in ``eval`` mode: ``record()`` then writes only the values added
here and leaves the summary operators' cached values (gradients,
activations) for the collector's next collect step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mindspore import Tensor
from mindspore.train.summary.summary_record import SummaryRecord

from summary_doctor.mindspore.tags import EVAL_INPUT, EVAL_LABEL, INPUT, LABEL, parameter_tag


def as_array(value: Any) -> np.ndarray:
    """A tensor, parameter or array as numpy."""
    return value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)


def write_values(
    record: SummaryRecord,
    step: int,
    *,
    histograms: Mapping[str, Any] | None = None,
    scalars: Mapping[str, float | None] | None = None,
) -> None:
    """Write ``histograms`` (tag -> tensor or array, rank >= 1) and ``scalars`` at ``step``."""
    if not histograms and not scalars:
        return
    for tag, value in (histograms or {}).items():
        array = as_array(value)
        if array.ndim == 0:
            array = array.reshape(1)
        if array.size:
            record.add_value("histogram", tag, Tensor(array))
    for tag, number in (scalars or {}).items():
        if number is not None:
            record.add_value("scalar", tag, Tensor(np.float32(number)))
    mode = getattr(record, "_mode", "train")
    record.set_mode("eval")
    try:
        record.record(int(step))
    finally:
        record.set_mode(mode)


def parameter_histograms(parameters: Sequence[Any], pattern: str | None) -> dict[str, Any]:
    """``<name>/auto`` -> value for the parameters whose name matches ``pattern`` (``re.match``)."""
    if pattern is None:
        return {}
    return {parameter_tag(p.name): p for p in parameters if re.match(pattern, p.name)}


def batch_histograms(
    element: Sequence[Any] | None, input_index: int | None, label_index: int | None, *, evaluation: bool = False
) -> dict[str, Any]:
    """``input`` / ``label`` (``eval/input`` / ``eval/label``) from one dataset element (a list of tensors).

    The label is taken only when the element has two columns or more.
    """
    if not element:
        return {}
    items = list(element)
    names = (EVAL_INPUT, EVAL_LABEL) if evaluation else (INPUT, LABEL)
    found: dict[str, Any] = {}
    if input_index is not None and -len(items) <= input_index < len(items):
        found[names[0]] = items[input_index]
    if label_index is not None and len(items) >= 2 and -len(items) <= label_index < len(items):
        found[names[1]] = items[label_index]
    return found


def is_collect_step(step: int, freq: int, first: bool) -> bool:
    """SummaryCollector's rule: the first step it sees, then every multiple of ``freq``."""
    return first or (freq > 0 and step % freq == 0)


def rows_per_batch(limit: int, batches: int) -> int:
    """How many samples to keep from each of ``batches`` to keep about ``limit`` in all (at least one)."""
    return max(1, math.ceil(limit / max(1, batches)))
