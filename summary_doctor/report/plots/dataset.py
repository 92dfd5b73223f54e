"""Evidence plots of the data rules: inputs over steps, train vs eval inputs, the dataset pipeline, ranks.

Each draws the numbers its rule judged: the input's distribution with the
first NaN batch marked, each batch's extremes against the outlier line, the
train and eval input bands, the pipeline as a chain with the missing op
marked, the label batches' means, and the ranks' first histograms overlaid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from summary_doctor.findings import Finding
from summary_doctor.reader.run import Run
from summary_doctor.report.plots.curves import generic_figure, loss_figure
from summary_doctor.report.plots.data import histogram_grid
from summary_doctor.report.plots.histograms import draw_heatmap, heatmap_figure
from summary_doctor.report.plots.style import COLORS, CYCLE, WIDE, mark_step, new_figure
from summary_doctor.rules._inputs import DataTag, records
from summary_doctor.rules._pipeline import chain


def _data_tag(run: Run, tag: str) -> DataTag | None:
    for frame in ("tensors", "histograms"):
        if (run.current(frame)["tag"] == tag).any():
            return DataTag(tag, frame)
    return None


def missing_values_figure(run: Run, finding: Finding) -> Figure:
    """The input's distribution over steps, with its NaN/Inf count and the first non-finite batch marked."""
    tag = finding.tags[0] if finding.tags else None
    if tag is not None and (run.current("histograms")["tag"] == tag).any():
        figure = heatmap_figure(run, tag)
        bottom = figure.axes[1]
        mark_step(bottom, finding.step, f"first NaN/Inf batch: step {finding.step}")
        loss_step = finding.evidence.get("loss_first_nonfinite_step")
        if isinstance(loss_step, int):
            bottom.plot(
                [loss_step], [0], "v", color=COLORS["bad"], ms=6, label=f"loss non-finite from step {loss_step}"
            )
            bottom.legend(loc="center right")
        return figure
    data = _data_tag(run, tag) if tag else None
    if data is None:
        return generic_figure(run, finding)
    rows = records(run, data)
    figure = new_figure()
    axes = figure.add_subplot()
    axes.plot(rows["step"], rows["nonfinite"], ".-", color=COLORS["bad"], ms=3)
    axes.set_ylabel("NaN/Inf values")
    axes.set_xlabel("step")
    mark_step(axes, finding.step, f"first at step {finding.step}")
    return figure


def outliers_figure(run: Run, finding: Finding) -> Figure:
    """Each batch's min and max with the bulk's quartiles, on a symmetric log axis; outlier batches in red."""
    data = _data_tag(run, finding.tags[0]) if finding.tags else None
    if data is None:
        return generic_figure(run, finding)
    rows = records(run, data)
    rows = rows[rows["count"] > rows["nonfinite"]]
    evidence = finding.evidence
    figure = new_figure()
    axes = figure.add_subplot()
    axes.fill_between(rows["step"], rows["min"], rows["max"], color=COLORS["raw"], alpha=0.5, label="batch min..max")
    axes.axhspan(evidence["q1"], evidence["q3"], color=COLORS["ok"], alpha=0.3, label="bulk quartiles")
    line = evidence["q3"] + evidence["threshold_factor"] * evidence["typical_exceedance_iqr"] * evidence["iqr"]
    axes.axhline(line, color=COLORS["threshold"], linestyle="--", linewidth=1, label="outlier line")
    hits = rows[rows["step"].isin(evidence["steps"])]
    axes.plot(
        hits["step"],
        np.maximum(hits["max"].abs(), hits["min"].abs()) * np.sign(hits["max"]),
        "o",
        color=COLORS["bad"],
        ms=4,
        label="outlier batches",
    )
    axes.set_yscale("symlog", linthresh=max(evidence["iqr"], 1e-6))
    axes.set_xlabel("step")
    axes.set_ylabel(data.tag)
    axes.legend(loc="best")
    return figure


def train_eval_figure(run: Run, finding: Finding) -> Figure:
    """Mean +- SD of each recorded batch, training and evaluation input side by side."""
    tags = [_data_tag(run, t) for t in finding.tags]
    if len(tags) < 2 or None in tags:
        return generic_figure(run, finding)
    figure = new_figure((WIDE[0], WIDE[1] * 1.1))
    axes = figure.add_subplot()
    for data, color in zip(tags, (COLORS["line"], COLORS["eval"]), strict=False):
        rows = records(run, data)
        steps, mean, std = rows["step"].to_numpy(float), rows["mean"].to_numpy(float), rows["std"].to_numpy(float)
        if len(rows) > 3:
            axes.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2)
            axes.plot(steps, mean, "-", color=color, label=f"{data.tag}: mean ± SD")
        else:
            axes.errorbar(steps, mean, yerr=std, fmt="o", color=color, capsize=3, label=f"{data.tag}: mean ± SD")
    axes.set_xlabel("step")
    axes.set_ylabel("input value")
    drift = finding.evidence.get("drift", float("nan"))
    axes.set_title(f"drift score {drift:.2g} (a shift above 0.1)", loc="left")
    axes.legend(loc="best")
    return figure


