"""What plots need from a run: series, the loss tag, histogram grids over steps.

Only the rows a plot draws are decoded, all of a tag's at once (thinned to
``MAX_HEATMAP_STEPS`` for drawing, never for analysis), and kept for the
other plots of the same tag; weight update ratios are the rules' own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from summary_doctor.reader.buckets import BucketTable
from summary_doctor.reader.run import Buckets, Run
from summary_doctor.rules._bucket_stats import by_size

MAX_HEATMAP_STEPS = 120
GRID_BINS = 64
_EVAL = re.compile(r"(^|[/_.-])(eval|val|valid|validation|test)([/_.-]|$)", re.IGNORECASE)


def is_eval_tag(tag: str) -> bool:
    """Whether a scalar tag looks like an evaluation metric (``eval_loss``, ``val/acc``)."""
    return bool(_EVAL.search(tag))


def parameter_name(tag: str) -> str:
    """``fc1.weight/auto`` -> ``fc1.weight``: SummaryCollector suffixes the parameter name."""
    return tag.rsplit("/", 1)[0] if tag.endswith("/auto") else tag


def scalar_tags(run: Run) -> list[str]:
    """Scalar tags in first-seen order."""
    return list(dict.fromkeys(run.current("scalars")["tag"]))


def loss_tag(run: Run, tags: tuple[str, ...] = (), *, evaluation: bool = False) -> str | None:
    """The training (or evaluation) loss tag: a finding's own scalar tag first, then by name."""
    names = scalar_tags(run)
    for tag in tags:
        if tag in names and is_eval_tag(tag) == evaluation:
            return tag
    candidates = [t for t in names if "loss" in t.lower() and is_eval_tag(t) == evaluation]
    return candidates[0] if candidates else None


