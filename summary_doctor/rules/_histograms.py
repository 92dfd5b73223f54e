"""Shared helpers of the histogram rules: what a tag holds, and statistics from buckets.

Users name their histograms as they like (``fc1.weight/auto`` from
SummaryCollector, ``grad/fc1.weight``, ``fc1.weight.grad``, ``act/relu1``,
``relu1_out``...), so rules classify tags by pattern instead of assuming one
naming style. Histogram statistics (count, min, max, sum, NaN/Inf counts) are
exact; everything else (spread, norm, zero share) is estimated from the
buckets, assuming values spread uniformly inside a bucket. Buckets are decoded
only for the rows a rule asks about.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

import numpy as np
import pandas as pd

from summary_doctor.reader.derived import per_run
from summary_doctor.reader.run import Buckets, Run
from summary_doctor.rules._bucket_stats import STAT_COLUMNS, abs_mean_per_bucket, chunks, table_stats
from summary_doctor.rules._series import CONVERGED_RATIO, loss_curve, remaining, start_value, tail_window
from summary_doctor.rules.base import Context
from summary_doctor.rules.tags import find_tag


class TagKind(str, Enum):
    """What a histogram or tensor tag records."""

    WEIGHT = "weight"
    OFFSET = "offset"  # biases, BatchNorm beta and moving_mean: zero at init by design
    SCALE = "scale"  # BatchNorm gamma and moving_variance: ones at init by design
    GRADIENT = "gradient"
    ACTIVATION = "activation"
    OTHER = "other"


_SUFFIX = re.compile(r"/(auto|histogram|tensor)$", re.IGNORECASE)
_GRAD_AFFIX = re.compile(
    r"^(grads?|gradients?|d)[/_.:]|[/_.:](grads?|gradients?)$|^(grads?|gradients?)$", re.IGNORECASE
)
_GRAD_WORD = re.compile(r"(^|[/_.:])(grads?|gradients?)([/_.:]|$)", re.IGNORECASE)
_OFFSET = re.compile(r"(^|[/_.])(bias|biases|beta|offset|moving_mean|running_mean|mean)$", re.IGNORECASE)
_SCALE = re.compile(r"(^|[/_.])(gamma|moving_variance|running_var|variance|scale)$", re.IGNORECASE)
_WEIGHT = re.compile(r"(^|[/_.])(weight|weights|kernel|w|embedding_table|embedding)$", re.IGNORECASE)
# A user's own grouping such as ``weights/dense1`` or ``params/conv1``.
_WEIGHT_PREFIX = re.compile(r"^(weights?|params?|parameters?)[/_.:]", re.IGNORECASE)
_ACTIVATION = re.compile(
    r"(^|[/_.])(act|acts|activation|activations|relu\d*|relu6|leakyrelu|gelu|sigmoid|tanh|softmax|"
    r"out|output|outputs|hidden|feature|features)([/_.\d]|$)|_out$",
    re.IGNORECASE,
)
ACTIVATION_FUNCTIONS = ("relu", "sigmoid", "tanh")


def base_name(tag: str) -> str:
    """The tag without SummaryCollector's ``/auto`` (or a plugin) suffix."""
    return _SUFFIX.sub("", tag)


def gradient_parameter(tag: str) -> str | None:
    """The parameter a gradient tag is about (``grad/fc1.weight`` -> ``fc1.weight``), or None."""
    name = base_name(tag)
    if not _GRAD_WORD.search(name):
        return None
    stripped = _GRAD_AFFIX.sub("", name).strip("/_.:")
    return stripped or None


def _parameter_kind(name: str) -> TagKind | None:
    if _OFFSET.search(name):
        return TagKind.OFFSET
    if _SCALE.search(name):
        return TagKind.SCALE
    if _WEIGHT.search(name) or _WEIGHT_PREFIX.search(name):
        return TagKind.WEIGHT
    return None


def classify_tag(tag: str, parameters: Iterable[str] = ()) -> TagKind:
    """The kind of one tag; ``parameters`` (graph parameter names) resolve ambiguous names."""
    name = base_name(tag)
    if gradient_parameter(tag) is not None:
        return TagKind.GRADIENT
    kind = _parameter_kind(name)
    if kind is not None:
        return kind
    if name in set(parameters):
        return TagKind.WEIGHT
    if _ACTIVATION.search(name):
        return TagKind.ACTIVATION
    return TagKind.OTHER