def _box(axes: Any, x: float, text: str, *, missing: bool = False) -> None:
    color, face = (COLORS["bad"], "#fee2e2") if missing else ("#374151", COLORS["node"])
    axes.add_patch(
        FancyBboxPatch(
            (x - 0.45, -0.3),
            0.9,
            0.6,
            boxstyle="round,pad=0.02",
            fc=face,
            ec=color,
            linestyle="--" if missing else "-",
            linewidth=1.2,
        )
    )
    axes.text(x, 0, text, ha="center", va="center", fontsize=6.5, color=color, wrap=True)


def _step_text(step: Any) -> str:
    parts = [step.op_type.replace("Dataset", "\nDataset")]
    if step.operations:
        parts.append("\n".join(step.operations[:4]))
    if step.sampler:
        parts.append(step.sampler.replace("Sampler", "\nSampler"))
    return "\n".join(parts)


def draw_chain(axes: Any, run: Run, missing: str, *, after_source: bool) -> bool:
    """The recorded dataset pipeline as boxes, source first, with the op that should be there marked."""
    steps = chain(run)
    if not steps:
        return False
    labels = [_step_text(s) for s in steps]
    position = 1 if after_source else max(len(labels) - 1, 1)
    labels.insert(position, f"{missing}\n(missing)")
    for x, text in enumerate(labels):
        _box(axes, x, text, missing=x == position)
        if x:
            axes.annotate("", xy=(x - 0.45, 0), xytext=(x - 0.55, 0), arrowprops={"arrowstyle": "->", "lw": 1})
    axes.set_xlim(-0.6, len(labels) - 0.4)
    axes.set_ylim(-0.5, 0.5)
    axes.set_axis_off()
    return True


def no_shuffle_figure(run: Run, finding: Finding) -> Figure:
    """The pipeline with the missing Shuffle, over each recorded label batch's mean (one class per batch: flat runs)."""
    label = finding.evidence.get("label_tag")
    data = _data_tag(run, label) if label else None
    figure = new_figure((WIDE[0], WIDE[1] * (1.5 if data is not None else 0.6)))
    if data is None:
        axes = figure.add_subplot()
        return figure if draw_chain(axes, run, "Shuffle", after_source=True) else generic_figure(run, finding)
    chain_axes, mean_axes = figure.subplots(2, 1, height_ratios=[1, 2])
    if not draw_chain(chain_axes, run, "Shuffle", after_source=True):
        chain_axes.set_axis_off()
    rows = records(run, data)
    mean_axes.plot(rows["step"], rows["mean"], ".-", color=COLORS["line"], ms=3, label=f"{data.tag}: batch mean")
    single = rows["min"] == rows["max"]
    mean_axes.plot(
        rows["step"][single], rows["mean"][single], "o", color=COLORS["bad"], ms=3, label="batch of one class"
    )
    mean_axes.set_xlabel("step")
    mean_axes.set_ylabel("label")
    mean_axes.legend(loc="best")
    return figure


def not_normalized_figure(run: Run, finding: Finding) -> Figure:
    """The pipeline with the missing Rescale/Normalize, over the input's distribution across steps."""
    tag = finding.tags[0] if finding.tags else None
    grid = histogram_grid(run, tag) if tag else None
    figure = new_figure((WIDE[0], WIDE[1] * (1.6 if grid is not None else 0.6)))
    if grid is None:
        axes = figure.add_subplot()
        return (
            figure
            if draw_chain(axes, run, "Rescale +\nNormalize", after_source=False)
            else generic_figure(run, finding)
        )
    chain_axes, heat_axes = figure.subplots(2, 1, height_ratios=[1, 2])
    if finding.evidence.get("normalizing_ops") or not draw_chain(
        chain_axes, run, "Rescale +\nNormalize", after_source=False
    ):
        chain_axes.set_axis_off()
    image = draw_heatmap(heat_axes, grid)
    figure.colorbar(image, ax=heat_axes, label="share of values", pad=0.01)
    heat_axes.set_title(f"{tag}: distribution over steps", loc="left")
    heat_axes.set_xlabel("step")
    return figure


def rank_figure(run: Run, finding: Finding) -> Figure:
    """Each rank's first histogram of the parameter that differs most, overlaid."""
    data = finding.evidence.get("first_histograms")
    if not isinstance(data, dict) or not data.get("shares"):
        return generic_figure(run, finding)
    edges = np.asarray(data["edges"], dtype=float)
    figure = new_figure()
    axes = figure.add_subplot()
    for (name, shares), color in zip(data["shares"].items(), CYCLE, strict=False):
        axes.stairs(np.asarray(shares, dtype=float), edges, color=color, linewidth=1.4, label=name)
    axes.set_title(f"{data['parameter']} at step {data['step']}", loc="left")
    axes.set_xlabel("value")
    axes.set_ylabel("share of values")
    axes.legend(loc="best")
    return figure


def label_errors_figure(run: Run, finding: Finding) -> Figure:
    """The training loss with the chance level ln(C) it sits at."""
    figure = loss_figure(run, finding)
    chance = finding.evidence.get("chance_loss")
    if isinstance(chance, (int, float)) and figure.axes:
        axes = figure.axes[0]
        axes.axhline(
            chance,
            color=COLORS["threshold"],
            linestyle="--",
            linewidth=1,
            label=f"ln {finding.evidence.get('classes')} (chance)",
        )
        axes.legend(loc="best")
    return figure
