"""Scale-free helpers for training curves, shared by the dynamics and hyperparameter rules.

A rule must work for a loss of 0.01 and of 1000, for 100 steps and 100,000,
and for the noisy step-level losses SummaryCollector records every
``collect_freq`` steps. So curves are compared on a log scale (a ratio of
losses, not a difference), spreads are robust (median / MAD, quantiles), and
windows are measured in epochs when the epoch length is known, otherwise in
fractions of the run.

Every rule that reads the loss reads it the same way (``Curve``): only the
points before the first NaN/Inf, on the level ``ln(loss + 5% of the start)``,
so changes far below the start (a converged loss wobbling between 0.004 and
0.013 after starting at 2.3) are judged as the small share of the progress
they are, not as ratios of tiny numbers; and "converged" means ended below
half the start on that scale (``CONVERGED_RATIO``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from summary_doctor.reader.run import Run
from summary_doctor.rules.base import Context, Missing
from summary_doctor.rules.tags import curve, missing_tag, steps_per_epoch

#: MAD to standard deviation for Gaussian noise.
MAD_TO_SIGMA = 1.4826
#: Theil-Sen is quadratic in the number of points: longer curves are thinned evenly first.
_MAX_SLOPE_POINTS = 400


def to_level(values: np.ndarray) -> np.ndarray:
    """Values on a scale where equal differences mean equal relative changes.

    Positive curves (almost every loss) go to natural log, so a difference of
    0.69 is a factor of 2 whatever the loss unit. Curves with zero or negative
    values are divided by their median magnitude instead.
    """
    values = np.asarray(values, dtype=float)
    if values.size and np.all(values > 0):
        return np.log(values)
    magnitude = float(np.median(np.abs(values))) if values.size else 1.0
    return values / (magnitude if magnitude > 0 else 1.0)


def robust_sigma(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation (outlier-proof)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return 0.0
    return float(MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


def step_noise(level: np.ndarray) -> float:
    """Point-to-point noise of a curve: robust spread of its first differences over sqrt(2).

    Differencing removes the trend, so a falling loss is not mistaken for a
    noisy one.
    """
    if len(level) < 3:
        return 0.0
    return robust_sigma(np.diff(level)) / np.sqrt(2.0)


def rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median; the ends use the points available."""
    window = max(1, int(window))
    return pd.Series(values).rolling(window, center=True, min_periods=1).median().to_numpy()


