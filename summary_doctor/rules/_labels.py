"""Class counts from recorded labels: exact from tensors, decoded from histograms where MindSpore allows.

MindSpore buckets a histogram over [min, max] with ``count // 10 + 1``
buckets (at most 90), and for an integer tensor the bucket edges are
``np.linspace(min, max, n + 1, dtype=int32)``: whole numbers, some buckets of
width 0. So each bucket ``[left, left + width)`` (the last one closed) holds
the integers inside it, usually one class, sometimes two (a batch of 32
labels 0..3 gets the edges 0, 0, 1, 2, 3: classes 2 and 3 share the closed
last bucket). The exact sum of the labels then splits the one bucket that
holds two classes. When more buckets hold several classes (float labels,
large batches of many classes with few buckets) only the totals of those
groups are known; they still bound the least/most ratio from above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from summary_doctor.reader.run import Buckets, Run
from summary_doctor.rules._inputs import DataTag, records


@dataclass
class ClassCounts:
    """Labels summed over the recorded batches: per class where resolved, per group of classes otherwise."""

    counts: dict[int, float] = field(default_factory=dict)
    groups: dict[tuple[int, ...], float] = field(default_factory=dict)
    records: int = 0
    single_class: list[int | None] = field(default_factory=list)
    variances: list[float] = field(default_factory=list)
    """Per record, the exact variance of its labels (NaN when its classes are not resolved)."""

    @property
    def resolved(self) -> bool:
        """True when every class's count is known (no group of classes left)."""
        return not self.groups

    def add(self, classes: tuple[int, ...], count: float) -> None:
        if count == 0:  # an empty bucket says each of its classes is absent from the batch
            for c in classes:
                self.counts.setdefault(c, 0.0)
        elif len(classes) == 1:
            self.counts[classes[0]] = self.counts.get(classes[0], 0.0) + count
        elif len(classes) > 1:
            self.groups[classes] = self.groups.get(classes, 0.0) + count

    def classes(self) -> list[int]:
        """Every class id between the smallest and the largest one seen (absent ones count 0)."""
        seen = set(self.counts) | {c for group in self.groups for c in group}
        return list(range(min(seen), max(seen) + 1)) if seen else []

    def components(self) -> list[tuple[tuple[int, ...], float]]:
        """Classes linked by sharing a bucket, with their exact total (a resolved class stands alone)."""
        parent = {c: c for c in self.classes()}

        def root(c: int) -> int:
            while parent[c] != c:
                c = parent[c]
            return c

        for group in self.groups:
            for c in group[1:]:
                parent[root(c)] = root(group[0])
        members: dict[int, list[int]] = {}
        for c in parent:
            members.setdefault(root(c), []).append(c)
        totals = {r: sum(self.counts.get(c, 0.0) for c in m) for r, m in members.items()}
        for group, n in self.groups.items():
            totals[root(group[0])] += n
        return [(tuple(m), totals[r]) for r, m in members.items()]

    def bounds(self) -> tuple[float, float]:
        """An upper bound on the least class's count and a lower bound on the most's.

        Exact when resolved. Otherwise each set of classes that share buckets
        has an exact total, so one of its k classes has at most total/k and
        one at least total/k: the least/most ratio is at most these bounds'.
        """
        shares = [total / len(classes) for classes, total in self.components()]
        return (min(shares), max(shares)) if shares else (math.nan, math.nan)


def _bucket_classes(buckets: Buckets) -> list[tuple[tuple[int, ...], float]]:
    """The integers each bucket holds (right edge = next bucket's left; the last bucket is closed)."""
    order = np.argsort(buckets.left, kind="stable")
    left, width, counts = buckets.left[order], buckets.width[order], buckets.count[order]
    right = np.append(left[1:], left[-1] + width[-1]) if len(left) else left
    result = []
    for i, (lo, hi, n) in enumerate(zip(left, right, counts, strict=True)):
        last = i == len(left) - 1
        ints = range(math.ceil(lo), math.floor(hi) + 1 if last else math.ceil(hi))
        result.append((tuple(ints), float(n)))
    return result


