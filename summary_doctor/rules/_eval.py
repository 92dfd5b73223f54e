"""Evaluation curves against the training curve: the eval loss turning up, still improving, the accuracy gap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from summary_doctor.reader.run import Run
from summary_doctor.rules._series import Curve, loss_curve, tail_window
from summary_doctor.rules.base import Context
from summary_doctor.rules.tags import curve, lineage_eval_accuracy, steps_per_epoch


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

    def evidence(self) -> dict[str, float | int | None]:
        """The numbers a finding about this turn reports (metric.overfitting and hparam.too-many-epochs)."""
        return {
            "best_step": self.best_step,
            "best": self.best,
            "final": self.final,
            "rise": self.rise,
            "train_drop": self.train_drop,
            "rising_evals": self.rising_evals,
        }


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


def eval_still_improving(run: Run, context: Context, *, evaluations: int = 3) -> bool | None:
    """Whether each of the last ``evaluations`` evaluations beat the one before (None without an eval curve).

    An eval curve that is still going down at every evaluation when training
    stops has not reached its floor.
    """
    found = _eval_curve(run, context)
    if found is None:
        return None
    values = found[2][-(evaluations + 1) :]
    return len(values) > evaluations and bool(np.all(np.diff(values) < 0))


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
