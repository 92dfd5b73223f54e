"""Line plots: the loss with the finding's step marked, train vs eval, ratios, norms.

A person should see the problem before reading a number: the divergence
step, the first NaN, the plateau, the eval minimum, the threshold crossed.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from summary_doctor.findings import Finding
from summary_doctor.reader.run import Run
from summary_doctor.report.plots import data
from summary_doctor.report.plots.style import (
    COLORS,
    CYCLE,
    WIDE,
    downsample,
    log_scale_if_wide,
    mark_step,
    message_figure,
    new_figure,
    panel_axes,
)


def _smooth(values: np.ndarray) -> np.ndarray:
    """A centred rolling median: the trend through noisy mini-batch losses, NaN-tolerant."""
    window = max(3, len(values) // 25) | 1
    if len(values) < 2 * window:
        return values
    padded = np.pad(values, window // 2, mode="edge")
    view = np.lib.stride_tricks.sliding_window_view(padded, window)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN, as they should
        smooth = np.nanmedian(view, axis=1)
    smooth[~np.isfinite(view).any(axis=1)] = np.nan
    return smooth


def _mark_nonfinite(axes: Any, steps: np.ndarray, values: np.ndarray) -> float | None:
    """Red ticks on the top edge where the value is NaN/Inf; returns the first such step."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    axes.plot(steps[bad], np.ones(bad.sum()), "x", color=COLORS["bad"], transform=axes.get_xaxis_transform(), ms=4)
    return float(steps[bad][0])


def _draw_curve(axes: Any, steps: np.ndarray, values: np.ndarray, label: str, color: str) -> None:
    steps, values = downsample(steps, values)
    smooth = _smooth(values)
    if smooth is not values:
        axes.plot(steps, values, color=color, alpha=0.3, linewidth=0.8)
    axes.plot(steps, smooth, color=color, label=label)
    log_scale_if_wide(axes, values)
    finite = values[np.isfinite(values)]
    if axes.get_yscale() == "linear" and len(finite) and finite.min() > 0:
        axes.set_ylim(bottom=0)  # from zero, a loss that barely moves looks flat, as it is


def _finding_number(finding: Finding, *keys: str) -> float | None:
    for key in keys:
        value = finding.evidence.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _loss_axes(axes: Any, run: Run, finding: Finding) -> bool:
    """Draw the training loss with the first NaN, the minimum, the finding's step and a plateau span."""
    tag = data.loss_tag(run, finding.tags)
    if tag is None:
        return False
    steps, values = data.series(run, tag)
    _draw_curve(axes, steps, values, tag, COLORS["line"])
    first_bad = _mark_nonfinite(axes, steps, values)
    if first_bad is not None:
        mark_step(axes, first_bad, f"first NaN/Inf at step {first_bad:g}")
    finite = np.isfinite(values)
    if finite.any():
        best = int(np.argmin(np.where(finite, values, np.inf)))
        axes.plot(steps[best], values[best], "o", color=COLORS["ok"], ms=5, label=f"min {values[best]:.4g}")
    if finding.step is not None and finding.step != first_bad:
        if finding.id == "loss.plateau":
            start = _finding_number(finding, "stall_step", "plateau_start", "start_step") or finding.step
            axes.axvspan(start, steps[-1], color=COLORS["bad"], alpha=0.08, label="no progress")
        mark_step(axes, finding.step, f"{finding.id} at step {finding.step}")
    axes.set_ylabel(tag)
    axes.legend(loc="best")
    return True


def loss_figure(run: Run, finding: Finding) -> Figure:
    """The training loss, marked where the finding points."""
    figure = new_figure()
    axes = figure.add_subplot()
    if not _loss_axes(axes, run, finding):
        return message_figure("no loss scalar recorded: record it with SummaryCollector or ops.ScalarSummary")
    axes.set_xlabel("step")
    return figure


def learning_rate_figure(run: Run, finding: Finding) -> Figure:
    """The loss above, the weights' relative updates below against the threshold: cause and effect together."""
    weights = [t for t in finding.tags if data.tag_kind(run, t) in ("histograms", "tensors")]
    weights = weights or [t for t in dict.fromkeys(run.current("histograms")["tag"]) if "weight" in t][:4]
    if not weights:
        return loss_figure(run, finding)
    figure = new_figure((WIDE[0], WIDE[1] * 1.5))
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    if not _loss_axes(top, run, finding):
        top.set_axis_off()
    _ratio_axes(bottom, run, finding, weights)
    bottom.set_xlabel("step")
    return figure


def _best(values: np.ndarray, tag: str) -> int:
    finite = np.where(np.isfinite(values), values, np.nan)
    return int(np.nanargmin(finite) if "loss" in tag.lower() else np.nanargmax(finite))


def train_eval_figure(run: Run, finding: Finding) -> Figure:
    """Train and eval curves on one axis, the eval optimum marked: where training should have stopped."""
    names = data.scalar_tags(run)
    eval_tags = [t for t in finding.tags if t in names and data.is_eval_tag(t)] or [
        t for t in names if data.is_eval_tag(t)
    ]
    if not eval_tags:
        return loss_figure(run, finding)
    eval_tag = next((t for t in eval_tags if "loss" in t.lower()), eval_tags[0])
    train_tag = data.loss_tag(run, finding.tags) if "loss" in eval_tag.lower() else None
    figure = new_figure()
    axes = figure.add_subplot()
    if train_tag:
        _draw_curve(axes, *data.series(run, train_tag), f"train: {train_tag}", COLORS["line"])
    steps, values = data.series(run, eval_tag)
    axes.plot(steps, values, "o-", color=COLORS["eval"], ms=3, label=f"eval: {eval_tag}")
    if np.isfinite(values).any():
        best = _best(values, eval_tag)
        axes.plot(steps[best], values[best], "*", color=COLORS["ok"], ms=11, label=f"best eval at step {steps[best]:g}")
        if best < len(values) - 1:
            axes.axvspan(steps[best], steps[-1], color=COLORS["bad"], alpha=0.08)
    axes.set_xlabel("step")
    axes.legend(loc="best")
    return figure


