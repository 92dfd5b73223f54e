"""Measures of a loss curve shared by several rules: divergence, oscillation, stall, end slope.

Each returns numbers; the rules compare them with their thresholds. Levels
and windows come from ``_series``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from summary_doctor.rules._series import (
    JUDGMENT_POINT,
    Curve,
    rolling_median,
    smoothing_window,
    start_level,
    start_value,
    step_noise,
    tail_level,
    tail_window,
    theil_sen,
)


@dataclass(frozen=True)
class Divergence:
    """How far the end of the run sits above the best the smoothed loss reached."""

    rise: float
    standard_error: float
    min_step: int
    min_value: float
    final_value: float
    first_step: int | None
    above_start: bool

    def exceeds(self, rise_factor: float, min_t: float) -> bool:
        """A rise of at least ``rise_factor`` times, and ``min_t`` standard errors above the noise."""
        return self.rise >= math.log(rise_factor) and self.rise >= min_t * self.standard_error


def block_medians(level: np.ndarray, window: int) -> np.ndarray:
    """Medians of consecutive, non-overlapping blocks of ``window`` points (the last block may be short).

    Per-batch losses are noisy; a block median is the step-level analogue of
    the per-epoch values AUTOTRAINER judges, and unlike a running median its
    blocks are independent, so the extremes over them can be corrected for.
    """
    window = max(1, int(window))
    return np.array([np.median(level[i : i + window]) for i in range(0, len(level), window)])


def selection_margin(blocks: int) -> float:
    """Extra standard errors the most extreme of ``blocks`` independent medians reaches by chance.

    The expected maximum of k standard normals is about sqrt(2 ln k): comparing
    the end of a run with the best of many blocks must clear that, or a lucky
    block passes for a real minimum.
    """
    return math.sqrt(2.0 * math.log(blocks)) if blocks > 1 else 0.0


def divergence(c: Curve, rise_threshold: float) -> Divergence:
    """Rise of the end level above the best block before it (``rise_threshold`` in levels).

    The end and each earlier block are medians of the same number of points,
    so their noise is alike; ``standard_error`` is that of the difference of
    two such medians under the curve's step noise (a median's error is about
    1.25 sigma / sqrt(n)), widened by :func:`selection_margin` because the
    best block is the minimum of many.
    """
    window = max(1, tail_window(c))
    level = c.level
    final = tail_level(c)
    earlier = level[: max(1, len(c) - window)]
    blocks = block_medians(earlier, window)
    lowest_block = int(np.argmin(blocks))
    best_level = float(blocks[lowest_block])
    block_start = lowest_block * window
    block = c.values[block_start : block_start + window]
    best = block_start + int(np.argsort(block)[len(block) // 2])
    smooth = rolling_median(level, window)
    after = np.nonzero(smooth[block_start:] > best_level + rise_threshold)[0]
    noise = 1.25 * step_noise(level) * math.sqrt(2.0 / window)
    return Divergence(
        rise=final - best_level,
        standard_error=noise * (1.0 + selection_margin(len(blocks)) / 3.0),
        min_step=int(c.steps[best]),
        min_value=c.value_at(best_level),
        final_value=float(np.median(c.values[-window:])),
        first_step=int(c.steps[block_start + after[0]]) if len(after) else None,
        above_start=final > start_level(c),
    )


@dataclass(frozen=True)
class Oscillation:
    """Swing of the late loss around its trend (q90 - q10 of the residual level) against the net progress."""

    amplitude: float
    progress: float
    low: float
    high: float
    start_step: int


def oscillation(c: Curve) -> Oscillation:
    """Swings after the judgment point around their own trend, and how much lower the loss is there than at the start.

    The swing is measured on block medians (a third of an epoch, or 5% of the
    run, at least 5 points), not on single records: the per-batch noise of a
    healthy small-batch run spans a factor of ten, while a learning rate that
    is too large moves the whole curve (AUTOTRAINER judges per-epoch values).
    The blocks' straight-line trend (Theil-Sen) is taken out first: a loss
    still falling steadily through its late part is descending, not swinging.
    ``low``/``high`` are the 10%/90% quantiles of the late block medians.
    """
    first = int(len(c) * JUDGMENT_POINT)
    window = smoothing_window(c)
    late = block_medians(c.level[first:], window)
    if len(late) < 3:
        late = c.level[first:]
    position = np.arange(len(late), dtype=float)
    residual = late - theil_sen(position, late) * position
    q10, q90 = np.quantile(residual, [0.1, 0.9])
    low, high = np.quantile(late, [0.1, 0.9])
    return Oscillation(
        amplitude=float(q90 - q10),
        progress=start_level(c) - float(np.median(late)),
        low=c.value_at(float(low)),
        high=c.value_at(float(high)),
        start_step=int(c.steps[first]),
    )


@dataclass(frozen=True)
class Stall:
    """Where the smoothed loss last improved significantly, and how far it got from its start."""

    stall_step: int
    stalled_fraction: float
    remaining: float
    start_value: float
    final_value: float


def stall(c: Curve, min_gain: float) -> Stall:
    """The earliest point after which the running median never beats its best by more than ``min_gain``.

    ``min_gain`` is raised to three standard errors of the running median, so
    step noise is never taken for progress.
    """
    window = smoothing_window(c)
    smooth = c.smooth(window)
    gain = max(min_gain, 3.0 * step_noise(c.level) / math.sqrt(window))
    best = np.minimum.accumulate(smooth)
    later_best = np.minimum.accumulate(smooth[::-1])[::-1]
    improving = best[:-1] - later_best[1:] >= gain
    stop = int(np.nonzero(improving)[0][-1]) + 1 if improving.any() else 0
    span = float(c.steps[-1] - c.steps[0]) or 1.0
    return Stall(
        stall_step=int(c.steps[stop]),
        stalled_fraction=float(c.steps[-1] - c.steps[stop]) / span,
        remaining=tail_level(c) - start_level(c),
        start_value=start_value(c),
        final_value=float(np.median(c.values[-tail_window(c) :])),
    )


@dataclass(frozen=True)
class EndSlope:
    """The loss trend over the last window: drop per epoch (levels) and its significance."""

    drop_per_epoch: float
    t_value: float
    share_of_progress: float
    start_step: int


def end_slope(c: Curve, *, epochs: float, fraction: float) -> EndSlope:
    """Theil-Sen slope of the level over the last ``epochs`` epochs (or ``fraction`` of the run).

    ``t_value`` divides the window's fitted drop by the standard error a line
    fit would have under the curve's own step noise. ``share_of_progress``
    is the window's drop over the whole run's drop: near the window's share
    of the run when the loss falls as steeply at the end as on average.
    """
    n = min(len(c), c.window(epochs=epochs, fraction=fraction, minimum=5))
    steps, level = c.steps[-n:], c.level[-n:]
    slope = theil_sen(steps, level)
    spread = float(np.sqrt(np.sum((steps - steps.mean()) ** 2))) or 1.0
    noise = step_noise(c.level) or 1e-12
    drop = -slope * float(steps[-1] - steps[0])
    per_epoch = -slope * c.per_epoch if c.per_epoch else drop
    total = start_level(c) - tail_level(c)
    return EndSlope(
        drop_per_epoch=float(per_epoch),
        t_value=float(-slope * spread / noise),
        share_of_progress=float(drop / total) if total > 0 else math.inf,
        start_step=int(steps[0]),
    )
