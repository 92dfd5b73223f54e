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
    left, width = buckets.left[:, None], buckets.width[:, None]
    safe = np.where(width > 0, width, 1.0)
    inside = np.where(width > 0, np.clip((grid[None, :] - left) / safe, 0, 1), (grid[None, :] >= left).astype(float))
    return (buckets.count[:, None] * inside).sum(axis=0) / total


@dataclass
class Pool:
    """Records of one tag on a shared grid: per-record CDFs and their counts."""

    cdfs: np.ndarray  # (records, grid)
    counts: np.ndarray  # (records,)

    def cdf(self, exclude: int | None = None) -> np.ndarray:
        """The pooled CDF, optionally without one record."""
        weights = self.counts.astype(float).copy()
        if exclude is not None:
            weights[exclude] = 0.0
        return weights @ self.cdfs / weights.sum()


def grid_of(bucket_lists: list[list[Buckets]]) -> np.ndarray:
    """Every bucket edge of every record, sorted: the CDFs are piecewise linear between them."""
    edges = [np.concatenate([b.left, b.left + b.width]) for buckets in bucket_lists for b in buckets]
    return np.unique(np.concatenate(edges)) if edges else np.zeros(0)


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