def _threshold_lines(axes: Any, finding: Finding) -> None:
    for key, value in finding.evidence.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and "threshold" in key and value > 0:
            label = f"{key.replace('_', ' ')} {value:g}"
            axes.axhline(value, color=COLORS["threshold"], linestyle="--", linewidth=1)
            axes.annotate(
                label,
                xy=(0, value),
                xycoords=("axes fraction", "data"),
                fontsize=7,
                color=COLORS["threshold"],
                xytext=(2, 2),
                textcoords="offset points",
            )


def _ratio_axes(axes: Any, run: Run, finding: Finding, tags: list[str]) -> bool:
    """Each weight's per-step update ratio (the rules' own numbers) on a log axis, with the threshold."""
    table = data.update_ratios(run)
    tags = [t for t in tags if (table["tag"] == t).any()] or list(dict.fromkeys(table["tag"]))[:6]
    for tag in tags[:6]:
        rows = table[table["tag"] == tag]
        axes.plot(rows["step"], rows["ratio"].where(rows["ratio"] > 0), ".-", ms=3, label=data.parameter_name(tag))
    if not tags:
        return False
    exact = bool(table[table["tag"].isin(tags)]["exact"].all())
    axes.set_ylabel("update / weight" + ("" if exact else "\n(lower bound)"))
    axes.set_yscale("log")
    _threshold_lines(axes, finding)
    axes.legend(loc="best", ncols=2 if len(tags) > 3 else 1)
    return True


def update_ratio_figure(run: Run, finding: Finding) -> Figure:
    """Per-tag relative weight update over steps on a log axis, against the rule's threshold."""
    figure = new_figure()
    axes = figure.add_subplot()
    if not _ratio_axes(axes, run, finding, list(finding.tags)):
        return generic_figure(run, finding)
    mark_step(axes, finding.step, f"step {finding.step}")
    axes.set_xlabel("step")
    return figure


def gradient_figure(run: Run, finding: Finding) -> Figure:
    """Gradient RMS per layer on a log axis: vanishing layers sink, exploding ones climb or turn NaN."""
    tags = [t for t in finding.tags if data.tag_kind(run, t) in ("histograms", "tensors")]
    if not tags:
        tags = [t for t in dict.fromkeys(run.current("histograms")["tag"]) if "grad" in t.lower()]
    if not tags:
        return generic_figure(run, finding)
    figure = new_figure()
    axes = figure.add_subplot()
    for tag in tags[:8]:
        steps, rms = data.rms_series(run, tag)
        axes.plot(steps, np.where(np.isfinite(rms), np.maximum(rms, 1e-30), np.nan), ".-", ms=3, label=tag)
        first_bad = _mark_nonfinite(axes, steps, rms)
        if first_bad is not None:
            mark_step(axes, first_bad, f"NaN/Inf from step {first_bad:g}")
    axes.set_yscale("log")
    # The rules' thresholds are a first/last norm ratio and an L2 norm: neither lives on this RMS
    # axis, so the gap between the curves is the evidence and the ratio goes in the title.
    ratio = finding.evidence.get("median_ratio")
    if isinstance(ratio, (int, float)):
        limit = finding.evidence.get("ratio_threshold")
        suffix = f" (threshold {limit:g})" if limit else ""
        axes.set_title(f"first/last layer gradient norm ratio {ratio:.3g}{suffix}")
    axes.set_xlabel("step")
    axes.set_ylabel("gradient RMS")
    axes.legend(loc="best", ncols=2 if len(tags) > 4 else 1)
    return figure


def generic_figure(run: Run, finding: Finding) -> Figure:
    """Any finding: the curves of its scalar tags, else its histogram, else the loss for context."""
    from summary_doctor.report.plots.histograms import heatmap_figure

    scalars = [t for t in finding.tags if data.tag_kind(run, t) == "scalars"]
    if scalars:
        figure = new_figure()
        axes = figure.add_subplot()
        for tag, color in zip(scalars[:6], CYCLE, strict=False):
            _draw_curve(axes, *data.series(run, tag), tag, color)
        mark_step(axes, finding.step, f"step {finding.step}")
        axes.set_xlabel("step")
        axes.legend(loc="best")
        return figure
    histograms = [t for t in finding.tags if data.tag_kind(run, t) == "histograms"]
    if histograms:
        return heatmap_figure(run, histograms[0], finding)
    return loss_figure(run, finding)


def small_multiple(run: Run, tag: str) -> Figure:
    """One scalar tag as a small panel of the overview."""
    figure, axes = panel_axes()
    steps, values = data.series(run, tag)
    color = COLORS["eval"] if data.is_eval_tag(tag) else COLORS["line"]
    if len(steps) < 20:
        axes.plot(steps, values, "o-", ms=2.5, color=color)
    else:
        _draw_curve(axes, steps, values, tag, color)
    _mark_nonfinite(axes, steps, values)
    axes.set_title(tag, loc="left")
    axes.set_xlabel("step")
    return figure


def draw_loss(axes: Any, run: Run, finding: Finding) -> bool:
    """Draw the training loss marked for ``finding`` on ``axes`` (for figures that combine panels)."""
    return _loss_axes(axes, run, finding)
