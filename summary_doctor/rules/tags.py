"""Which scalar tag is the loss, the eval loss, the accuracy, the learning rate.

Training scripts name their curves freely (``loss/auto`` from SummaryCollector,
``train_loss``, ``val/acc``, ``Eval-Loss`` ...), so rules never hard-code a
name: they ask :func:`find_tag`, which honours the user's ``--loss-tag`` style
overrides first and then matches patterns case-insensitively. Lineage is the
fallback where a curve is missing: it holds the learning rate, the final train
loss and the final evaluation metrics.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Literal

import pandas as pd

from summary_doctor.reader.derived import per_run
from summary_doctor.reader.run import Run
from summary_doctor.rules.base import Context, Missing

Kind = Literal["loss", "eval_loss", "accuracy", "eval_accuracy", "learning_rate"]
KINDS: tuple[Kind, ...] = ("loss", "eval_loss", "accuracy", "eval_accuracy", "learning_rate")

_EVAL = re.compile(r"(^|[^a-z])(eval|evaluation|val|valid|validation|test|dev)([^a-z]|$)")
_TRAIN = re.compile(r"(^|[^a-z])(train|training)([^a-z]|$)")
_LOSS = re.compile(r"loss")
_ACC = re.compile(r"(^|[^a-z])(acc|accuracy|top1|top_1|top-1)([^a-z]|$)|accuracy")
_LR = re.compile(r"(^|[^a-z])(lr|learning[_ -]?rate)([^a-z]|$)")

#: Exact names tried first (lower case), in order of preference.
PREFERRED: dict[Kind, tuple[str, ...]] = {
    "loss": ("loss/auto", "loss", "train_loss", "train/loss", "loss/train", "training_loss"),
    "eval_loss": ("eval_loss", "val_loss", "eval/loss", "val/loss", "loss/eval", "loss/val", "validation_loss"),
    "accuracy": ("accuracy", "acc", "train_acc", "train/acc", "train_accuracy", "batch_acc"),
    "eval_accuracy": ("eval_acc", "val_acc", "val/acc", "eval/acc", "eval_accuracy", "val_accuracy", "acc/eval"),
    "learning_rate": ("lr", "learning_rate", "lr/auto", "learning-rate", "train/lr"),
}

#: The command-line option that overrides each kind (for messages).
OPTIONS: dict[Kind, str] = {
    "loss": "--loss-tag",
    "eval_loss": "--eval-loss-tag",
    "accuracy": "--acc-tag",
    "eval_accuracy": "--eval-acc-tag",
    "learning_rate": "--lr-tag",
}


def _matches(kind: Kind, tag: str) -> bool:
    name = tag.lower()
    is_eval = bool(_EVAL.search(name))
    if kind in ("loss", "eval_loss"):
        return bool(_LOSS.search(name)) and is_eval == (kind == "eval_loss")
    if kind in ("accuracy", "eval_accuracy"):
        return bool(_ACC.search(name)) and is_eval == (kind == "eval_accuracy")
    return bool(_LR.search(name)) and not is_eval


def pick_tag(kind: Kind, tags: Iterable[str]) -> str | None:
    """The tag of ``kind`` among ``tags``: a preferred exact name, else the best pattern match.

    Among pattern matches, a name saying ``train`` wins, then the shortest
    (``loss`` before ``loss_scale_loss``), then the first recorded.
    """
    tags = list(dict.fromkeys(tags))
    lowered = {tag.lower(): tag for tag in reversed(tags)}
    for name in PREFERRED[kind]:
        if name in lowered:
            return lowered[name]
    candidates = [tag for tag in tags if _matches(kind, tag)]
    if not candidates:
        return None
    return min(candidates, key=lambda t: (not _TRAIN.search(t.lower()), len(t), tags.index(t)))


@per_run
def find_tag(run: Run, kind: Kind, context: Context) -> str | None:
    """The scalar tag of ``kind`` in ``run``: the user's override when given, else by pattern.

    An override that names no recorded tag gives None (the rule is then not
    checkable, and says which tag it looked for).
    """
    override = getattr(context.tags, kind)
    tags = run.current("scalars")["tag"].unique().tolist()
    if override is not None:
        return override if override in tags else None
    return pick_tag(kind, tags)


@per_run
def curve(run: Run, kind: Kind, context: Context) -> pd.Series | None:
    """The recorded curve of ``kind`` (values indexed by step, NaN kept), or None."""
    tag = find_tag(run, kind, context)
    if tag is None:
        return None
    series = run.scalar_series(tag)
    return series if len(series) else None


def _finite_number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def lineage_learning_rate(run: Run) -> float | None:
    """The learning rate SummaryCollector wrote to lineage (the initial one for schedules)."""
    return _finite_number(run.lineage.hyperparameters.get("learning_rate"))


def lineage_final_loss(run: Run) -> float | None:
    """The last training loss in lineage (may be NaN or Inf: returned as float, not filtered)."""
    value = run.lineage.hyperparameters.get("loss")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def lineage_eval_accuracy(run: Run) -> float | None:
    """The final evaluation accuracy from lineage metrics (``acc``, ``accuracy``, ``top_1_accuracy``...)."""
    metrics = {str(k).lower(): v for k, v in run.lineage.metrics.items()}
    name = pick_tag("accuracy", metrics) or next((k for k in metrics if "acc" in k), None)
    return _finite_number(metrics[name]) if name is not None else None


@per_run
def steps_per_epoch(run: Run) -> float | None:
    """Steps in one epoch: lineage ``train_dataset_size / batch_size``, checked against the run.

    MindSpore versions differ on whether ``train_dataset_size`` counts samples
    or batches; the reading that agrees with ``last step / epochs`` wins.
    """
    hyper = run.lineage.hyperparameters
    size, batch, epochs = (_finite_number(hyper.get(k)) for k in ("train_dataset_size", "batch_size", "epoch"))
    if not size or size <= 0:
        return None
    readings = [size / batch, size] if batch and batch > 0 else [size]
    span = run.steps
    if epochs and epochs > 0 and span is not None and span[1] > 0:
        observed = span[1] / epochs
        best = min(readings, key=lambda r: abs(math.log(r / observed)) if r > 0 else math.inf)
        if best > 0 and abs(math.log(best / observed)) < math.log(1.5):
            return float(best)
    return float(readings[0]) if readings[0] >= 1 else None


def missing_tag(kind: Kind, context: Context) -> Missing:
    """Why a rule needing a curve of ``kind`` cannot run, and how to record it."""
    override = getattr(context.tags, kind)
    if override is not None:
        return Missing(f"no scalar tag {override!r} (given with {OPTIONS[kind]}) in this run", _ENABLE[kind])
    return Missing(f"no {kind.replace('_', ' ')} curve found among the scalar tags", _ENABLE[kind])


_ENABLE: dict[Kind, str] = {
    "loss": "SummaryCollector records it by default (collect_metric): "
    "SummaryCollector(summary_dir, collect_freq=10); or name the tag with --loss-tag",
    "eval_loss": "record it after each epoch: summary_record.add_value('scalar', 'eval_loss', Tensor(loss)); "
    "or name the tag with --eval-loss-tag",
    "accuracy": "record it: ops.ScalarSummary()('accuracy', acc) in the network; or name the tag with --acc-tag",
    "eval_accuracy": "record it after each epoch: summary_record.add_value('scalar', 'eval_acc', Tensor(acc)); "
    "or name the tag with --eval-acc-tag",
    "learning_rate": "record it: ops.ScalarSummary()('learning_rate', lr); or name the tag with --lr-tag",
}
