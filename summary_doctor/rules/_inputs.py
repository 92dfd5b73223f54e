"""Which histogram or tensor tags hold the network input and the labels, and what each record says.

Users record what the network is fed with ``ops.HistogramSummary`` or
``ops.TensorSummary`` in ``construct`` (or ``SummaryRecord.add_value`` for an
evaluation batch), under names of their choosing. The canonical names are
``input``, ``label``, ``eval/input`` and ``eval/label``; common others
(``data``, ``image``, ``x``, ``features``; ``labels``, ``target``, ``y``;
``val_input``, ``val/label`` ...) are found by their words, and
``--input-tag`` / ``--label-tag`` / ``--eval-input-tag`` / ``--eval-label-tag``
name the rest. A tag recorded both ways is read from tensors (exact values).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from summary_doctor.reader.derived import per_run
from summary_doctor.reader.run import Buckets, Run
from summary_doctor.rules._histograms import TagKind, base_name, bucket_stats, classify_tag, recorded_tags
from summary_doctor.rules.base import Context, Missing

Role = Literal["input", "label", "eval_input", "eval_label"]
ROLES: tuple[Role, ...] = ("input", "label", "eval_input", "eval_label")

OPTIONS: dict[Role, str] = {
    "input": "--input-tag",
    "label": "--label-tag",
    "eval_input": "--eval-input-tag",
    "eval_label": "--eval-label-tag",
}

#: Exact names tried first (lower case), in order of preference.
PREFERRED: dict[Role, tuple[str, ...]] = {
    "input": ("input", "inputs", "data", "image", "images", "x", "features", "train/input", "input/train"),
    "label": ("label", "labels", "target", "targets", "y", "train/label", "label/train"),
    "eval_input": ("eval/input", "eval_input", "val/input", "val_input", "eval/data", "val/data", "test/input"),
    "eval_label": ("eval/label", "eval_label", "val/label", "val_label", "eval/target", "val/target", "test/label"),
}

_SPLIT = re.compile(r"[/_.:\-\s]+")
_EVAL_WORDS = {"eval", "evaluation", "val", "valid", "validation", "test", "dev"}
_NEUTRAL_WORDS = {"train", "training", "batch", "network", "net", "model", "summary", "histogram", "tensor", "auto"}
_OTHER_WORDS = {"act", "acts", "activation", "activations", "out", "output", "outputs", "hidden", "logits", "pred"}
_INPUT_WORDS = {"input", "inputs", "data", "image", "images", "img", "imgs", "x", "features", "feature", "samples"}
_LABEL_WORDS = {"label", "labels", "target", "targets", "y", "gt"}
_NOT_DATA = {TagKind.GRADIENT, TagKind.WEIGHT, TagKind.OFFSET, TagKind.SCALE}


@dataclass(frozen=True)
class DataTag:
    """A tag holding network inputs or labels, and the frame it was recorded in."""

    tag: str
    frame: str  # "histograms" or "tensors"

    @property
    def exact(self) -> bool:
        """Tensors hold every value; histograms only buckets and exact count/min/max/sum."""
        return self.frame == "tensors"


def role_of(tag: str) -> Role | None:
    """The role a tag's words give it (``val/label`` -> ``eval_label``), or None."""
    if classify_tag(tag) in _NOT_DATA:
        return None
    words = [w for w in _SPLIT.split(base_name(tag).lower()) if w]
    is_eval = any(w in _EVAL_WORDS for w in words)
    rest = [w for w in words if w not in _EVAL_WORDS and w not in _NEUTRAL_WORDS]
    if not rest or len(rest) > 2 or any(w in _OTHER_WORDS for w in rest):
        return None
    if (len(rest) == 1 and rest[0] in _INPUT_WORDS) or (len(rest) == 2 and {"input", "inputs"} & set(rest)):
        return "eval_input" if is_eval else "input"
    if (len(rest) == 1 and rest[0] in _LABEL_WORDS) or (len(rest) == 2 and {"label", "labels"} & set(rest)):
        return "eval_label" if is_eval else "label"
    return None


def pick_data_tag(role: Role, tags: list[str]) -> str | None:
    """A preferred exact name, else the shortest tag whose words give ``role``."""
    lowered = {base_name(t).lower(): t for t in reversed(tags)}
    for name in PREFERRED[role]:
        if name in lowered:
            return lowered[name]
    candidates = [t for t in tags if role_of(t) == role]
    return min(candidates, key=lambda t: (len(t), tags.index(t))) if candidates else None


def find_data_tag(run: Run, role: Role, context: Context) -> DataTag | None:
    """The tensor or histogram tag of ``role``: the user's override when given, else by name."""
    return _find(run, role, getattr(context.tags, role))


@per_run  # several rules ask, each in requirements and check
def _find(run: Run, role: Role, override: str | None) -> DataTag | None:
    for frame in ("tensors", "histograms"):
        tags = recorded_tags(run, frame)
        tag = (override if override in tags else None) if override is not None else pick_data_tag(role, tags)
        if tag is not None:
            return DataTag(tag, frame)
    return None


