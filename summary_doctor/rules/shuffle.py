"""Data processing: a training set that is not shuffled.

Two kinds of evidence: the recorded dataset pipeline (a Shuffle op, the
source's sampler or shuffle flag, see ``_pipeline``), and the recorded
labels themselves. Batches drawn at random from a shuffled set have label
means that vary only by sampling noise; batches cut from a set sorted by
class hold one class each, and their means jump. A loss that repeats its
pattern every epoch is the third sign.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import ClassVar

import numpy as np
import pandas as pd

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules._inputs import find_data_tag, missing_data_tag, records
from summary_doctor.rules._labels import class_counts
from summary_doctor.rules._pipeline import ENABLE_PIPELINE, Shuffle, shuffle_state
from summary_doctor.rules._series import fmt, rolling_median
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register
from summary_doctor.rules.tags import find_tag, steps_per_epoch


@dataclass(frozen=True)
class LabelOrder:
    """How far the recorded label batches are from random draws of one shuffled set."""

    tag: str
    records: int
    variance_ratio: float  # variance of batch means / (mean within-batch variance / batch size)
    z: float  # Wilson-Hilferty normal score of the chi-square test of that ratio
    single_class: int  # records holding one class only
    longest_run: int  # consecutive records holding the same single class
    expected_single: float  # share of single-class batches a shuffled set would give


def _chi2_z(ratio: float, dof: int) -> float:
    """Normal score of dof * ratio under chi-square(dof) (Wilson-Hilferty approximation)."""
    if not math.isfinite(ratio):
        return math.inf
    c = 2 / (9 * dof)
    return (ratio ** (1 / 3) - (1 - c)) / math.sqrt(c)


def label_order(run: Run, context: Context) -> LabelOrder | None:
    """Label-batch statistics, or None with fewer than 5 recorded label batches."""
    data = find_data_tag(run, "label", context)
    if data is None:
        return None
    rows = records(run, data)
    rows = rows[(rows["count"] > rows["nonfinite"]) & np.isfinite(rows["mean"])]
    if len(rows) < 5:
        return None
    n = (rows["count"] - rows["nonfinite"]).to_numpy(dtype=float)
    counts = class_counts(run, data)
    variances = rows["std"].to_numpy(dtype=float) ** 2  # from buckets: biased for whole numbers
    if counts is not None:  # class ids: exact where each batch's classes are resolved
        exact = np.asarray(counts.variances, dtype=float)
        variances = np.where(np.isfinite(exact), exact, variances)
    within = float(np.mean(variances))
    between = float(np.var(rows["mean"].to_numpy(dtype=float), ddof=1))
    ratio = between / (within / float(np.median(n))) if within > 0 else (math.inf if between > 0 else 1.0)
    singles = counts.single_class if counts is not None else [None] * len(rows)
    runs = [len(list(group)) for key, group in groupby(singles) if key is not None]
    expected = 0.0
    if counts is not None and counts.resolved and sum(counts.counts.values()) > 0:
        total = sum(counts.counts.values())
        expected = float(sum((c / total) ** float(np.median(n)) for c in counts.counts.values()))
    return LabelOrder(
        tag=data.tag,
        records=len(rows),
        variance_ratio=ratio,
        z=_chi2_z(ratio, len(rows) - 1),
        single_class=sum(s is not None for s in singles),
        longest_run=max(runs, default=0),
        expected_single=expected,
    )


def epoch_periodicity(run: Run, context: Context) -> float | None:
    """Correlation of the detrended log loss one epoch apart (None when under 8 pairs can be formed)."""
    tag, per_epoch = find_tag(run, "loss", context), steps_per_epoch(run)
    if tag is None or not per_epoch or per_epoch < 2:
        return None
    loss = run.scalar_series(tag)
    loss = loss[np.isfinite(loss.to_numpy(dtype=float)) & (loss.to_numpy(dtype=float) > 0)]
    if len(loss) < 8:
        return None
    per_record = max(3, round(len(loss) / ((loss.index[-1] - loss.index[0]) / per_epoch + 1)))
    level = np.log(loss.to_numpy(dtype=float))
    residual = pd.Series(level - rolling_median(level, per_record), index=loss.index)
    later = residual.reindex(residual.index + round(per_epoch))
    pairs = pd.DataFrame({"now": residual.to_numpy(), "later": later.to_numpy()}).dropna()
    if len(pairs) < 8 or pairs["now"].std() == 0 or pairs["later"].std() == 0:
        return None
    return float(np.corrcoef(pairs["now"], pairs["later"])[0, 1])


@register
@dataclass
class NoShuffle(Rule):
    """The training data is not shuffled: no Shuffle op and the source's shuffle off, or batches in class order.

    What it detects
        (a) The recorded dataset pipeline has no Shuffle op and its source
        says it does not shuffle (``SequentialSampler``, ``shuffle=False``);
        or (b) the recorded label batches are far from random draws: their
        means vary ``min_ratio`` times or more what random batches' means do
        (variance of the batch means against the within-batch variance /
        batch size), significant at z >= ``min_z`` in a chi-square test.
        Single-class batches, the longest stretch of them, and a loss
        repeating itself one epoch later are reported as corroboration.
        A ``GeneratorDataset`` (and ``NumpySlicesDataset``) records no
        shuffle setting: there only (b) can decide, and without recorded
        labels the item is not checkable.
    Why it matters
        Batches of one class pull the weights towards that class, then the
        next: the loss swings with the epoch and the model forgets the
        classes seen first (checklist dp.03).
    Typical causes
        ``shuffle=False`` on the source, data stored sorted by class
        (an image folder per class), a Shuffle with a buffer far smaller
        than the dataset.
    How to fix
        ``shuffle=True`` on the source, or ``dataset.shuffle(buffer_size)``
        with a buffer at least the size of the dataset, before ``batch``.
    Thresholds
        min_ratio = 2: batch means vary at least twice what random
        batches' do (shuffled data gives about 1); min_z = 3.09: the
        chi-square test at p < 0.001.
    """

    ids = ("preprocess.no-shuffle",)
    hint: ClassVar[str] = (
        "Shuffle the training set every epoch: shuffle=True on the source dataset, or "
        "dataset.shuffle(buffer_size >= dataset size) before batch (checklist dp.03)."
    )
    min_ratio: float = 2.0
    min_z: float = 3.09

    def requirements(self, run: Run, context: Context) -> Missing | None:
        state = shuffle_state(run)
        if state is not None and state.state != "unknown":
            return None
        if label_order(run, context) is not None:
            return None
        if state is None:
            label = missing_data_tag("label", context)
            return Missing(
                f"no dataset graph in the lineage and {label.reason}", f"{ENABLE_PIPELINE}; or {label.enable}"
            )
        return Missing(
            f"{state.reason}, and fewer than 5 label batches were recorded", missing_data_tag("label", context).enable
        )

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        state, order = shuffle_state(run), label_order(run, context)
        ordered = order is not None and order.variance_ratio >= self.min_ratio and order.z >= self.min_z
        unshuffled = state is not None and state.state == "not shuffled"
        if not (ordered or unshuffled):
            return
        periodic = epoch_periodicity(run, context)
        yield make_finding(
            self,
            run,
            Severity.WARNING,
            _title(state, order, ordered),
            " ".join(s for s in (_pipeline_text(state), _order_text(order, ordered), _loss_text(periodic)) if s),
            step=None,
            tags=(order.tag,) if order is not None else (),
            evidence=_evidence(state, order, periodic),
        )


def _title(state: Shuffle | None, order: LabelOrder | None, ordered: bool) -> str:
    parts = []
    if state is not None and state.state == "not shuffled":
        parts.append(f"not shuffled: {state.reason}")
    if order is not None and ordered:
        parts.append(f"{order.single_class} of {order.records} label batches hold one class")
    return "; ".join(parts) or "training data not shuffled"


def _pipeline_text(state: Shuffle | None) -> str:
    if state is None:
        return "No dataset graph was recorded."
    if state.state == "not shuffled":
        return f"The recorded pipeline has no Shuffle op and its source does not shuffle ({state.reason})."
    if state.state == "shuffled":
        return (
            f"The pipeline shuffles ({state.reason}), yet the batches below are still ordered: the buffer may be "
            "far smaller than the data."
        )
    return f"The pipeline cannot say whether it shuffles ({state.reason})."


def _order_text(order: LabelOrder | None, ordered: bool) -> str:
    if order is None:
        return "No labels were recorded to confirm it from the data."
    text = (
        f"The means of the {order.records} recorded '{order.tag}' batches vary {fmt(order.variance_ratio)}x as much "
        f"as random batches' would"
    )
    if order.single_class:
        text += (
            f"; {order.single_class} batches hold a single class (a shuffled set gives "
            f"{fmt(100 * order.expected_single)}% such batches), {order.longest_run} in a row at most"
        )
    return text + (": the data arrive in order." if ordered else ", which looks like random order.")


def _loss_text(periodic: float | None) -> str:
    if periodic is None or periodic < 0.5:
        return ""
    return f"The loss repeats its pattern one epoch later (correlation {fmt(periodic)})."


def _evidence(state: Shuffle | None, order: LabelOrder | None, periodic: float | None) -> dict:
    evidence: dict = {"pipeline": state.state if state else None, "pipeline_reason": state.reason if state else None}
    if order is not None:
        evidence |= {
            "label_tag": order.tag,
            "records": order.records,
            "variance_ratio": order.variance_ratio,
            "z": order.z,
            "single_class_batches": order.single_class,
            "longest_single_class_run": order.longest_run,
            "expected_single_class_share": order.expected_single,
        }
    if periodic is not None:
        evidence["loss_epoch_correlation"] = periodic
    return evidence
