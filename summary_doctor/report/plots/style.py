"""The one place that decides how every report plot looks and how it is encoded.

Plots are drawn with :class:`matplotlib.figure.Figure` directly (no pyplot
state, so reports can be built in threads and tests), inside one rc context,
at one fixed dpi, and saved as PNG without a ``Software`` entry so the bytes
depend only on the data. Sizes are modest: a report of a 100-parameter run
must stay a few megabytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 100
WIDE = (6.4, 2.9)
SMALL = (3.2, 1.9)
MAX_POINTS = 1500

COLORS = {
    "line": "#2563eb",
    "raw": "#93c5fd",
    "eval": "#ea580c",
    "bad": "#dc2626",
    "ok": "#16a34a",
    "muted": "#6b7280",
    "threshold": "#b91c1c",
    "node": "#e5e7eb",
    "focus": "#fecaca",
}
CYCLE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563"]

STYLE: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.2,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.prop_cycle": matplotlib.cycler(color=CYCLE),
    "image.cmap": "viridis",
    "svg.hashsalt": "summary-doctor",
    # Titles sit just above the axes; left to matplotlib, each one measures every tick label first.
    "axes.titley": 1.0,
}
PANEL_TICKS = 4  # at most this many ticks on each axis of an overview panel: a third of a panel's cost

_depth = 0


@contextmanager
def styled() -> Iterator[None]:
    """Apply the report style; artists read rcParams when created, so draw inside this.

    Nested uses cost nothing: only the outermost copies matplotlib's settings
    (a report wraps all its drawing in one, each plot in another).
    """
    global _depth
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    with matplotlib.rc_context(STYLE):
        _depth = 1
        try:
            yield
        finally:
            _depth = 0


def new_figure(size: tuple[float, float] = WIDE) -> Figure:
    """A figure of the report's size and dpi, laid out so labels are never cut."""
    return Figure(figsize=size, dpi=DPI, layout="constrained")


def panel_figure() -> Figure:
    """A small overview panel with fixed margins: drawn once, where a layout engine draws it twice.

    A report shows up to 48 of them; constrained layout measures every tick
    label by drawing the figure first, a third of each panel's cost.
    """
    figure = Figure(figsize=SMALL, dpi=DPI)
    figure.subplots_adjust(left=0.17, right=0.97, bottom=0.23, top=0.8)
    return figure


def panel_axes() -> tuple[Figure, Any]:
    """A :func:`panel_figure` and its axes, with a few ticks: every tick is a handful of artists to draw."""
    figure = panel_figure()
    axes = figure.add_subplot()
    axes.xaxis.set_major_locator(MaxNLocator(PANEL_TICKS, steps=[1, 2, 5, 10]))
    axes.yaxis.set_major_locator(MaxNLocator(PANEL_TICKS, steps=[1, 2, 5, 10]))
    return figure, axes


def png_bytes(figure: Figure) -> bytes:
    """Encode ``figure`` as PNG; no metadata, so equal data gives equal bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """A ``data:`` URI, so the report stays one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def draw_png(draw: Callable[..., Figure], *args: Any, **kwargs: Any) -> bytes:
    """Run a drawing function in the report style and return its PNG bytes."""
    with styled():
        return png_bytes(draw(*args, **kwargs))


def downsample(steps: np.ndarray, values: np.ndarray, limit: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` points for drawing only, keeping each bucket's min and max.

    Spikes and NaN steps must survive: a plain stride would drop the very
    point a finding is about. Analysis never sees this.
    """
    if len(steps) <= limit:
        return steps, values
    buckets = np.array_split(np.arange(len(steps)), limit // 2)
    keep: list[int] = []
    for bucket in buckets:
        chunk = values[bucket]
        finite = np.isfinite(chunk)
        if not finite.all():
            keep.append(int(bucket[np.argmin(finite)]))
        if finite.any():
            idx = np.where(finite)[0]
            keep.append(int(bucket[idx[np.argmin(chunk[idx])]]))
            keep.append(int(bucket[idx[np.argmax(chunk[idx])]]))
    order = np.unique(np.array(keep))
    return steps[order], values[order]


def message_figure(text: str, size: tuple[float, float] = (6.4, 1.2)) -> Figure:
    """A figure that says why there is nothing to draw, so every finding still has an image."""
    figure = new_figure(size)
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center", color=COLORS["muted"], wrap=True)
    return figure


def mark_step(axes: Any, step: float | None, label: str, color: str = COLORS["bad"]) -> None:
    """A vertical line with a label at the step a finding points to."""
    if step is None:
        return
    axes.axvline(step, color=color, linestyle="--", linewidth=1)
    axes.annotate(
        label,
        xy=(step, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(3, -10),
        textcoords="offset points",
        color=color,
        fontsize=7,
        ha="left",
    )


def log_scale_if_wide(axes: Any, values: np.ndarray) -> None:
    """Use a log y axis when positive values span more than two decades."""
    finite = values[np.isfinite(values)]
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 100:
        axes.set_yscale("log")
