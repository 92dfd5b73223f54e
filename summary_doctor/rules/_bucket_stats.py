"""Bucket statistics of many histograms at once, bit for bit ``bucket_stats`` of each.

Sums over a histogram's buckets run over rows of equal length (histograms
grouped by bucket count), where numpy's ``sum(axis=1)`` adds in exactly the
order ``sum()`` of one row does, so every number equals the one-histogram
helper's. Used by the rules (``with_bucket_stats``, update ratios) and the
report (RMS per step).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from summary_doctor.reader.buckets import BucketTable

STAT_COLUMNS = ("std", "abs_mean", "l2", "zero_fraction", "nonpositive")


def by_size(table: BucketTable, positions: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, ...]]:
    """Histograms grouped by bucket count: positions, and left/width/count as (histograms x buckets) arrays."""
    positions = np.arange(len(table)) if positions is None else positions
    sizes = table.sizes[positions]
    for size in np.unique(sizes):
        group = positions[sizes == size]
        flat = (table.offsets[group][:, None] + np.arange(size)).ravel()
        shape = (len(group), int(size))
        yield group, *(a[flat].reshape(shape) for a in (table.left, table.width, table.count.astype(float)))


def chunks(sizes: np.ndarray, limit: int) -> list[np.ndarray]:
    """Consecutive positions split so that each part's ``sizes`` add up to about ``limit`` at most."""
    cut = np.floor_divide(np.cumsum(sizes), limit)
    return [np.flatnonzero(cut == k) for k in np.unique(cut)]


def abs_mean_per_bucket(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Mean of |x| for x uniform on [left, right]: exact for buckets straddling zero too."""
    width = np.where(right > left, right - left, 1.0)
    straddle = (left * right < 0) & (right > left)
    return np.where(straddle, (left**2 + right**2) / (2 * width), np.abs(left + right) / 2)


def table_stats(table: BucketTable, means: np.ndarray) -> np.ndarray:
    """``bucket_stats`` of every histogram of ``table`` (``means[i]`` for histogram ``i``): (n, 5)."""
    out = np.full((len(table), len(STAT_COLUMNS)), np.nan)
    for group, left, width, counts in by_size(table):
        out[group] = _group_stats(left, width, counts, means[group])
    return out


def abs_means(table: BucketTable, positions: np.ndarray) -> np.ndarray:
    """``bucket_stats(...)["abs_mean"]`` of histograms ``positions`` only (what update ratios divide by)."""
    out = np.full(len(table), np.nan)
    for group, left, width, counts in by_size(table, np.unique(positions)):
        total = counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (counts * abs_mean_per_bucket(left, left + width)).sum(axis=1) / total
        out[group] = np.where(total > 0, means, np.nan)
    return out[positions]


def _group_stats(left: np.ndarray, width: np.ndarray, counts: np.ndarray, means: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=1)
    right = left + width
    centre = left + width / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        centre_mean = np.where(np.isfinite(means), means, (counts * centre).sum(axis=1) / total)
        variance = (counts * ((centre - centre_mean[:, None]) ** 2 + width**2 / 12)).sum(axis=1) / total
        last = np.arange(left.shape[1]) == left.shape[1] - 1
        holds_zero = (left <= 0) & ((right > 0) | ((right == 0) & last))
        holds_zero |= (width == 0) & (left == 0)
        stats = np.column_stack(
            [
                np.sqrt(np.maximum(variance, 0.0)),
                (counts * abs_mean_per_bucket(left, right)).sum(axis=1) / total,
                np.sqrt((counts * centre**2).sum(axis=1)),
                np.where(holds_zero, counts, 0.0).sum(axis=1) / total,
                np.where((right <= 0) | holds_zero, counts, 0.0).sum(axis=1) / total,
            ]
        )
    stats[~(total > 0)] = np.nan
    return stats
