"""Distributions over steps: weight heatmaps, dead-activation shares, class counts.

A zero-initialised layer is one bright line at 0; a frozen layer is bands
that never bend, which the second panel (distance from the first recorded
distribution, flat at zero) makes undeniable; an overflow shows its NaN count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from summary_doctor.findings import Finding
from summary_doctor.reader.run import Run
from summary_doctor.report.plots import data
from summary_doctor.report.plots.style import (
    COLORS,
    CYCLE,
    SMALL,
    WIDE,
    mark_step,
    message_figure,
    new_figure,
    panel_axes,
)


def draw_heatmap(axes: Any, grid: data.Grid) -> Any:
    """Draw a histogram grid (steps x values) on ``axes``, shares on a log colour scale; returns the image.

    The grid is rectilinear, so it is drawn as one image (``pcolorfast``:
    an image for evenly spaced steps, a rectilinear image otherwise), not
    as a mesh of thousands of quadrilaterals; empty cells stay blank.
    """
    density = np.where(grid.density > 0, grid.density, np.nan)
    x = np.append(grid.steps, grid.steps[-1] + (grid.steps[-1] - grid.steps[0]) / max(len(grid.steps) - 1, 1))
    image = axes.pcolorfast(x, grid.edges, density.T, norm=LogNorm(vmin=1e-4, vmax=1))
    axes.grid(False)
    axes.set_ylabel("value")
    return image


def _distance_from_first(grid: data.Grid) -> np.ndarray:
    """Total-variation distance of each step's distribution from the first one: 0 means unchanged."""
    return 0.5 * np.abs(grid.density - grid.density[0]).sum(axis=1)


def heatmap_figure(run: Run, tag: str, finding: Finding | None = None) -> Figure:
    """A histogram tag over steps, plus the panel the finding needs (change from start, or NaN/Inf count)."""
    grid = data.histogram_grid(run, tag)
    if grid is None:
        return message_figure(f"no histogram recorded for {tag}")
    figure = new_figure((WIDE[0], WIDE[1] * 1.25))
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    image = draw_heatmap(top, grid)
    figure.colorbar(image, ax=top, label="share of values", pad=0.01)
    top.set_title(f"{tag}: distribution over steps", loc="left")
    overflow = finding is not None and finding.id == "weight.overflow"
    if overflow or grid.nonfinite.any():
        bottom.plot(grid.steps, grid.nonfinite, ".-", color=COLORS["bad"], ms=3)
        bottom.set_ylabel("NaN/Inf count")
    else:
        change = _distance_from_first(grid)
        bottom.plot(grid.steps, change, ".-", color=COLORS["line"], ms=3)
        bottom.set_ylim(-0.02, max(0.1, float(change.max()) * 1.15))
        bottom.set_ylabel("change vs\nfirst step")
        if change.max() < 1e-9:
            bottom.annotate(
                "never changes",
                xy=(0.5, 0.5),
                xycoords="axes fraction",
                ha="center",
                color=COLORS["bad"],
                fontweight="bold",
            )
    bottom.set_xlabel("step")
    if finding is not None and finding.step is not None:
        mark_step(top, finding.step, f"step {finding.step}", color="white")
    return figure


def overview_heatmap(run: Run, tag: str) -> Figure:
    """A compact heatmap for the overview: one per histogram tag."""
    grid = data.histogram_grid(run, tag, bins=48)
    if grid is None:
        return message_figure(f"no histogram recorded for {tag}", SMALL)
    figure, axes = panel_axes()
    draw_heatmap(axes, grid)
    axes.set_title(tag, loc="left")
    axes.set_xlabel("step")
    return figure


def activation_figure(run: Run, finding: Finding) -> Figure:
    """Share of activations at or below zero per step: a dead ReLU layer sits near 1."""
    figure = new_figure()
    axes = figure.add_subplot()
    drawn = False
    for tag, color in zip(finding.tags[:6], CYCLE, strict=False):
        kind = data.tag_kind(run, tag)
        if kind == "histograms":
            steps, shares = data.share_at_most_zero(run, tag)
        elif kind == "tensors":
            rows = run.current("tensors")
            rows = rows[rows["tag"] == tag].sort_values("step")
            steps, shares = rows["step"].to_numpy(float), rows["zero_fraction"].to_numpy(float)
        else:
            continue
        axes.plot(steps, shares, ".-", ms=3, color=color, label=tag)
        drawn = True
    if not drawn:
        from summary_doctor.report.plots.curves import generic_figure

        return generic_figure(run, finding)
    for key, value in finding.evidence.items():
        if "threshold" in key and isinstance(value, (int, float)) and 0 < value <= 1:
            axes.axhline(value, color=COLORS["threshold"], linestyle="--", linewidth=1, label=key.replace("_", " "))
    axes.set_ylim(-0.02, 1.05)
    axes.set_ylabel("share of values ≤ 0")
    axes.set_xlabel("step")
    axes.legend(loc="best")
    return figure


def _class_counts(run: Run, finding: Finding) -> dict[str, float]:
    """Class counts from the evidence, else summed from a recorded label tensor or histogram."""
    for key in ("class_counts", "counts", "classes"):
        value = finding.evidence.get(key)
        if isinstance(value, dict):
            return {str(k): float(v) for k, v in value.items()}
        if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
            return {str(i): float(v) for i, v in enumerate(value)}
    tensors = run.current("tensors")
    for tag in finding.tags:
        rows = tensors[tensors["tag"] == tag]
        if not rows.empty:
            labels = np.concatenate([np.asarray(v).ravel() for v in rows["value"] if v is not None]).astype(int)
            counts = np.bincount(labels[labels >= 0])
            return {str(i): float(c) for i, c in enumerate(counts)}
    return {}


def class_counts_figure(run: Run, finding: Finding) -> Figure:
    """Bars per class against the even share: an imbalance is the bars that fall short of the line."""
    counts = _class_counts(run, finding)
    if not counts:
        from summary_doctor.report.plots.curves import generic_figure

        return generic_figure(run, finding)
    figure = new_figure()
    axes = figure.add_subplot()
    values = np.array(list(counts.values()))
    colors = [COLORS["bad"] if v < values.mean() / 2 else COLORS["line"] for v in values]
    axes.bar(list(counts), values, color=colors)
    axes.axhline(values.mean(), color=COLORS["muted"], linestyle="--", linewidth=1, label="even share")
    if "most_class" in finding.evidence:  # dataset.class-imbalance: its own line
        axes.axhline(0.1 * values.max(), color=COLORS["threshold"], linestyle=":", linewidth=1, label="0.1 x the most")
    axes.set_xlabel("class")
    axes.set_ylabel("samples")
    axes.grid(axis="x", visible=False)
    axes.legend(loc="best")
    return figure


def side_by_side_figure(run: Run, tags: list[str], title: str) -> Figure:
    """Histograms of several tags over steps, one panel each, on a shared colour scale: to compare them."""
    grids = [(tag, data.histogram_grid(run, tag)) for tag in tags]
    grids = [(tag, grid) for tag, grid in grids if grid is not None]
    if not grids:
        return message_figure("none of the finding's histograms was recorded")
    figure = new_figure((WIDE[0], WIDE[1]))
    panels = figure.subplots(1, len(grids), sharey=True, squeeze=False)[0]
    for axes, (tag, grid) in zip(panels, grids, strict=True):
        image = draw_heatmap(axes, grid)
        axes.set_title(tag, loc="left")
        axes.set_xlabel("step")
    figure.colorbar(image, ax=list(panels), label="share of values", pad=0.01)
    figure.suptitle(title, x=0.01, ha="left", fontsize=9)
    return figure
