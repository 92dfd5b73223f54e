"""Dataset: classes with very different sample counts, and labels that may be wrong.

Class counts come from the recorded labels (``_labels``). Wrong labels leave
no direct trace in summary logs (that needs per-sample predictions); what
they do leave is a loss stuck at a floor that the model should pass, with
every other cause of such a stall ruled out by the other rules' own checks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules._inputs import find_data_tag, missing_data_tag
from summary_doctor.rules._labels import ClassCounts, class_counts, is_one_hot
from summary_doctor.rules._pipeline import batch_size
from summary_doctor.rules._series import fmt
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register

_BALANCED_METRIC = re.compile(r"(^|[^a-z])(f1|auc|roc|balanced|recall|precision|kappa|mcc)([^a-z]|$)", re.IGNORECASE)


def class_weighted_loss(run: Run) -> bool:
    """Whether the loss picks a per-class weight by label: a ``Gather`` on a constant in the loss cell's scope.

    ``nn.CrossEntropyLoss(weight=w)`` / ``nn.NLLLoss(weight=w)`` compile to
    ``Gather(w, label)`` in the loss scope; the unweighted losses have none.
    """
    graph = run.graph
    if graph is None:
        return False
    nodes = graph.nodes
    gathers = nodes[(nodes["op_type"] == "Gather") & nodes["scope"].str.contains("loss", case=False, na=False)]
    constants = set(graph.constants["name"]) if hasattr(graph, "constants") else set()
    edges = graph.edges
    return bool(edges[edges["target"].isin(gathers["name"]) & edges["source"].isin(constants)].shape[0])


def balanced_metric(run: Run) -> str | None:
    """A recorded metric that sees every class (F1, AUC, balanced accuracy, recall ...), or None."""
    names = [*run.current("scalars")["tag"].unique(), *map(str, run.lineage.metrics)]
    return next((name for name in names if _BALANCED_METRIC.search(name)), None)


def poisson_upper(k: float, z: float = 1.645) -> float:
    """One-sided upper confidence bound of a count (variance-stabilised, conservative at small k)."""
    return (math.sqrt(k + 1) + z / 2) ** 2


def poisson_lower(k: float, z: float = 1.645) -> float:
    """One-sided lower confidence bound of a count."""
    return max(math.sqrt(k) - z / 2, 0.0) ** 2


@register
@dataclass
class ClassImbalance(Rule):
    """Classes with very different sample counts in the recorded labels.

    What it detects
        Class counts summed over every recorded label batch (histograms or
        tensors), the least and the most frequent class, and their ratio.
        Below ``max_ratio`` even at the ratio's upper confidence bound:
        warning, or info when the run handles it (a class-weighted loss in
        the graph, or a metric such as F1/AUC/balanced accuracy recorded).
        Below ``mild_ratio``: info (a mild imbalance).
    Why it matters
        The model learns to predict the frequent classes; accuracy looks
        good while the rare classes are missed (checklist ds.03: per-class
        counts and their spread).
    Typical causes
        The data as collected; a filter or split that dropped a class; a
        sampler that over-draws some classes.
    How to fix
        Class weights in the loss (``nn.CrossEntropyLoss(weight=...)``),
        re-sampling (``WeightedRandomSampler``), collecting more of the rare
        classes, and a metric that sees them (per-class recall, F1).
    Thresholds
        max_ratio = 0.1: Deepchecks' ClassImbalance condition (least/most
        frequent class >= 0.1). The ratio's upper bound uses one-sided 95%
        Poisson bounds on the two counts, so a handful of recorded batches
        cannot make a balanced set look imbalanced. mild_ratio = 0.5 (the
        least class has under half the most's samples) only informs.
        Histogram labels are decoded as MindSpore buckets them (whole-number
        bucket edges; the exact label sum splits a bucket shared by two
        classes); when buckets still mix classes, the counts of classes
        sharing buckets give an upper bound on the ratio.
    """

    ids = ("dataset.class-imbalance",)
    hint: ClassVar[str] = (
        "Weight the loss by inverse class frequency (nn.CrossEntropyLoss(weight=...)) or re-sample "
        "(WeightedRandomSampler), and track per-class recall or F1 (checklist ds.03)."
    )
    max_ratio: float = 0.1
    mild_ratio: float = 0.5

    def requirements(self, run: Run, context: Context) -> Missing | None:
        data = find_data_tag(run, "label", context)
        if data is None:
            return missing_data_tag("label", context)
        if is_one_hot(run, data, batch_size(run)):
            return Missing(
                f"'{data.tag}' holds one-hot labels: a histogram of 0/1 values cannot tell the classes apart",
                "record class ids (argmax) or the labels with ops.TensorSummary()('label', y)",
            )
        counts = class_counts(run, data)
        if counts is None:
            return Missing(
                f"'{data.tag}' holds values that are not whole numbers (regression targets?): no classes",
                "record class ids as labels, or name the label tag with --label-tag",
            )
        if not counts.resolved and self._bound_ratio(counts) >= self.max_ratio:
            return Missing(
                f"the histograms of '{data.tag}' put several classes into one bucket "
                f"({len(counts.classes())} classes, about {fmt(counts.records and _per_record(counts))} labels "
                "per batch); the class counts are not resolved",
                "record the labels with ops.TensorSummary()('label', y) (exact), or use batches of at least "
                "10 labels per class (MindSpore gives count // 10 + 1 buckets)",
            )
        return None

    def _bound_ratio(self, counts: ClassCounts) -> float:
        least, most = counts.bounds()
        return poisson_upper(least) / poisson_lower(most) if poisson_lower(most) > 0 else math.inf

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        data = find_data_tag(run, "label", context)
        assert data is not None
        counts = class_counts(run, data)
        assert counts is not None
        least, most = counts.bounds()
        ratio, upper = (least / most if most > 0 else math.nan), self._bound_ratio(counts)
        if not ratio < self.mild_ratio:
            return
        handled = self._handled(run)
        severe = upper < self.max_ratio
        severity = Severity.WARNING if severe and not handled else Severity.INFO
        yield self._finding(run, data.tag, counts, ratio, upper, severity, handled)

    @staticmethod
    def _handled(run: Run) -> str | None:
        if class_weighted_loss(run):
            return "the loss is class-weighted (a per-class weight gathered by label in the loss cell)"
        metric = balanced_metric(run)
        return f"a class-aware metric is recorded ('{metric}')" if metric else None

    def _finding(self, run, tag, counts, ratio, upper, severity, handled) -> Finding:
        shown = (
            {str(c): n for c, n in sorted(counts.counts.items())}
            if counts.resolved
            else {"/".join(map(str, classes)): n for classes, n in counts.components()}
        )
        least_class = min(shown, key=shown.__getitem__)
        most_class = max(shown, key=shown.__getitem__)
        kind = "severe" if upper < self.max_ratio else "mild"
        bound = "" if counts.resolved else " at most (classes sharing buckets were averaged)"
        return make_finding(
            self,
            run,
            severity,
            f"class {least_class} has {fmt(ratio)}x the samples of class {most_class} ({kind} imbalance)",
            f"Over {counts.records} recorded batches of '{tag}', class {least_class} has {shown[least_class]:,.0f} "
            f"samples and class {most_class} {shown[most_class]:,.0f}: a least/most ratio of {fmt(ratio)}{bound} "
            f"(upper bound {fmt(upper)}; below {fmt(self.max_ratio)} is a severe imbalance)."
            + (f" The run handles it: {handled}." if handled else ""),
            tags=(tag,),
            evidence={
                "class_counts": shown,
                "least_class": least_class,
                "most_class": most_class,
                "ratio": ratio,
                "ratio_upper": upper,
                "records": counts.records,
                "resolved": counts.resolved,
                "handled": handled,
            },
        )


def _per_record(counts: ClassCounts) -> float:
    total = sum(counts.counts.values()) + sum(counts.groups.values())
    return total / counts.records if counts.records else math.nan
