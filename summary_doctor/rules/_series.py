"""Scale-free helpers for training curves, shared by the dynamics and hyperparameter rules.

A rule must work for a loss of 0.01 and of 1000, for 100 steps and 100,000,
and for the noisy step-level losses SummaryCollector records every
``collect_freq`` steps. So curves are compared on a log scale (a ratio of
losses, not a difference), spreads are robust (median / MAD, quantiles), and
windows are measured in epochs when the epoch length is known, otherwise in
fractions of the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from summary_doctor.reader.run import Run
from summary_doctor.rules.base import Context, Missing
from summary_doctor.rules.tags import curve, lineage_eval_accuracy, missing_tag, steps_per_epoch

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


@dataclass(frozen=True)
class Curve:
    """The finite points of one scalar curve, with its level scale and epoch length."""

    steps: np.ndarray
    values: np.ndarray
    per_epoch: float | None = None

    @classmethod
    def of(cls, series: pd.Series, per_epoch: float | None = None) -> Curve:
        """Keep the finite points of ``series`` (values indexed by step)."""
        values = series.to_numpy(dtype=float)
        finite = np.isfinite(values)
        return cls(np.asarray(series.index, dtype=float)[finite], values[finite], per_epoch)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def level(self) -> np.ndarray:
        """See :func:`to_level`."""
        return to_level(self.values)

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


def missing_loss(run: Run, context: Context, minimum: int) -> Missing | None:
    """Why a loss-curve rule cannot run (no loss tag, or fewer than ``minimum`` finite points), else None."""
    c = loss_curve(run, context)
    if c is None:
        return missing_tag("loss", context)
    if len(c) < minimum:
        return Missing(
            f"the loss curve has only {len(c)} finite point(s); at least {minimum} are needed for a trend",
            "record the loss more often: SummaryCollector(..., collect_freq=10) or a smaller collect_freq",
        )
    return None


def loss_curve(run: Run, context: Context) -> Curve | None:
    """The training loss as a :class:`Curve` of its finite points, with the epoch length."""
    series = curve(run, "loss", context)
    return None if series is None else Curve.of(series, steps_per_epoch(run))


def smoothing_window(c: Curve) -> int:
    """A third of an epoch (at least 5 points), never more than a quarter of the curve."""
    return max(1, min(c.window(epochs=1 / 3, fraction=0.05, minimum=5), len(c) // 4))


def tail_window(c: Curve) -> int:
    """Half an epoch (or 15% of the run), at least 5 points: the "end" of a run."""
    return min(len(c) // 2, c.window(epochs=0.5, fraction=0.15, minimum=5))


def head_level(c: Curve) -> float:
    """Typical level at the start: median of the first tail-sized window."""
    return float(np.median(c.level[: max(1, tail_window(c))]))


def start_level(c: Curve) -> float:
    """Where training started: the higher of the first few records and the first window.

    A run's first window can already sit far below its first records (a fast
    warm-up drop); judging progress from that window makes a converged run
    look stalled.
    """
    first = float(np.median(c.level[: min(3, len(c))]))
    return max(first, head_level(c))


def tail_level(c: Curve) -> float:
    """Typical level at the end: median of the last tail-sized window."""
    return float(np.median(c.level[-max(1, tail_window(c)) :]))


def as_factor(delta: float) -> float:
    """A level difference as a factor of the loss (levels are logs of positive losses)."""
    return float(math.exp(min(delta, 700.0)))


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
        min_value=float(np.exp(best_level)) if np.all(c.values > 0) else float(c.values[best]),
        final_value=float(np.median(c.values[-window:])),
        first_step=int(c.steps[block_start + after[0]]) if len(after) else None,
        above_start=final > head_level(c),
    )


@dataclass(frozen=True)
class Oscillation:
    """Swing of the late loss (q90 - q10 of its level) against the net progress made."""

    amplitude: float
    progress: float
    low: float
    high: float
    start_step: int


def oscillation(c: Curve) -> Oscillation:
    """Swings after the judgment point, and how much lower the loss is there than at the start.

    The swing is measured on block medians (a third of an epoch, or 5% of the
    run, at least 5 points), not on single records: the per-batch noise of a
    healthy small-batch run spans a factor of ten, while a learning rate that
    is too large moves the whole curve (AUTOTRAINER judges per-epoch values).
    """
    first = int(len(c) * JUDGMENT_POINT)
    window = smoothing_window(c)
    late = block_medians(c.level[first:], window)
    if len(late) < 3:
        late = c.level[first:]
    q10, q90 = np.quantile(late, [0.1, 0.9])
    values = np.exp(late) if np.all(c.values > 0) else late
    return Oscillation(
        amplitude=float(q90 - q10),
        progress=start_level(c) - float(np.median(late)),
        low=float(np.quantile(values, 0.1)),
        high=float(np.quantile(values, 0.9)),
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
        start_value=float(np.exp(start_level(c))) if np.all(c.values > 0) else float(c.values[0]),
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
    total = head_level(c) - tail_level(c)
    return EndSlope(
        drop_per_epoch=float(per_epoch),
        t_value=float(-slope * spread / noise),
        share_of_progress=float(drop / total) if total > 0 else math.inf,
        start_step=int(steps[0]),
    )


# ----- evaluation curves against the training curve.


@dataclass(frozen=True)
class EvalTurn:
    """The eval loss (or eval error) after its best evaluation, and the train loss meanwhile."""

    tag: str
    best_step: int
    best: float
    final: float
    rise: float
    rising_evals: int
    first_rise_step: int | None
    train_drop: float | None
    is_error_rate: bool


def _eval_curve(run: Run, context: Context) -> tuple[str, np.ndarray, np.ndarray, bool] | None:
    """Eval loss, else eval error rate (1 - accuracy): a curve where lower is better."""
    for kind, is_error in (("eval_loss", False), ("eval_accuracy", True)):
        data = curve(run, kind, context)  # type: ignore[arg-type]
        if data is None:
            continue
        data = data[np.isfinite(data.to_numpy())]
        values = data.to_numpy(dtype=float)
        if is_error and (values.min(initial=0) < 0 or values.max(initial=0) > 1):
            continue
        if len(values) >= 3:
            return str(data.name), np.asarray(data.index, float), 1 - values if is_error else values, is_error
    return None


def _train_drop(run: Run, context: Context, since: float) -> float | None:
    """Relative drop of the train loss from around step ``since`` to the end (None without a curve)."""
    c = loss_curve(run, context)
    if c is None or len(c) < 4:
        return None
    window = tail_window(c)
    before = c.values[c.steps <= since][-window:]
    if len(before) == 0:
        return None
    return float(1 - np.median(c.values[-window:]) / np.median(before)) if np.median(before) > 0 else None


def eval_improves_after(run: Run, context: Context, step: float, *, min_gain: float) -> bool:
    """True when the eval curve (loss, else error rate) ends ``min_gain`` below where it was at ``step``.

    The reference is the last evaluation at or before ``step`` (the first one
    when none is that early). A training loss that looks flat while the eval
    curve still improves is a run near its floor (fine-tuning, a task's noise
    level), not a plateau.
    """
    found = _eval_curve(run, context)
    if found is None:
        return False
    _, steps, values, _ = found
    before = np.nonzero(steps <= step)[0]
    reference = values[before[-1]] if len(before) else values[0]
    return bool(values[-1] < reference * (1 - min_gain))


def eval_turn(run: Run, context: Context, *, epsilon: float) -> EvalTurn | None:
    """How the eval curve moved after its best point (None without 3+ evaluations or when it ends at its best)."""
    found = _eval_curve(run, context)
    if found is None:
        return None
    tag, steps, values, is_error = found
    best = int(np.argmin(values))
    if best == len(values) - 1 or values[best] <= 0:
        return None
    worse = np.nonzero(values[best + 1 :] > values[best] * (1 + epsilon))[0]
    return EvalTurn(
        tag=tag,
        best_step=int(steps[best]),
        best=float(values[best]),
        final=float(values[-1]),
        rise=float(values[-1] / values[best] - 1),
        rising_evals=len(worse),
        first_rise_step=int(steps[best + 1 + worse[0]]) if len(worse) else None,
        train_drop=_train_drop(run, context, steps[best]),
        is_error_rate=is_error,
    )


@dataclass(frozen=True)
class AccuracyGap:
    """Final train accuracy against final eval accuracy."""

    train: float
    eval: float
    gap: float
    step: int | None
    tags: tuple[str, ...]


def accuracy_gap(run: Run, context: Context) -> AccuracyGap | None:
    """Train accuracy (median over its last epoch) minus the last eval accuracy (curve, else lineage)."""
    train = curve(run, "accuracy", context)
    if train is None:
        return None
    c = Curve.of(train, steps_per_epoch(run))
    if len(c) == 0:
        return None
    train_value = float(np.median(c.values[-c.window(epochs=1.0, fraction=0.15, minimum=3) :]))
    evaluation = curve(run, "eval_accuracy", context)
    finite = evaluation[np.isfinite(evaluation.to_numpy())] if evaluation is not None else None
    if finite is not None and len(finite):
        eval_value, step, tags = float(finite.iloc[-1]), int(finite.index[-1]), (str(train.name), str(finite.name))
    else:
        eval_value, step, tags = lineage_eval_accuracy(run), None, (str(train.name),)
    if eval_value is None:
        return None
    return AccuracyGap(train_value, eval_value, train_value - eval_value, step, tags)


# ----- numbers in titles and messages.


def fmt(value: float | None) -> str:
    """A number for a title or message: 3 significant digits, nan/inf spelled out."""
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Inf" if value > 0 else "-Inf")
    return f"{value:.3g}"