def series(run: Run, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and float values of a scalar tag (NaN and Inf kept: they are the point)."""
    values = run.scalar_series(tag)
    return values.index.to_numpy(dtype=float), values.to_numpy(dtype=float)


def tag_kind(run: Run, tag: str) -> str | None:
    """Which frame holds ``tag``: scalars, histograms or tensors."""
    for kind in ("scalars", "histograms", "tensors"):
        if (getattr(run, kind)["tag"] == tag).any():
            return kind
    return None


def histogram_rows(run: Run, tag: str, limit: int = MAX_HEATMAP_STEPS) -> pd.DataFrame:
    """Current histogram rows of ``tag`` in step order, evenly thinned to ``limit`` (first and last kept)."""
    if limit != MAX_HEATMAP_STEPS:
        return _thinned(run, tag, limit)
    cache: dict[str, pd.DataFrame] = run.derived.setdefault("drawn_rows", {})
    if tag not in cache:
        cache[tag] = _thinned(run, tag, limit)
    return cache[tag]


def _thinned(run: Run, tag: str, limit: int) -> pd.DataFrame:
    """The tag's rows in step order, found by one grouping of the run's rows (not a filter per tag)."""
    if "rows_by_tag" not in run.derived:
        rows = run.current("histograms")[["tag", "step"]].sort_values("step", kind="stable")
        run.derived["rows_by_tag"] = (rows.index.to_numpy(), rows.groupby("tag", sort=False).indices)
    labels, positions = run.derived["rows_by_tag"]
    taken = positions.get(tag, np.zeros(0, dtype=np.int64))
    if len(taken) > limit:
        taken = taken[np.unique(np.linspace(0, len(taken) - 1, limit).round().astype(int))]
    return run.histograms.loc[labels[taken]]


@dataclass
class Grid:
    """Histograms of one tag resampled onto one value grid: ``density[step, bin]`` sums to 1 per step."""

    steps: np.ndarray
    edges: np.ndarray
    density: np.ndarray
    nonfinite: np.ndarray


def _range(rows: pd.DataFrame) -> tuple[float, float]:
    lows = rows["min"].to_numpy(dtype=float)
    highs = rows["max"].to_numpy(dtype=float)
    finite = np.isfinite(lows) & np.isfinite(highs)
    if not finite.any():
        return -1.0, 1.0
    low, high = float(lows[finite].min()), float(highs[finite].max())
    if high - low < 1e-12:
        pad = max(abs(low) * 0.1, 1e-3)
        return low - pad, high + pad
    return low, high


def _resample(buckets: Buckets, edges: np.ndarray) -> np.ndarray:
    """Spread each bucket's count evenly over its width onto ``edges``; shares sum to 1.

    Interpolating the cumulative count avoids the stripes that binning bucket
    centres gives when MindSpore's bucket width and the grid's differ.
    """
    counts = buckets.count.astype(float)
    total = counts.sum()
    if not total:
        return np.zeros(len(edges) - 1)
    lefts = buckets.left
    rights = lefts + buckets.width
    order = np.argsort(lefts)
    bounds = np.concatenate([lefts[order][:1], rights[order]])
    cumulative = np.concatenate([[0.0], np.cumsum(counts[order])])
    if bounds[-1] - bounds[0] < 1e-12:
        shares = np.zeros(len(edges) - 1)
        shares[np.clip(np.searchsorted(edges, bounds[0]) - 1, 0, len(shares) - 1)] = 1.0
        return shares
    return np.diff(np.interp(edges, bounds, cumulative)) / total


def histogram_grid(run: Run, tag: str, bins: int = GRID_BINS) -> Grid | None:
    """Resample each step's buckets onto a shared grid so steps can be stacked into a heatmap."""
    rows = histogram_rows(run, tag)
    if rows.empty:
        return None
    low, high = _range(rows)
    edges = np.linspace(low, high, bins + 1)
    density = np.zeros((len(rows), bins))
    table = drawn_buckets(run, tag)
    for i in range(len(table)):
        density[i] = _resample(Buckets(*table.row(i)), edges)
    nonfinite = (rows["nan_count"] + rows["pos_inf_count"] + rows["neg_inf_count"]).to_numpy(dtype=float)
    return Grid(rows["step"].to_numpy(dtype=float), edges, density, nonfinite)


def drawn_buckets(run: Run, tag: str) -> BucketTable:
    """The buckets of the rows of ``tag`` that plots draw (:func:`histogram_rows`), decoded once per run."""
    cache: dict[str, BucketTable] = run.derived.setdefault("drawn_buckets", {})
    if tag not in cache:
        cache[tag] = run.bucket_table(histogram_rows(run, tag).index.to_numpy())
    return cache[tag]


def share_at_most_zero(run: Run, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the share of a histogram's values in buckets that start at or below zero.

    For a ReLU output every zero lands in the first bucket, so this is the
    dead share at bucket resolution (slightly high when buckets are coarse).
    """
    rows = histogram_rows(run, tag)
    table = drawn_buckets(run, tag)
    owner = np.repeat(np.arange(len(table)), table.sizes)
    total = np.bincount(owner, weights=table.count, minlength=len(table))
    low = np.bincount(owner, weights=np.where(table.left <= 0, table.count, 0), minlength=len(table))
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(total != 0, low / total, np.nan)
    return rows["step"].to_numpy(dtype=float), shares


def rms_series(run: Run, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """Root-mean-square per step of a histogram or tensor tag: a norm comparable across layers."""
    tensors = run.current("tensors")
    tensors = tensors[tensors["tag"] == tag].sort_values("step", kind="stable")
    if not tensors.empty:
        rms = np.sqrt(tensors["std"].to_numpy(dtype=float) ** 2 + tensors["mean"].to_numpy(dtype=float) ** 2)
        return tensors["step"].to_numpy(dtype=float), rms
    rows = histogram_rows(run, tag)
    values = np.full(len(rows), np.nan)
    for group, left, width, count in by_size(drawn_buckets(run, tag)):
        total = count.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rms = np.sqrt((count * (left + width / 2) ** 2).sum(axis=1) / total)
        values[group] = np.where(total != 0, rms, np.nan)
    nonfinite = (rows["nan_count"] + rows["pos_inf_count"] + rows["neg_inf_count"]).to_numpy() > 0
    values[nonfinite] = np.nan
    return rows["step"].to_numpy(dtype=float), values


def update_ratios(run: Run) -> pd.DataFrame:
    """The weight-update ratios exactly as the rules compute them (one definition, same numbers).

    Columns ``tag``, ``step``, ``ratio``, ``exact``: from histograms the ratio
    is a lower bound (Wasserstein distance over mean |w|, per step of the gap).
    """
    from summary_doctor.rules.weights import update_ratios as compute

    return compute(run)