def missing_data_tag(role: Role, context: Context) -> Missing:
    """Why a rule needing ``role`` cannot run, and the line to add so that it can."""
    override = getattr(context.tags, role)
    if override is not None:
        return Missing(
            f"no histogram or tensor tag {override!r} (given with {OPTIONS[role]}) in this run", ENABLE[role]
        )
    what = {"input": "network input", "label": "label", "eval_input": "evaluation input", "eval_label": "eval label"}
    return Missing(f"no {what[role]} histogram or tensor recorded", ENABLE[role])


ENABLE: dict[Role, str] = {
    "input": "in the network's construct(): ops.HistogramSummary()('input', x); or name the tag with --input-tag",
    "label": "in the loss cell's construct(): ops.HistogramSummary()('label', label) "
    "(ops.TensorSummary for exact class counts); or name the tag with --label-tag",
    "eval_input": "after each evaluation: summary_record.add_value('histogram', 'eval/input', Tensor(x_eval)); "
    "or name the tag with --eval-input-tag",
    "eval_label": "after each evaluation: summary_record.add_value('histogram', 'eval/label', Tensor(y_eval)); "
    "or name the tag with --eval-label-tag",
}

# --- one row per record ---------------------------------------------------------------------

COLUMNS = [
    "row",
    "step",
    "count",
    "nan",
    "pos_inf",
    "neg_inf",
    "nonfinite",
    "min",
    "max",
    "mean",
    "std",
    "abs_mean",
    "q1",
    "median",
    "q3",
    "integer",
]


def quantiles(buckets: Buckets, qs: np.ndarray) -> np.ndarray:
    """Quantiles of a histogram, values spread uniformly inside each bucket (NaN when empty)."""
    counts = buckets.count.astype(float)
    if counts.sum() <= 0:
        return np.full(len(qs), math.nan)
    order = np.argsort(buckets.left, kind="stable")
    left, width, counts = buckets.left[order], buckets.width[order], counts[order]
    xs = np.concatenate([left[:1], left + width])
    cumulative = np.concatenate([[0.0], np.cumsum(counts)]) / counts.sum()
    return np.interp(qs, cumulative, xs)


_QS = np.array([0.25, 0.5, 0.75])


def _histogram_row(run: Run, index: int, row: Any) -> dict:
    nonfinite = int(row.nan_count + row.pos_inf_count + row.neg_inf_count)
    valid = int(row.count) - nonfinite
    if valid > 0 and row.min == row.max:
        q = np.full(3, float(row.min))
        stats = {"std": 0.0, "abs_mean": abs(float(row.min))}
    else:
        buckets = run.bucket_arrays(index)
        q = quantiles(buckets, _QS)
        stats = bucket_stats(buckets, row.mean) if valid > 0 else {"std": math.nan, "abs_mean": math.nan}
    return {
        "nan": int(row.nan_count),
        "pos_inf": int(row.pos_inf_count),
        "neg_inf": int(row.neg_inf_count),
        "mean": float(row.sum) / valid if valid > 0 else math.nan,
        "std": stats["std"],
        "abs_mean": stats["abs_mean"],
        "q1": q[0],
        "median": q[1],
        "q3": q[2],
        "integer": valid > 0 and all(float(v).is_integer() for v in (row.min, row.max, row.sum)),
    }


def _tensor_row(value: object) -> dict:
    array = np.asarray(value, dtype=float).ravel()
    finite = array[np.isfinite(array)]
    counts = {"nan": int(np.isnan(array).sum()), "pos_inf": int(np.isposinf(array).sum())}
    counts["neg_inf"] = int(np.isneginf(array).sum())
    if finite.size == 0:
        return counts | dict.fromkeys(("mean", "std", "abs_mean", "q1", "median", "q3"), math.nan) | {"integer": False}
    q = np.quantile(finite, _QS)
    return counts | {
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "abs_mean": float(np.abs(finite).mean()),
        "q1": float(q[0]),
        "median": float(q[1]),
        "q3": float(q[2]),
        "integer": bool(np.all(finite == np.round(finite))),
    }


@per_run
def records(run: Run, data: DataTag) -> pd.DataFrame:
    """One row per current record of ``data`` in step order: counts, exact extremes, spread, quartiles.

    From histograms, count/min/max/sum and the NaN/Inf counts are exact; std,
    mean |x| and the quartiles are estimated from the buckets. ``integer``
    says every finite value is a whole number (labels, token ids).
    """
    frame = run.current(data.frame)
    frame = frame[frame["tag"] == data.tag].sort_values("step", kind="stable")
    rows = []
    for index, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        histogram = data.frame == "histograms"
        extra = _histogram_row(run, index, row) if histogram else _tensor_row(row.value)
        count = int(row.count if histogram else row.size)
        rows.append({"row": index, "step": int(row.step), "count": count, "min": row.min, "max": row.max})
        rows[-1].update(extra)
        rows[-1]["nonfinite"] = rows[-1]["nan"] + rows[-1]["pos_inf"] + rows[-1]["neg_inf"]
    return pd.DataFrame(rows, columns=COLUMNS)


def record_buckets(run: Run, data: DataTag, row: pd.Series) -> Buckets:
    """The buckets of one record; a tensor record becomes one zero-width bucket per distinct value."""
    if data.frame == "histograms":
        return run.bucket_arrays(row["row"])
    values = np.asarray(run.tensors.at[row["row"], "value"], dtype=float).ravel()
    values, counts = np.unique(values[np.isfinite(values)], return_counts=True)
    return Buckets(values, np.zeros(len(values)), counts.astype(np.int64))
