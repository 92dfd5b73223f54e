"""Dataset: labels that may be wrong, read from the only trace they leave in summary logs.

Summary logs hold no per-sample predictions, so a wrong label cannot be
seen directly (Cleanlab needs out-of-sample probabilities). What labels that
carry little signal do leave is a training loss stuck at a floor while the
weights keep moving at a healthy rate: the optimiser works, the network is
alive, and still nothing is learned. This rule says so only after the other
rules found no other cause, and says that the evidence is indirect.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules import _series as series
from summary_doctor.rules._histograms import ENABLE_WEIGHTS, TagKind, rows_of_kind
from summary_doctor.rules._inputs import find_data_tag
from summary_doctor.rules._labels import class_counts
from summary_doctor.rules._series import fmt
from summary_doctor.rules.activations import ActivationDead
from summary_doctor.rules.api import DropoutKeepProb
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register
from summary_doctor.rules.dataset import MissingValues, Outliers
from summary_doctor.rules.dynamics import LossPlateau
from summary_doctor.rules.gradients import GradientVanishing
from summary_doctor.rules.graph import GraphWeightFreezing, WeightFreezing
from summary_doctor.rules.graph_loss import LossFunction
from summary_doctor.rules.graph_structure import NodeConnection, NodeMode
from summary_doctor.rules.init import InitAllZero
from summary_doctor.rules.learning_rate import LrTooLarge, LrTooSmall
from summary_doctor.rules.preprocess import NotNormalized
from summary_doctor.rules.samples import TooFewSamples, input_width, train_samples, trainable_parameters
from summary_doctor.rules.tags import curve
from summary_doctor.rules.weights import WeightOverflow, WeightUpdateRatio, update_ratios

#: Rules whose findings explain a stalled loss better than the labels do.
OTHER_CAUSES: tuple[type[Rule], ...] = (
    LrTooLarge,
    LrTooSmall,
    WeightUpdateRatio,
    WeightOverflow,
    GradientVanishing,
    ActivationDead,
    WeightFreezing,
    GraphWeightFreezing,
    NodeConnection,
    NodeMode,
    LossFunction,
    DropoutKeepProb,
    InitAllZero,
    MissingValues,
    Outliers,
    NotNormalized,
)


def other_cause(run: Run, context: Context) -> Finding | None:
    """The first warning or error of a rule that explains a stall without blaming the labels."""
    for rule_type in OTHER_CAUSES:
        rule = rule_type()
        if rule.requirements(run, context) is not None:
            continue
        found = next((f for f in rule.check(run, context) if f.severity.rank >= 1), None)
        if found is not None:
            return found
    return None


def output_classes(run: Run, context: Context) -> int | None:
    """Number of classes: from the recorded labels, else the output size of the last weight matrix."""
    data = find_data_tag(run, "label", context)
    counts = class_counts(run, data) if data is not None else None
    if counts is not None and counts.classes():
        return len(counts.classes())
    if run.graph is None:
        return None
    params = run.graph.parameters
    weights = params[params["name"].str.endswith(".weight") & ~params["name"].str.contains(r"^(?:moment|accum)")]
    shapes = [s for s in weights["shape"] if s and len(s) == 2]
    return int(shapes[-1][0]) if shapes and shapes[-1][0] > 1 else None


@register
@dataclass
class LabelErrors(Rule):
    """Labels that carry little signal (wrong or random labels): indirect evidence only.

    What it detects
        The training loss stalls (``loss.plateau``'s own test) while the
        weight matrices keep changing at a healthy rate (median update ratio
        per step at least ``min_update_ratio``), and none of the other
        causes of a stall is found: no too-large or too-small learning rate,
        no tiny or NaN updates, no vanishing gradients, dead or saturated
        activations, frozen or zero-initialised layers, no NaN, outliers or
        unnormalised values in the recorded input. The level it stalls at is
        compared with ln(C), the loss of predicting only the class
        frequencies of C balanced classes; the message adds whether the
        model is big enough to fit any labelling of its samples (2n + d
        parameters, see dataset.too-few-samples) and where the eval loss
        ends (a stall with an improving eval curve is not a stall).
    Why it matters
        A model cannot learn labels that do not follow from the inputs:
        every epoch is spent fitting noise (checklist ds.02).
    Typical causes
        Labels shuffled independently of the samples (a sort or a join that
        reordered one side), an off-by-one class mapping, noisy annotation,
        a wrong label column.
    How to fix
        Look at a stratified sample of about 50 samples with their labels
        (checklist ds.02), check the code that pairs samples and labels, and
        train once on a small subset: a healthy setup memorises it.
    Thresholds
        min_update_ratio = 1e-5 (from histograms, a lower bound; 1e-4 when
        exact), the line below which weight.update-ratio calls updates tiny
        (MindInsight's weight-change watchpoint). The stall is
        loss.plateau's. This is never certainty: a task whose inputs
        cannot predict the labels looks the same, and only per-sample
        predictions (with ops.TensorSummary of predictions and labels) could
        point at the wrong labels themselves.
    """

    ids = ("dataset.label-errors",)
    hint: ClassVar[str] = (
        "Inspect a stratified sample of about 50 samples with their labels, check the code that pairs samples "
        "and labels, and check that the model can overfit a small subset (checklist ds.02)."
    )
    min_update_ratio: float = 1e-5
    min_update_ratio_exact: float = 1e-4

    def requirements(self, run: Run, context: Context) -> Missing | None:
        missing = series.missing_loss(run, context, series.MIN_POINTS)
        if missing is not None:
            return missing
        counts = rows_of_kind(run, TagKind.WEIGHT).groupby("tag").size()
        if not (counts >= 3).any():
            return Missing(
                "no weight histograms at 3 steps or more: a stalled loss cannot be told from a learning-rate or "
                "frozen-layer problem",
                ENABLE_WEIGHTS,
            )
        return None

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        stall = next((f for f in LossPlateau().check(run, context) if f.severity.rank >= 1), None)
        if stall is None or other_cause(run, context) is not None:
            return
        ratio, exact = self._update_ratio(run, stall.step)
        if ratio is None or ratio < (self.min_update_ratio_exact if exact else self.min_update_ratio):
            return
        classes = output_classes(run, context)
        level = float(stall.evidence["final"])
        chance = math.log(classes) if classes and classes > 1 else None
        yield make_finding(
            self,
            run,
            Severity.WARNING,
            f"loss stuck at {fmt(level)}{self._chance_text(level, chance, classes)} while the weights keep "
            "moving: labels may carry little signal (indirect)",
            f"Indirect evidence, not proof. From step {stall.step} the loss stays at about {fmt(level)}"
            f"{self._chance_text(level, chance, classes, long=True)}, while the weights change by {fmt(ratio)} "
            "of their size per step (median): the optimiser works, yet nothing is learned. No other cause was "
            "found: learning rate, update sizes, gradients, activations, frozen or zero layers, and the "
            "recorded input all look healthy."
            + _context_text(run, context)
            + " Labels that do not follow from the inputs (random or wrong labels) behave like this; so does a "
            "task the inputs cannot predict.",
            step=stall.step,
            tags=stall.tags,
            evidence={
                "stall_step": stall.step,
                "loss_level": level,
                "classes": classes,
                "chance_loss": chance,
                "median_update_ratio": ratio,
                "update_ratio_exact": exact,
                "eval_loss": _final_eval_loss(run, context),
            },
        )

    @staticmethod
    def _update_ratio(run: Run, since: int | None) -> tuple[float | None, bool]:
        ratios = update_ratios(run)
        if since is not None:
            ratios = ratios[ratios["step"] >= since]
        ratios = ratios[np.isfinite(ratios["ratio"])]
        if ratios.empty:
            return None, False
        return float(ratios["ratio"].median()), bool(ratios["exact"].all())

    @staticmethod
    def _chance_text(level: float, chance: float | None, classes: int | None, long: bool = False) -> str:
        if chance is None or abs(level / chance - 1) > 0.1:
            return ""
        if not long:
            return f" (= ln {classes}, chance)"
        return (
            f", the loss of a model that predicts the class frequencies of {classes} balanced classes "
            f"(ln {classes} = {fmt(chance)})"
        )


def _final_eval_loss(run: Run, context: Context) -> float | None:
    values = curve(run, "eval_loss", context)
    finite = values[np.isfinite(values.to_numpy(dtype=float))] if values is not None else None
    return float(finite.iloc[-1]) if finite is not None and len(finite) else None


def _context_text(run: Run, context: Context) -> str:
    """What capacity and evaluation add: a model big enough to fit any labels, an eval loss as stuck."""
    parts = []
    n, params = train_samples(run), sum(trainable_parameters(run).values())
    if n and params >= TooFewSamples.memorise_factor * n + (input_width(run) or 0):
        parts.append(
            f" With {params:,} parameters for {n:,} samples the model could fit any labelling of them, so "
            "capacity is not what stops it."
        )
    final = _final_eval_loss(run, context)
    if final is not None:
        parts.append(f" The eval loss ends at {fmt(final)}, no better.")
    return "".join(parts)