def _split_by_sum(buckets: list[tuple[tuple[int, ...], float]], total: float) -> list[tuple[tuple[int, ...], float]]:
    """Resolve the single bucket holding two classes with the exact label sum; otherwise leave as is."""
    shared = [i for i, (classes, n) in enumerate(buckets) if len(classes) > 1 and n > 0]
    if len(shared) != 1 or len(buckets[shared[0]][0]) != 2:
        return buckets
    (a, b), n = buckets[shared[0]]
    known = sum(classes[0] * count for classes, count in buckets if len(classes) == 1)
    upper = total - known - a * n  # = (b - a) * n_b
    n_b = upper / (b - a)
    if not (-1e-6 <= n_b <= n + 1e-6) or abs(n_b - round(n_b)) > 1e-6:
        return buckets
    resolved = [item for i, item in enumerate(buckets) if i != shared[0]]
    return [*resolved, ((a,), n - round(n_b)), ((b,), float(round(n_b)))]


def _histogram_counts(run: Run, row: Any) -> list[tuple[tuple[int, ...], float]]:
    if row.min == row.max:
        return [((int(row.min),), float(row.count - row.nonfinite))]
    buckets = _bucket_classes(run.bucket_arrays(row.row))
    return _split_by_sum(buckets, float(row.mean) * (row.count - row.nonfinite))


def _tensor_counts(value: object) -> list[tuple[tuple[int, ...], float]]:
    array = np.asarray(value, dtype=float)
    if array.ndim == 2 and array.shape[1] > 1 and np.isin(array, (0.0, 1.0)).all() and (array.sum(1) == 1).all():
        array = array.argmax(axis=1)  # one-hot rows
    values = array.ravel()
    values = values[np.isfinite(values)].astype(np.int64)
    classes, counts = np.unique(values, return_counts=True)
    return [((int(c),), float(n)) for c, n in zip(classes, counts, strict=True)]


def class_counts(run: Run, data: DataTag) -> ClassCounts | None:
    """Class counts summed over every record of a label tag; None when the labels are not whole numbers."""
    key = ("class_counts", data.frame, data.tag)
    if key not in run.derived:  # several rules ask
        run.derived[key] = _class_counts(run, data)
    return run.derived[key]


def _class_counts(run: Run, data: DataTag) -> ClassCounts | None:
    rows = records(run, data)
    rows = rows[rows["count"] > rows["nonfinite"]]
    if rows.empty or not rows["integer"].all():
        return None
    result = ClassCounts(records=len(rows))
    for row in rows.itertuples(index=False):
        parts = _tensor_counts(run.tensors.at[row.row, "value"]) if data.exact else _histogram_counts(run, row)
        for classes, count in parts:
            result.add(classes, count)
        present = {c for classes, count in parts if count > 0 for c in classes}
        result.single_class.append(present.pop() if len(present) == 1 else None)
        result.variances.append(_variance(parts))
    return result


def _variance(parts: list[tuple[tuple[int, ...], float]]) -> float:
    """Variance of one batch's labels from its class counts; NaN when a count covers several classes."""
    if any(len(classes) != 1 for classes, count in parts if count > 0):
        return math.nan
    values = np.array([classes[0] for classes, count in parts if count > 0], dtype=float)
    weights = np.array([count for classes, count in parts if count > 0], dtype=float)
    if weights.sum() <= 0:
        return math.nan
    mean = float((values * weights).sum() / weights.sum())
    return float((weights * (values - mean) ** 2).sum() / weights.sum())


def is_one_hot(run: Run, data: DataTag, batch_size: float | None) -> bool:
    """Histogram labels that look one-hot: only 0 and 1, k values per sample, exactly one 1 per sample."""
    rows = records(run, data)
    if data.exact or rows.empty or not batch_size:
        return False
    ratio = rows["count"] / batch_size
    mean = rows["mean"]
    return bool(
        ((rows["min"] >= 0) & (rows["max"] <= 1)).all()
        and (ratio > 1).all()
        and np.allclose(ratio, ratio.round())
        and np.allclose(mean * ratio, 1.0)
    )
