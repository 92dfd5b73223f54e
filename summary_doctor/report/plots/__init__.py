"""Evidence plots for findings and overview plots for runs, as PNG bytes.

One evidence plot per finding kind, chosen by the finding's id (then its
group), with a generic fallback for any id, so every finding in the report
has an image. Drawing never raises into the report: a failing plot becomes a
figure that says it could not be drawn, and the rest of the report is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from matplotlib.figure import Figure

from summary_doctor.findings import Finding
from summary_doctor.reader.run import Run
from summary_doctor.report.plots import curves, dataset, graph, histograms
from summary_doctor.report.plots.style import data_uri, draw_png, message_figure

log = logging.getLogger(__name__)

Draw = Callable[[Run, Finding], Figure]

BY_ID: dict[str, Draw] = {
    "metric.overfitting": curves.train_eval_figure,
    "hparam.too-many-epochs": curves.train_eval_figure,
    "dataset.too-few-samples": curves.train_eval_figure,
    "weight.update-ratio": curves.update_ratio_figure,
    "activation.dead": histograms.activation_figure,
    "dataset.class-imbalance": histograms.class_counts_figure,
    "dataset.missing-values": dataset.missing_values_figure,
    "dataset.outliers": dataset.outliers_figure,
    "dataset.label-errors": dataset.label_errors_figure,
    "preprocess.not-normalized": dataset.not_normalized_figure,
    "preprocess.no-shuffle": dataset.no_shuffle_figure,
    "preprocess.train-eval-mismatch": dataset.train_eval_figure,
    "init.rank-mismatch": dataset.rank_figure,
    "api.dropout-keep-prob": graph.graph_figure,
    "api.div-no-nan": graph.division_figure,
    "hparam.lr-too-large": curves.learning_rate_figure,
    "hparam.lr-too-small": curves.learning_rate_figure,
}
BY_GROUP: dict[str, Draw] = {
    "loss": curves.loss_figure,
    "hparam": curves.loss_figure,
    "gradient": curves.gradient_figure,
    "graph": graph.graph_figure,
}


def _sharing(run: Run, finding: Finding) -> Figure:
    """graph.weight-sharing: the shared parameter's readers, or the two identical histograms side by side."""
    if finding.evidence.get("kind") == "identical-copies":
        return histograms.side_by_side_figure(run, list(finding.tags), "identical at every step")
    return graph.graph_figure(run, finding)


def _histogram_first(run: Run, finding: Finding) -> Figure:
    """init.*, weight.overflow, graph.weight-freezing: the weight's distribution over steps."""
    tags = [t for t in finding.tags if (run.histograms["tag"] == t).any()]
    if not tags:
        fallback = graph.graph_figure if finding.id.startswith("graph.") else curves.generic_figure
        return fallback(run, finding)
    return histograms.heatmap_figure(run, tags[0], finding)


BY_ID |= {
    "graph.weight-freezing": _histogram_first,
    "weight.overflow": _histogram_first,
    "graph.weight-sharing": _sharing,
}
BY_GROUP["init"] = _histogram_first


def choose(finding: Finding) -> Draw:
    """The drawing function for a finding: by id, then by group, then the generic curves."""
    group = finding.id.split(".", 1)[0]
    return BY_ID.get(finding.id) or BY_GROUP.get(group) or curves.generic_figure


def finding_png(run: Run, finding: Finding) -> bytes:
    """The evidence plot of one finding as PNG; never raises."""
    try:
        return draw_png(choose(finding), run, finding)
    except Exception:  # a plot must never hide the diagnosis
        log.warning("could not draw the plot of %s", finding.id, exc_info=True)
        return draw_png(message_figure, f"the plot for {finding.id} could not be drawn")


def overview_png(draw: Callable[..., Figure], run: Run, tag: str) -> bytes:
    """An overview panel (scalar curve or histogram heatmap) as PNG; never raises."""
    try:
        return draw_png(draw, run, tag)
    except Exception:
        log.warning("could not draw the overview plot of %s", tag, exc_info=True)
        return draw_png(message_figure, f"{tag}: could not be drawn")


__all__ = ["choose", "data_uri", "finding_png", "overview_png"]