def activation_function(tag: str) -> str | None:
    """``relu``, ``sigmoid`` or ``tanh`` when the tag name says so, else None."""
    name = base_name(tag).lower()
    return next((f for f in ACTIVATION_FUNCTIONS if f in name), None)


@per_run
def graph_parameters(run: Run) -> pd.DataFrame:
    """The graph's parameters (name, shape), optimizer state (``moment1.*``...) left out."""
    graph = run.graph
    if graph is None:
        return pd.DataFrame({"name": pd.Series([], dtype=object), "shape": pd.Series([], dtype=object)})
    params = graph.parameters
    state = params["name"].str.match(r"(moments?\d*|accum|mean_grad|mean_square|v|m)\.", na=False)
    return params.loc[~state, ["name", "shape"]].reset_index(drop=True)


def fan_in(shape: tuple[int, ...] | None) -> int | None:
    """Inputs per output unit: ``in`` of a Dense (out, in), ``in*kh*kw`` of a conv; None for 1-D."""
    if not shape or len(shape) < 2:
        return None
    return int(np.prod(shape[1:]))


@per_run
def tag_table(run: Run, frame: str = "histograms") -> pd.DataFrame:
    """One row per tag: tag, name, kind, parameter (for gradients), order (layer order).

    Layer order is the graph's parameter order (input side first); tags whose
    parameter is not in the graph follow in order of first appearance.
    Computed once per run and frame (every histogram rule asks).
    """
    tags = recorded_tags(run, frame)
    params = graph_parameters(run)
    names = params["name"].tolist()
    known = frozenset(names)
    position = {name: i for i, name in enumerate(names)}
    shapes = dict(zip(names, params["shape"].tolist(), strict=True))
    records = []
    for i, tag in enumerate(tags):
        kind = classify_tag(tag, known)
        parameter = _parameter_of(tag, kind)
        order = position.get(parameter, len(names) + i) if parameter else len(names) + i
        records.append((tag, base_name(tag), kind.value, parameter, order, fan_in(shapes.get(parameter))))
    records.sort(key=lambda record: record[4])  # stable: tags of one parameter keep their order
    # built column by column with fixed dtypes (the same when there is no tag, so callers can use .str and
    # compare kinds on an empty table); one constructor instead of a column at a time: every rule needs it
    columns = list(zip(*records, strict=True)) or [()] * 6
    return pd.DataFrame(
        {
            name: np.array(values, dtype=dtype)
            for name, values, dtype in zip(
                ("tag", "name", "kind", "parameter", "order", "fan_in"),
                columns,
                (object, object, object, object, np.int64, object),
                strict=True,
            )
        }
    )


def _parameter_of(tag: str, kind: TagKind) -> str | None:
    if kind is TagKind.GRADIENT:
        return gradient_parameter(tag)
    if kind in (TagKind.WEIGHT, TagKind.OFFSET, TagKind.SCALE):
        return base_name(tag)
    return None


@per_run
def rows_of_kind(run: Run, *kinds: TagKind, frame: str = "histograms") -> pd.DataFrame:
    """Current rows of ``frame`` whose tag is one of ``kinds``, with tag-table columns, by tag then step."""
    rows = _annotated_rows(run, frame)
    wanted = {k.value for k in kinds}
    chosen = np.fromiter((kind in wanted for kind in rows["kind"].tolist()), dtype=bool, count=len(rows))
    return rows.iloc[np.flatnonzero(chosen)]


@per_run
def _annotated_rows(run: Run, frame: str) -> pd.DataFrame:
    """Every current row of ``frame`` with its tag-table columns, by layer order then step.

    Built once per run and frame; each :func:`rows_of_kind` is then one
    filter (a stable sort keeps the same order on any subset of kinds).
    """
    table = tag_table(run, frame)
    position = {tag: i for i, tag in enumerate(table["tag"].tolist())}
    rows = run.current(frame)
    at = np.fromiter((position[tag] for tag in rows["tag"].tolist()), dtype=np.int64, count=len(rows))
    ordered = np.lexsort((rows["step"].to_numpy(), table["order"].to_numpy()[at]))  # by order, then step; stable
    # the tag table's columns on each row by numpy takes, added in one assign
    extra = {column: table[column].to_numpy()[at[ordered]] for column in table.columns if column != "tag"}
    return rows.iloc[ordered].assign(**extra)


