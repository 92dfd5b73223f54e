"""Dataset: too few training samples for the model that learns from them.

The training set size is in the lineage (``train_dataset_size``), the number
of trainable parameters in the graph (the parameters' shapes). A model with
more parameters than twice the samples can memorise them; whether it did is
what the train/eval gap shows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules._pipeline import batch_size
from summary_doctor.rules._series import fmt
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register
from summary_doctor.rules.dynamics import MetricOverfitting
from summary_doctor.rules.tags import steps_per_epoch

_STATE = re.compile(r"^(moments?\d*|accum|mean_grad|mean_square|linear|v|m)\.")
_BOOKKEEPING = re.compile(r"^(inputs\d+|global_step|learning_rate|momentum|beta[12]_power|weight_decay|loss_scale)$")
_RUNNING = re.compile(r"(moving|running)_(mean|var|variance)$")


def trainable_parameters(run: Run) -> dict[str, int]:
    """Parameter name -> element count for the parameters the optimizer trains.

    Optimizer state (``moments.fc1.weight``, ``moment1.*``) names exactly
    the trained parameters; without any (plain SGD) every parameter except
    inputs, bookkeeping scalars and BatchNorm running statistics counts.
    """
    if run.graph is None:
        return {}
    params = run.graph.parameters
    names = list(params["name"])
    sizes = dict(zip(names, (int(s) for s in params["size"]), strict=True))
    with_state = {_STATE.sub("", n) for n in names if _STATE.match(n)} & set(names)
    if with_state:
        return {n: sizes[n] for n in names if n in with_state}
    return {n: sizes[n] for n in names if not (_STATE.match(n) or _BOOKKEEPING.match(n) or _RUNNING.search(n))}


def recorded_parameters(run: Run) -> dict[str, int]:
    """Without a graph: element counts of the recorded parameters (histograms or tensors), tag -> count.

    A lower bound on the trainable parameters: only what was recorded counts
    (SummaryCollector records 5 parameters by default; PYNATIVE_MODE writes
    no graph, but a recording of every parameter counts them all).
    """
    from summary_doctor.rules._histograms import TagKind, rows_of_kind

    counts: dict[str, int] = {}
    for frame, column in (("histograms", "count"), ("tensors", "size")):
        rows = rows_of_kind(run, TagKind.WEIGHT, TagKind.OFFSET, TagKind.SCALE, frame=frame)
        rows = rows[np.array([not _RUNNING.search(str(name)) for name in rows["name"]], dtype=bool)]
        for name, count in rows.groupby("name", sort=False)[column].first().items():
            counts.setdefault(str(name), int(count))
    return counts


def input_width(run: Run) -> int | None:
    """Values per sample of the first graph input (``inputs0`` of shape (batch, ...))."""
    if run.graph is None:
        return None
    params = run.graph.parameters
    first = params[params["name"] == "inputs0"]
    shape = first["shape"].iloc[0] if not first.empty else None
    return int(np.prod(shape[1:])) if shape and len(shape) > 1 else None


def train_samples(run: Run) -> int | None:
    """Training samples per epoch: lineage ``train_dataset_size``, read as samples or batches as the run shows."""
    size = run.lineage.hyperparameters.get("train_dataset_size")
    if not isinstance(size, (int, float)) or size <= 0:
        return None
    per_epoch, batch = steps_per_epoch(run), batch_size(run)
    if per_epoch and batch and abs(math.log(per_epoch * batch / size)) > math.log(1.5):
        return int(per_epoch * batch)  # the size counted batches
    return int(size)


@register
@dataclass
class TooFewSamples(Rule):
    """Too few training samples for the model: it can memorise them, and the eval metrics show it did.

    What it detects
        A training set of n samples (lineage) for a model with p trainable
        parameters (graph; without one, the element counts of the recorded
        parameters, a lower bound) where p >= ``memorise_factor`` x n + d (d =
        values per sample): such a network can fit any labelling of the
        samples. Warning when the evaluation curves also show the gap of
        ``metric.overfitting`` (eval loss rising while the train loss falls,
        or a wide accuracy gap); info when no evaluation was recorded.
    Why it matters
        The model learns the training samples instead of the task; more
        epochs, regularisation or a smaller learning rate cannot create
        the missing data (checklist ds.03: about 5000 labelled samples per
        class for acceptable accuracy).
    Typical causes
        A small labelled set, a train/eval split that left little for
        training, a filter that dropped most samples, a model sized for a
        larger dataset.
    How to fix
        More data or data augmentation; a smaller model, weight decay or
        dropout; transfer learning from a pretrained model.
    Thresholds
        memorise_factor = 2: Zhang et al. 2017 ("Understanding deep
        learning requires rethinking generalization") show a two-layer
        ReLU network with p = 2n + d parameters can represent any labelling
        of n samples in d dimensions. The gap is metric.overfitting's own
        test (AUTOTRAINER's test_turn_bad and test_not_well).
    """

    ids = ("dataset.too-few-samples",)
    hint: ClassVar[str] = (
        "Use more training data or augmentation, a smaller model, weight decay or dropout, or fine-tune a "
        "pretrained model (checklist ds.03)."
    )
    memorise_factor: float = 2.0

    def requirements(self, run: Run, context: Context) -> Missing | None:
        if train_samples(run) is None:
            return Missing(
                "no training set size in the lineage",
                "SummaryCollector writes train_dataset_size to the lineage: train with Model.train and a "
                "SummaryCollector callback",
            )
        if not trainable_parameters(run) and not recorded_parameters(run):
            return Missing(
                "no computation graph with parameter shapes and no parameter recorded",
                "SummaryCollector records the graph by default (collect_specified_data={'collect_graph': True}) in "
                "GRAPH_MODE; in PYNATIVE_MODE record every parameter (histogram_regular='.*')",
            )
        return None

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        n, params = train_samples(run), trainable_parameters(run)
        assert n is not None
        counted = "" if params else " (at least: counted from the recorded parameters, no graph was recorded)"
        params = params or recorded_parameters(run)
        p, d = sum(params.values()), input_width(run) or 0
        if p < self.memorise_factor * n + d:
            return
        overfitting = MetricOverfitting()
        evaluated = overfitting.requirements(run, context) is None
        gap = next(iter(overfitting.check(run, context)), None) if evaluated else None
        if evaluated and gap is None:
            return  # the evaluation shows the model generalises despite its size
        outcome = (
            f"The evaluation shows it: {gap.title[0].lower()}{gap.title[1:]}."
            if gap is not None
            else "No evaluation was recorded to show whether it memorised them."
        )
        yield make_finding(
            self,
            run,
            Severity.WARNING if gap is not None else Severity.INFO,
            f"{n:,} training samples for {p:,} trainable parameters ({fmt(p / n)} per sample)",
            f"The model has {p:,} trainable parameters{counted} for {n:,} training samples: at least "
            f"{fmt(self.memorise_factor)}n + d = {fmt(self.memorise_factor * n + d)}, enough to fit any labelling "
            f"of them. {outcome}",
            step=gap.step if gap is not None else None,
            tags=gap.tags if gap is not None else (),
            evidence={
                "train_samples": n,
                "trainable_parameters": p,
                "values_per_sample": d,
                "parameters_per_sample": p / n,
                "gap": gap.title if gap is not None else None,
            },
        )