def theil_sen(x: np.ndarray, y: np.ndarray) -> float:
    """Median of pairwise slopes: a line fit that one spike cannot tilt."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) > _MAX_SLOPE_POINTS:
        keep = np.linspace(0, len(x) - 1, _MAX_SLOPE_POINTS).round().astype(int)
        x, y = x[keep], y[keep]
    i, j = np.triu_indices(len(x), k=1)
    dx = x[j] - x[i]
    valid = dx != 0
    if not valid.any():
        return 0.0
    return float(np.median((y[j] - y[i])[valid] / dx[valid]))


def window_points(steps: np.ndarray, per_epoch: float | None, *, epochs: float, fraction: float, minimum: int) -> int:
    """How many recorded points cover ``epochs`` epochs (or ``fraction`` of the run if unknown).

    Never less than ``minimum`` nor more than the whole curve.
    """
    n = len(steps)
    if n == 0:
        return 0
    if per_epoch and n > 1:
        spacing = float(np.median(np.diff(steps))) or 1.0
        points = round(epochs * per_epoch / spacing)
    else:
        points = round(fraction * n)
    return int(min(n, max(minimum, points)))


#: Loss levels are read on the scale of the run's start: ``ln(loss + FLOOR * start)``. A loss far
#: above the floor changes by ratios, as before; near or below it, changes count as fractions of
#: the starting loss, so 0.004 -> 0.013 after a start of 2.3 is a wobble of 0.4% of the start, not
#: a 3x rise. 5% of the start is where a run has made 95% of the progress a loss can make.
FLOOR = 0.05


@dataclass(frozen=True)
class Curve:
    """One scalar curve up to its first non-finite value, with its level scale and epoch length.

    ``nonfinite_step`` is the step of the first NaN/Inf (None when every value
    is finite): after it the weights are usually corrupt, so no trend measured
    on later points means anything. ``floor`` is ``FLOOR`` times the start
    (0 for curves with negative values, which keep :func:`to_level`).
    """

    steps: np.ndarray
    values: np.ndarray
    per_epoch: float | None = None
    nonfinite_step: int | None = None
    floor: float = 0.0

    @classmethod
    def of(cls, series: pd.Series, per_epoch: float | None = None) -> Curve:
        """The points of ``series`` (values indexed by step) before its first non-finite value."""
        values = series.to_numpy(dtype=float)
        bad = np.nonzero(~np.isfinite(values))[0]
        cut = int(bad[0]) if len(bad) else len(values)
        steps = np.asarray(series.index, dtype=float)
        nonfinite = int(steps[cut]) if len(bad) else None
        c = cls(steps[:cut], values[:cut], per_epoch, nonfinite)
        start = start_value(c) if len(c) else 0.0
        if len(c) and np.all(c.values >= 0) and start > 0:
            return replace(c, floor=FLOOR * start)
        return c

    def __len__(self) -> int:
        return len(self.values)

    @property
    def level(self) -> np.ndarray:
        """``ln(value + floor)``; curves with negative values: see :func:`to_level`."""
        if self.floor > 0:
            return np.log(self.values + self.floor)
        return to_level(self.values)

    def value_at(self, level: float) -> float:
        """The loss value of a level (the inverse of :attr:`level` for non-negative curves)."""
        if self.floor > 0:
            return float(math.exp(min(level, 700.0)) - self.floor)
        return float(math.exp(min(level, 700.0))) if np.all(self.values > 0) else float(level)

    def window(self, *, epochs: float = 1.0, fraction: float = 0.2, minimum: int = 3) -> int:
        """See :func:`window_points`."""
        return window_points(self.steps, self.per_epoch, epochs=epochs, fraction=fraction, minimum=minimum)

    def smooth(self, window: int) -> np.ndarray:
        """Running median of the level over ``window`` points."""
        return rolling_median(self.level, window)


# ----- measures of a loss curve, shared by several rules: each returns numbers, rules compare.

#: Fewer finite loss points than this and no trend can be told from noise.
MIN_POINTS = 8
#: AUTOTRAINER starts judging after 30% of the planned epochs (``judgment_point=0.3``).
JUDGMENT_POINT = 0.3
#: One bar for "converged" in every rule that asks: the loss ended below half its start, on the
#: level scale (AUTOTRAINER reports internal symptoms only when training did not converge).
CONVERGED_RATIO = 0.5


def missing_loss(run: Run, context: Context, minimum: int) -> Missing | None:
    """Why a loss-curve rule cannot run (no loss tag, or fewer than ``minimum`` finite points), else None."""
    c = loss_curve(run, context)
    if c is None:
        return missing_tag("loss", context)
    if len(c) < minimum:
        before = f" before it turns non-finite at step {c.nonfinite_step}" if c.nonfinite_step is not None else ""
        return Missing(
            f"the loss curve has only {len(c)} finite point(s){before}; at least {minimum} are needed for a trend",
            "record the loss more often: SummaryCollector(..., collect_freq=10) or a smaller collect_freq",
        )
    return None


def missing_finite_end(run: Run, context: Context, minimum: int) -> Missing | None:
    """Like :func:`missing_loss`, and also when the loss turns NaN/Inf: for rules about how a run ends.

    A run whose loss overflows has no end state to judge: it is neither still
    falling, nor stalled, nor too slow (``loss.nan-inf`` reports it).
    """
    c = loss_curve(run, context)
    if c is not None and c.nonfinite_step is not None:
        return Missing(
            f"the loss turns non-finite at step {c.nonfinite_step}, so how the run ends cannot be judged "
            "(see loss.nan-inf)",
            "fix the NaN/Inf loss first",
        )
    return missing_loss(run, context, minimum)


def loss_curve(run: Run, context: Context) -> Curve | None:
    """The training loss as a :class:`Curve` (points before any NaN/Inf), with the epoch length."""
    series = curve(run, "loss", context)
    return None if series is None else Curve.of(series, steps_per_epoch(run))


def smoothing_window(c: Curve) -> int:
    """A third of an epoch (at least 5 points), never more than a quarter of the curve."""
    return max(1, min(c.window(epochs=1 / 3, fraction=0.05, minimum=5), len(c) // 4))


def tail_window(c: Curve) -> int:
    """Half an epoch (or 15% of the run), at least 5 points: the "end" of a run."""
    return min(len(c) // 2, c.window(epochs=0.5, fraction=0.15, minimum=5))


def start_value(c: Curve) -> float:
    """Where training started: the higher of the first record and the median of the first window.

    The first record is the loss after one step, the closest the summary
    comes to the untrained model; a fast drop within the first window must
    count as progress, not as the start. The first window's median wins when
    the loss first rises (a warm-up bump).
    """
    window = max(1, tail_window(c))
    return float(max(c.values[0], np.median(c.values[:window])))


def start_level(c: Curve) -> float:
    """:func:`start_value` on the level scale."""
    window = max(1, tail_window(c))
    return float(max(c.level[0], np.median(c.level[:window])))


def tail_level(c: Curve) -> float:
    """Typical level at the end: median of the last tail-sized window."""
    return float(np.median(c.level[-max(1, tail_window(c)) :]))


def remaining(c: Curve) -> float:
    """How much of its start the loss keeps at the end, on the level scale (1 = no progress)."""
    return as_factor(tail_level(c) - start_level(c))


def as_factor(delta: float) -> float:
    """A level difference as a factor (of the loss plus its floor)."""
    return float(math.exp(min(delta, 700.0)))


# ----- numbers in titles and messages.


def fmt(value: float | None) -> str:
    """A number for a title or message: 3 significant digits, nan/inf spelled out."""
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Inf" if value > 0 else "-Inf")
    return f"{value:.3g}"