@per_run
def recorded_tags(run: Run, frame: str) -> list[str]:
    """The tags of the current rows of ``frame`` in order of first appearance."""
    return pd.unique(run.current(frame)["tag"].to_numpy()).tolist()


# --- statistics from buckets ---------------------------------------------------------------


def _columns(buckets: Buckets | pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """left, width and count as float arrays, from :class:`Buckets` or a buckets DataFrame."""
    return (
        np.asarray(buckets["left"] if isinstance(buckets, pd.DataFrame) else buckets.left, dtype=float),
        np.asarray(buckets["width"] if isinstance(buckets, pd.DataFrame) else buckets.width, dtype=float),
        np.asarray(buckets["count"] if isinstance(buckets, pd.DataFrame) else buckets.count, dtype=float),
    )


def bucket_stats(buckets: Buckets | pd.DataFrame, mean: float | None = None) -> dict[str, float]:
    """Spread, mean |x|, L2 norm, zero share (upper bound) and share <= 0 of one histogram.

    ``std`` is the spread of bucket centres around ``mean`` plus the width²/12
    of values uniform inside a bucket; ``zero_fraction`` counts the whole
    bucket containing 0 (an upper bound: a histogram cannot tell 0 from 1e-9);
    ``nonpositive`` counts buckets ending at or below 0 plus that bucket, also
    an upper bound. ``l2`` is AUTOTRAINER's norm, ``sqrt(sum count*centre²)``.
    """
    left, width, counts = _columns(buckets)
    total = counts.sum()
    if total <= 0:
        return {
            "std": math.nan,
            "abs_mean": math.nan,
            "l2": math.nan,
            "zero_fraction": math.nan,
            "nonpositive": math.nan,
        }
    right = left + width
    centre = left + width / 2
    centre_mean = float((counts * centre).sum() / total) if mean is None or not math.isfinite(mean) else mean
    variance = (counts * ((centre - centre_mean) ** 2 + width**2 / 12)).sum() / total
    holds_zero = (left <= 0) & ((right > 0) | ((right == 0) & (np.arange(len(left)) == len(left) - 1)))
    holds_zero |= (width == 0) & (left == 0)
    return {
        "std": float(math.sqrt(max(variance, 0.0))),
        "abs_mean": float((counts * abs_mean_per_bucket(left, right)).sum() / total),
        "l2": float(math.sqrt((counts * centre**2).sum())),
        "zero_fraction": float(counts[holds_zero].sum() / total),
        "nonpositive": float(counts[(right <= 0) | holds_zero].sum() / total),
    }


def with_bucket_stats(run: Run, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (histogram rows) plus the :func:`bucket_stats` columns, decoding only these rows.

    A histogram with min == max needs no buckets: its spread is 0 and every
    statistic follows from the single value. Statistics are computed for many
    rows at once (vectorised, the same numbers as :func:`bucket_stats`) and
    kept per run, so rules asking again decode nothing.
    """
    stats = histogram_stats(run, rows.index)
    return pd.concat([rows, pd.DataFrame(stats, index=rows.index, columns=list(STAT_COLUMNS))], axis=1)


STATS_CHUNK_BYTES = 4 * 2**20  # encoded bytes decoded at once: bounds the memory of a large run


def histogram_stats(run: Run, index: pd.Index) -> np.ndarray:
    """The :func:`with_bucket_stats` columns of histogram rows ``index`` as an (n, 5) array, cached per run."""
    frame = run.histograms
    cache = run.derived.get("bucket_stats")
    if cache is None or len(cache[0]) != len(frame):
        cache = run.derived["bucket_stats"] = (np.zeros(len(frame), dtype=bool), np.full((len(frame), 5), np.nan))
    done, values = cache
    positions = frame.index.get_indexer(index)
    missing = np.unique(positions[~done[positions]])
    if len(missing):
        values[missing] = _compute_stats(run, frame.iloc[missing])
        done[missing] = True
    return values[positions]


def _compute_stats(run: Run, rows: pd.DataFrame) -> np.ndarray:
    n = (rows["count"] - rows["nan_count"] - rows["pos_inf_count"] - rows["neg_inf_count"]).to_numpy()
    low, high = rows["min"].to_numpy(dtype=float), rows["max"].to_numpy(dtype=float)
    single = (n > 0) & (low == high) & np.isfinite(low)
    out = np.empty((len(rows), 5))
    value = low[single]
    out[single] = np.column_stack(
        [np.zeros(len(value)), np.abs(value), np.abs(value) * np.sqrt(n[single].astype(float)), value == 0, value <= 0]
    )
    rest = np.flatnonzero(~single)
    sizes = rows["encoded"].map(len).to_numpy()[rest]
    means = rows["mean"].to_numpy(dtype=float)
    for chunk in chunks(sizes, STATS_CHUNK_BYTES):
        part = rest[chunk]
        out[part] = table_stats(run.bucket_table(rows.index[part]), means[part])
    return out


def cdf_distance(a: Buckets | pd.DataFrame, b: Buckets | pd.DataFrame) -> float:
    """Wasserstein-1 distance between two histograms (values uniform inside buckets).

    It is the smallest mean |w' - w| over all pairings of the two value sets,
    so it is a lower bound on the mean element-wise change between the steps.
    """
    a, b = _columns(a), _columns(b)
    grid = np.union1d(_edges(a), _edges(b))
    if len(grid) < 2:
        return 0.0
    gap = np.abs(_cdf(a, grid) - _cdf(b, grid))
    return float(((gap[1:] + gap[:-1]) / 2 * np.diff(grid)).sum())


def _edges(columns: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    left, width, _ = columns
    return np.concatenate([left, left + width])


def _cdf(columns: tuple[np.ndarray, np.ndarray, np.ndarray], grid: np.ndarray) -> np.ndarray:
    """Share of values <= each grid point, linear inside each bucket."""
    left, width, counts = columns
    total = counts.sum() or 1.0
    right = left + width
    if len(left) and (width > 0).all() and (left[1:] >= right[:-1]).all():
        # Ordered, non-overlapping buckets (what MindSpore writes): the CDF is piecewise linear
        # through the bucket edges and flat in any gap, so interpolation gives it exactly.
        cumulative = np.cumsum(counts) / total
        xs = np.column_stack([left, right]).ravel()
        ys = np.column_stack([cumulative - counts / total, cumulative]).ravel()
        return np.interp(grid, xs, ys, left=0.0, right=1.0)
    left, width = left[:, None], width[:, None]
    safe = np.where(width > 0, width, 1.0)
    part = np.where(width > 0, np.clip((grid[None, :] - left) / safe, 0, 1), (grid[None, :] >= left).astype(float))
    return (counts[:, None] * part).sum(axis=0) / total


# --- the outcome gate ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """Whether training went badly, by the loss curve: ``bad`` is None when no loss was recorded."""

    bad: bool | None
    reason: str
    tag: str | None = None


def loss_outcome(run: Run, context: Context, *, min_drop: float = 1 - CONVERGED_RATIO) -> Outcome:
    """Bad when the loss turns NaN/Inf, or its end is not below ``1 - min_drop`` of its start.

    AUTOTRAINER reports internal symptoms only when training has not
    converged; with the loss alone, "not converged" is read as "did not even
    halve" (``min_drop=0.5``). The loss is read the way every loss rule reads
    it (``_series.Curve``): start = the higher of the first record and the
    first window's median, end = the last window's median, both on the level
    ``ln(loss + 5% of the start)``, so a run that converged to 0.1% of its
    start is converged however its last tiny values wobble.
    """
    tag = find_tag(run, "loss", context)
    c = loss_curve(run, context)
    if tag is None or c is None or (len(c) == 0 and c.nonfinite_step is None):
        return Outcome(None, "no training-loss curve recorded")
    if c.nonfinite_step is not None:
        values = run.scalar_series(tag)
        first_bad = values[values.index == c.nonfinite_step].iloc[0]
        return Outcome(True, f"the loss is {first_bad} at step {c.nonfinite_step}", tag)
    if len(c) < 3 or c.floor <= 0:
        return Outcome(None, "the loss curve is too short or not positive to judge convergence", tag)
    drop = 1 - remaining(c)
    start, end = start_value(c), float(np.median(c.values[-max(1, tail_window(c)) :]))
    verdict = "not converging" if drop < min_drop else "converging"
    return Outcome(drop < min_drop, f"loss {verdict}: {start:.4g} -> {end:.4g} ({drop:+.0%} drop)", tag)


# --- small pieces every histogram rule uses --------------------------------------------------

ENABLE_WEIGHTS = "SummaryCollector(..., collect_specified_data={'histogram_regular': '.*'})"
ENABLE_GRADIENTS = (
    "record gradients: in a custom TrainOneStepCell, ops.HistogramSummary()('grad/' + name, g) for each parameter"
)
ENABLE_ACTIVATIONS = "record activations: in construct(), ops.HistogramSummary()('act/relu1', x) after each activation"


@per_run
def has_kind(run: Run, *kinds: TagKind) -> bool:
    """Whether any histogram or tensor tag of ``kinds`` was recorded."""
    wanted = {k.value for k in kinds}
    return any(not wanted.isdisjoint(tag_table(run, frame)["kind"].tolist()) for frame in ("histograms", "tensors"))


def names(tags: Iterable[str]) -> list[str]:
    """Display names: tags without ``/auto``."""
    return [base_name(t) for t in tags]


def judgment_steps(steps: pd.Series, point: float = 0.3) -> pd.Series:
    """Steps from AUTOTRAINER's judgment point on (``judgment_point=0.3`` of the run)."""
    lo, hi = steps.min(), steps.max()
    return steps[steps >= lo + point * (hi - lo)]


def tensor_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """The :func:`bucket_stats` columns computed exactly from tensor values."""
    stats = []
    for value in rows["value"]:
        array = np.asarray(value, dtype=float).ravel()
        finite = array[np.isfinite(array)]
        if finite.size == 0:
            stats.append(dict.fromkeys(("std", "abs_mean", "l2", "zero_fraction", "nonpositive"), math.nan))
            continue
        stats.append(
            {
                "std": float(finite.std()),
                "abs_mean": float(np.abs(finite).mean()),
                "l2": float(np.sqrt((finite**2).sum())),
                "zero_fraction": float((finite == 0).mean()),
                "nonpositive": float((finite <= 0).mean()),
            }
        )
    columns = ["std", "abs_mean", "l2", "zero_fraction", "nonpositive"]
    # the tensors frame has its own std and zero_fraction: replaced, not doubled (a doubled column broke concat)
    rows = rows.drop(columns=[c for c in columns if c in rows.columns])
    return pd.concat([rows, pd.DataFrame(stats, index=rows.index, columns=columns)], axis=1)


def stats_of_kind(
    run: Run, *kinds: TagKind, steps: Iterable[int] | None = None, first_only: bool = False
) -> pd.DataFrame:
    """Rows of ``kinds`` from histograms and tensors, with spread/norm/zero-share columns.

    Columns: tag, name, kind, parameter, order, fan_in, step, min, max,
    nonfinite, count, exact, and the :func:`bucket_stats` columns. A tag
    recorded both ways is taken from tensors (exact). ``steps`` limits the
    rows (and so the buckets decoded).
    """
    tensors = rows_of_kind(run, *kinds, frame="tensors")
    hist = rows_of_kind(run, *kinds)
    hist = hist[~hist["name"].isin(set(tensors["name"]))]
    if steps is not None:
        wanted = set(steps)
        tensors, hist = tensors[tensors["step"].isin(wanted)], hist[hist["step"].isin(wanted)]
    if first_only:
        tensors, hist = _first_of_each_tag(tensors), _first_of_each_tag(hist)
    parts = []  # an empty side is left out before its statistics are computed (most runs record no tensors)
    if not hist.empty:
        nonfinite = hist["nan_count"] + hist["pos_inf_count"] + hist["neg_inf_count"]
        parts.append(with_bucket_stats(run, hist).assign(nonfinite=nonfinite, exact=False))
    if not tensors.empty:
        parts.append(tensor_stats(tensors).assign(count=tensors["size"], exact=True))
    keep = [
        *tag_table(run).columns,
        "step",
        "min",
        "max",
        "nonfinite",
        "count",
        "exact",
        "std",
        "abs_mean",
        "l2",
        "zero_fraction",
        "nonpositive",
    ]
    frames = [f[keep] for f in parts]
    if not frames:
        return pd.DataFrame(columns=keep)
    return pd.concat(frames).sort_values(["order", "step"], kind="stable")


def _first_of_each_tag(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows at each tag's first step (all of them when a step was recorded twice)."""
    if rows.empty:
        return rows
    codes, tags = pd.factorize(rows["tag"])
    steps = rows["step"].to_numpy()
    first = np.full(len(tags), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, steps)
    return rows[steps == first[codes]]
