"""Many recorded batches of one tag pooled into one distribution, and distances between such pools.

Each record (a histogram, or a tensor as zero-width buckets) becomes a CDF on
one shared grid; a pool is the count-weighted mean of its records' CDFs. The
drift between two pools follows Deepchecks' numeric drift score: the earth
mover's (Wasserstein-1) distance on the central part of the two
distributions (outer 2.5% on each side clipped, Deepchecks'
``margin_quantile_filter``), divided by that part's width, so 0 means equal
and 1 means disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from summary_doctor.reader.run import Buckets

MARGIN = 0.025


def cdf_on(buckets: Buckets, grid: np.ndarray) -> np.ndarray:
    """Share of values <= each grid point, values uniform inside a bucket (a zero-width bucket is a step)."""
    total = float(buckets.count.sum())
    if total <= 0:
        return np.zeros(len(grid))
    left, width, counts = buckets.left, buckets.width, buckets.count
    if len(left) and (width > 0).all() and (left[1:] >= left[:-1] + width[:-1]).all():
        # ordered, non-overlapping buckets (what MindSpore writes): linear between the edges
        cumulative = np.cumsum(counts) / total
        xs = np.column_stack([left, left + width]).ravel()
        ys = np.column_stack([cumulative - counts / total, cumulative]).ravel()
        return np.interp(grid, xs, ys, left=0.0, right=1.0)
    left, width = left[:, None], width[:, None]
    safe = np.where(width > 0, width, 1.0)
    inside = np.where(width > 0, np.clip((grid[None, :] - left) / safe, 0, 1), (grid[None, :] >= left).astype(float))
    return (buckets.count[:, None] * inside).sum(axis=0) / total


@dataclass
class Pool:
    """Records of one tag on a shared grid: per-record CDFs and their counts."""

    cdfs: np.ndarray  # (records, grid)
    counts: np.ndarray  # (records,)

    def __post_init__(self) -> None:
        self._weights = self.counts.astype(float)
        self._sum = self._weights @ self.cdfs if len(self.cdfs) else np.zeros(0)

    def cdf(self, exclude: int | None = None) -> np.ndarray:
        """The pooled CDF, optionally without one record."""
        if exclude is None:
            return self._sum / self._weights.sum()
        rest = self._weights.sum() - self._weights[exclude]
        return (self._sum - self._weights[exclude] * self.cdfs[exclude]) / rest


MAX_GRID = 4096
MAX_RECORDS = 200


def grid_of(bucket_lists: list[list[Buckets]], limit: int = MAX_GRID) -> np.ndarray:
    """The bucket edges of every record, sorted (the CDFs are piecewise linear between them).

    Beyond ``limit`` edges an evenly spaced subset of them is kept (the
    extremes included), so the grid stays dense where the data are.
    """
    edges = [np.concatenate([b.left, b.left + b.width]) for buckets in bucket_lists for b in buckets]
    grid = np.unique(np.concatenate(edges)) if edges else np.zeros(0)
    if len(grid) > limit:
        grid = grid[np.unique(np.linspace(0, len(grid) - 1, limit).round().astype(int))]
    return grid


def thinned(count: int, limit: int = MAX_RECORDS) -> np.ndarray:
    """Positions of at most ``limit`` records spread evenly over ``count`` (first and last kept)."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(int))


def pool(buckets: list[Buckets], grid: np.ndarray) -> Pool:
    """The records' CDFs on ``grid``."""
    return Pool(np.array([cdf_on(b, grid) for b in buckets]), np.array([b.count.sum() for b in buckets]))


def central_range(a: np.ndarray, b: np.ndarray, grid: np.ndarray) -> tuple[float, float]:
    """The 2.5% and 97.5% quantiles of the two CDFs given equal weight."""
    mixed = (a + b) / 2
    low = float(np.interp(MARGIN, mixed, grid)) if mixed[-1] > 0 else float(grid[0])
    high = float(np.interp(1 - MARGIN, mixed, grid)) if mixed[-1] > 0 else float(grid[-1])
    return low, high


def drift(a: np.ndarray, b: np.ndarray, grid: np.ndarray, low: float, high: float) -> float:
    """W1 between two CDFs on ``grid`` restricted to [low, high], divided by its width (0..1)."""
    if not high > low:
        return 0.0
    points = np.unique(np.concatenate([grid[(grid > low) & (grid < high)], [low, high]]))
    gap = np.abs(np.interp(points, grid, a) - np.interp(points, grid, b))
    return float(((gap[1:] + gap[:-1]) / 2 * np.diff(points)).sum() / (high - low))
