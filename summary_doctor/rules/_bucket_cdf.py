"""CDF distances between consecutive histograms of a table, bit for bit ``cdf_distance``.

``cdf_distance`` (in ``_histograms``) defines the number: the trapezoid of
|F_a - F_b| over the union of both histograms' bucket edges, where ``_cdf``
evaluates each CDF either as ``np.interp`` does (ordered buckets) or as a
clipped sum over buckets (buckets overlapping by a rounding error). Here
every histogram's CDF is prepared once at its own edges ("knots"), each pair
of consecutive histograms is merged row by row, and every value is taken
with the same floating-point steps as the scalar code:

* an ``np.interp`` value is the value at the last equal knot, else
  ``slope * (x - x_j) + y_j``;
* a clipped sum adds the whole buckets first (exact integers) and then the
  few buckets that hold ``x``, in bucket order;
* a pair's trapezoid terms are summed over rows of equal length, as
  ``sum()`` of one row does.

Histograms that fit neither shape (zero-width or unordered buckets) are left
to the one-histogram helper: rare, and always right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from summary_doctor.reader.buckets import BucketTable, _ranges
from summary_doctor.rules._bucket_stats import by_size

INTERP, CLIPPED, SCALAR = 0, 1, 2


@dataclass
class Curves:
    """Each histogram's CDF at its own distinct bucket edges ("knots"), computed once per histogram.

    Histogram ``i`` owns knots ``start[i]:start[i] + size[i]``. ``kind`` says how
    ``_cdf`` evaluates it: INTERP (ordered buckets, ``np.interp``), CLIPPED
    (buckets overlapping by a rounding error: a clipped sum over buckets) or
    SCALAR (anything else, left to the one-histogram helper). For a point
    just right of a knot, ``slope`` (INTERP) or ``window`` (CLIPPED: the
    buckets it falls in) says how to get its value.
    """

    table: BucketTable
    kind: np.ndarray
    start: np.ndarray
    size: np.ndarray
    knots: np.ndarray
    value: np.ndarray
    slope: np.ndarray
    window: np.ndarray
    total: np.ndarray
    before: np.ndarray
    # CLIPPED, just right of each knot: the exact count below the window, and its one bucket (if one)
    base: np.ndarray | None = None
    one: tuple[np.ndarray, ...] | None = None  # count, left, width of the window's bucket (0, 0, 1 if none)
    wide: np.ndarray | None = None  # the window holds more than one bucket


def curves(table: BucketTable) -> Curves:
    """The knots of every histogram's CDF with the CDF there, and how to evaluate it between knots."""
    m = len(table)
    kind = np.full(m, SCALAR, dtype=np.int8)
    total = np.ones(m)
    before = np.zeros(len(table.count))  # per bucket: the counts of the buckets before it, exactly
    groups = []
    for group, left, width, count in by_size(table):
        right = left + width
        finite = np.isfinite(left).all(axis=1) & np.isfinite(width).all(axis=1) & np.isfinite(right).all(axis=1)
        usable = finite & (width > 0).all(axis=1) & (left.shape[1] > 0)
        ordered = usable & (left[:, 1:] >= right[:, :-1]).all(axis=1)
        monotone = (np.diff(left, axis=1) >= 0).all(axis=1) & (np.diff(right, axis=1) >= 0).all(axis=1)
        clipped = usable & ~ordered & monotone
        clipped |= left.shape[1] == 0
        kind[group[ordered]], kind[group[clipped]] = INTERP, CLIPPED
        sums = count.sum(axis=1)
        total[group] = np.where(sums == 0, 1.0, sums)
        cumulative = np.cumsum(count, axis=1)
        before[(table.offsets[group][:, None] + np.arange(left.shape[1])).ravel()] = (cumulative - count).ravel()
        groups.append(_interp_knots(group[ordered], left[ordered], right[ordered], count[ordered]))
        groups.append(_clipped_knots(group[clipped], left[clipped], right[clipped]))
    return _assemble(table, kind, total, before, groups)


def _interp_knots(group, left, right, count):
    """Distinct edges of ordered histograms, ``np.interp``'s value there and its slope to the next edge."""
    k, n = left.shape
    if not k * n:
        return (
            group,
            np.zeros(k, dtype=np.int64),
            np.zeros(0),
            np.zeros(0),
            np.zeros(0),
            np.zeros((0, 2), dtype=np.int64),
        )
    total = count.sum(axis=1)
    total = np.where(total == 0, 1.0, total)[:, None]
    cumulative = np.cumsum(count, axis=1) / total
    xs, ys = np.empty((k, 2 * n)), np.empty((k, 2 * n))
    xs[:, 0::2], xs[:, 1::2] = left, right
    ys[:, 0::2], ys[:, 1::2] = cumulative - count / total, cumulative
    xs, ys = xs.ravel(), ys.ravel()
    last = np.ones(len(xs), dtype=bool)
    last[:-1] = xs[1:] != xs[:-1]
    last[2 * n - 1 :: 2 * n] = True
    j = np.flatnonzero(last)
    after = np.minimum(j + 1, len(xs) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (ys[after] - ys[j]) / (xs[after] - xs[j])
    sizes = last.reshape(k, 2 * n).sum(axis=1)
    return group, sizes, xs[j], ys[j], slope, np.zeros((len(j), 2), dtype=np.int64)


def _clipped_knots(group, left, right):
    """Distinct edges of histograms whose buckets overlap by rounding, and the buckets around each.

    For a point x, buckets ending below x count whole, buckets starting at or
    after x count nothing, and the window between them is clipped: so the
    value at a knot needs (#right < x, #left < x), a point just right of it
    (#right <= x, #left <= x).
    """
    k, n = left.shape
    if not k * n:
        empty = np.zeros((0, 2), dtype=np.int64)
        return group, np.zeros(k, dtype=np.int64), np.zeros(0), empty, None, empty
    ordered, is_left = _sorted_edges(left, right)
    last = np.ones(k * 2 * n, dtype=bool)
    last[:-1] = ordered[1:] != ordered[:-1]
    last[2 * n - 1 :: 2 * n] = True
    j = np.flatnonzero(last)
    first = np.empty_like(j)
    first[0], first[1:] = 0, j[:-1] + 1
    row_start = (j // (2 * n)) * (2 * n)
    first = np.maximum(first, row_start)
    lefts = np.cumsum(is_left.reshape(k, 2 * n), axis=1).ravel()
    rights = (np.arange(1, 2 * n + 1)[None, :] - lefts.reshape(k, 2 * n)).ravel()
    at = np.column_stack([rights[first] - ~is_left[first], lefts[first] - is_left[first]])
    after = np.column_stack([rights[j], lefts[j]])
    return group, last.reshape(k, 2 * n).sum(axis=1), ordered[j], at, None, after


def _sorted_edges(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's lefts and rights in ascending order (flattened), and which of them are lefts.

    Interleaving left_i, right_i is sorted but where a bucket ends one rounding
    error after the next begins: swapping those neighbours sorts it; any row
    still unsorted is sorted in full.
    """
    k, n = left.shape
    edges, is_left = np.empty((k, 2 * n)), np.zeros((k, 2 * n), dtype=bool)
    edges[:, 0::2], edges[:, 1::2], is_left[:, 0::2] = left, right, True
    swap = right[:, :-1] > left[:, 1:]
    odd = edges[:, 1:-1:2]
    even = edges[:, 2::2]
    low, high = np.where(swap, even, odd), np.where(swap, odd, even)
    edges[:, 1:-1:2], edges[:, 2::2] = low, high
    is_left[:, 1:-1:2], is_left[:, 2::2] = swap, ~swap
    unsorted = (np.diff(edges, axis=1) < 0).any(axis=1)  # the order inside a run of equal edges never matters
    if unsorted.any():
        rows = np.concatenate([left[unsorted], right[unsorted]], axis=1)
        order = np.argsort(rows, axis=1, kind="stable")
        edges[unsorted] = np.take_along_axis(rows, order, axis=1)
        is_left[unsorted] = order < n
    return edges.ravel(), is_left.ravel()


def _assemble(table, kind, total, before, groups) -> Curves:
    size = np.zeros(len(table), dtype=np.int64)
    for group, sizes, *_ in groups:
        size[group] = sizes
    start = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    count = int(size.sum())
    knots, value, slope = np.zeros(count), np.zeros(count), np.zeros(count)
    window = np.zeros((count, 2), dtype=np.int64)
    cv = Curves(table, kind, start, size, knots, value, slope, window, total, before)
    for (group, sizes, x, y, s, w), clipped in zip(groups, [False, True] * (len(groups) // 2), strict=True):
        where = _ranges(start[group], sizes)
        knots[where] = x
        if clipped:
            owner = np.repeat(group, sizes)
            value[where] = clipped_values(cv, owner, x, y)
        else:
            value[where], slope[where] = y, s
        window[where] = w
    _window_buckets(cv)
    return cv


def _window_buckets(cv: Curves) -> None:
    """Per knot of a CLIPPED histogram, what the clipped sum just right of it needs: a few gathers a point."""
    table = cv.table
    count = len(cv.knots)
    cv.base, cv.wide = np.zeros(count), np.zeros(count, dtype=bool)
    cv.one = (np.zeros(count), np.zeros(count), np.ones(count))
    histograms = np.flatnonzero((cv.kind == CLIPPED) & (cv.size > 0))
    knots = _ranges(cv.start[histograms], cv.size[histograms])
    if not len(knots):
        return
    owner = np.repeat(histograms, cv.size[histograms])
    first, end = cv.window[knots, 0], cv.window[knots, 1]
    n = table.sizes[owner]
    bucket = table.offsets[owner] + np.minimum(first, n - 1)
    last = table.offsets[owner] + n - 1
    cv.base[knots] = np.where(first < n, cv.before[bucket], cv.before[last] + table.count[last])
    one = end - first == 1
    cv.one[0][knots] = np.where(one, table.count[bucket], 0)
    cv.one[1][knots] = np.where(one, table.left[bucket], 0.0)
    cv.one[2][knots] = np.where(one, table.width[bucket], 1.0)
    cv.wide[knots] = end - first > 1


def clipped_values(cv: Curves, owner: np.ndarray, x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """``_cdf``'s clipped sum at points ``x`` of histograms ``owner``: whole buckets, then the window in order."""
    table = cv.table
    base = table.offsets[owner]
    first, end = window[:, 0], window[:, 1]
    sizes = table.sizes[owner]
    inside = first < sizes
    acc = np.where(inside, cv.before[np.minimum(base + first, len(cv.before) - 1)], 0.0)
    whole = ~inside & (sizes > 0)
    acc[whole] = cv.before[base[whole] + sizes[whole] - 1] + table.count[base[whole] + sizes[whole] - 1]
    for d in range(int((end - first).max(initial=0))):
        active = np.flatnonzero(end - first > d)
        i = base[active] + first[active] + d
        part = np.clip((x[active] - table.left[i]) / table.width[i], 0, 1)
        acc[active] = acc[active] + table.count[i].astype(float) * part
    return acc / cv.total[owner]


def _foreign_values(cv: Curves, owner: np.ndarray, x: np.ndarray, rank: np.ndarray, equal: np.ndarray) -> np.ndarray:
    """CDF of histograms ``owner`` at points ``x``, given how many of their knots are <= x (``rank``)."""
    out = np.zeros(len(x))
    if not len(cv.knots):
        return out
    k = cv.start[owner] + rank - 1
    at_knot = np.flatnonzero(equal & (rank > 0))
    out[at_knot] = cv.value[k[at_knot]]
    between = (rank > 0) & ~equal
    interp = cv.kind[owner] == INTERP
    beyond = between & interp & (rank == cv.size[owner])
    out[beyond] = 1.0
    inside = np.flatnonzero(between & interp & ~beyond)
    j = k[inside]
    out[inside] = cv.slope[j] * (x[inside] - cv.knots[j]) + cv.value[j]
    clipped = np.flatnonzero(between & ~interp)
    j = k[clipped]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        part = np.clip((x[clipped] - cv.one[1][j]) / cv.one[2][j], 0, 1)
    out[clipped] = (cv.base[j] + cv.one[0][j] * part) / cv.total[owner[clipped]]
    wide = clipped[cv.wide[j]]
    if len(wide):
        out[wide] = clipped_values(cv, owner[wide], x[wide], cv.window[k[wide]])
    return out


def consecutive_distances(cv: Curves, first: np.ndarray, chunk: int = 512) -> np.ndarray:
    """``cdf_distance`` between histogram ``i`` and ``i + 1`` of the table, for each ``i`` in ``first``."""
    out = np.zeros(len(first))
    scalar = (cv.kind[first] == SCALAR) | (cv.kind[first + 1] == SCALAR)
    for i in np.flatnonzero(scalar):
        out[i] = _scalar_distance(cv.table, first[i])
    vector = np.flatnonzero(~scalar)
    for begin in range(0, len(vector), chunk):
        part = vector[begin : begin + chunk]
        out[part] = _pair_distances(cv, first[part], first[part] + 1)
    return out


def _scalar_distance(table: BucketTable, i: int) -> float:
    from summary_doctor.reader.run import Buckets
    from summary_doctor.rules._histograms import cdf_distance

    return cdf_distance(Buckets(*table.row(i)), Buckets(*table.row(i + 1)))


def _padded(cv: Curves, hist: np.ndarray, width: int) -> np.ndarray:
    rows = np.full(len(hist) * width, np.inf)
    size = cv.size[hist]
    rows[_ranges(np.arange(len(hist)) * width, size)] = cv.knots[_ranges(cv.start[hist], size)]
    return rows.reshape(len(hist), width)


def _pair_distances(cv: Curves, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Trapezoid of |F_a - F_b| over the union of both knot sets, for pairs of histograms."""
    width_a, width_b = int(cv.size[a].max(initial=0)), int(cv.size[b].max(initial=0))
    merged = np.concatenate([_padded(cv, a, width_a), _padded(cv, b, width_b)], axis=1)
    p, width = merged.shape
    order = np.argsort(merged, axis=1, kind="stable").ravel()
    base = np.repeat(np.arange(p) * width, width)
    position = np.empty(p * width, dtype=np.int64)
    position[base + order] = np.tile(np.arange(width), p)
    flat, ordered = merged.ravel(), merged.ravel()[base + order]
    # a's knots: b knots merged before them, and whether the next merged one is an equal b knot
    row_a = np.repeat(np.arange(p), cv.size[a])
    col_a = _ranges(np.zeros(p, dtype=np.int64), cv.size[a])
    at_a = row_a * width + col_a
    q_a, x_a = position[at_a], flat[at_a]
    nxt = row_a * width + np.minimum(q_a + 1, width - 1)
    equal_b = (ordered[nxt] == x_a) & (order[nxt] >= width_a) & (q_a + 1 < width)
    fb_at_a = _foreign_values(cv, b[row_a], x_a, q_a - col_a + equal_b, equal_b)
    fa_at_a = cv.value[cv.start[a][row_a] + col_a]
    # b's knots: a knots at or below them merged before them (ties put a first); equal ones are dropped
    row_b = np.repeat(np.arange(p), cv.size[b])
    col_b = _ranges(np.zeros(p, dtype=np.int64), cv.size[b])
    at_b = row_b * width + width_a + col_b
    q_b, x_b = position[at_b], flat[at_b]
    rank_a = q_b - col_b
    knot_a = np.minimum(cv.start[a][row_b] + np.maximum(rank_a - 1, 0), max(len(cv.knots) - 1, 0))
    equal_a = (rank_a > 0) & (cv.knots[knot_a] == x_b) if len(cv.knots) else np.zeros(len(x_b), dtype=bool)
    keep = ~equal_a
    row_b, q_b, x_b = row_b[keep], q_b[keep], x_b[keep]
    fa_at_b = _foreign_values(cv, a[row_b], x_b, rank_a[keep], equal_a[keep])
    fb_at_b = cv.value[cv.start[b][row_b] + col_b[keep]]
    slots = np.concatenate([row_a * width + q_a, row_b * width + q_b])
    x = np.concatenate([x_a, x_b])
    gap = np.abs(np.concatenate([fa_at_a - fb_at_a, fa_at_b - fb_at_b]))
    return _trapezoids(p, width, slots, x, gap)


def _trapezoids(p: int, width: int, slots: np.ndarray, x: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Per pair, ``((gap[1:] + gap[:-1]) / 2 * diff(x)).sum()`` over its grid points in merged order.

    ``slots`` is each point's place ``pair * width + merged position``.
    """
    where = np.full(p * width, -1, dtype=np.int64)
    where[slots] = np.arange(len(slots))
    order = where[where >= 0]
    row, x, gap = slots[order] // width, x[order], gap[order]
    terms = (gap[1:] + gap[:-1]) / 2 * np.diff(x)
    same = row[1:] == row[:-1]
    terms, owner = terms[same], row[1:][same]
    lengths = np.bincount(owner, minlength=p)
    return _segment_sums(terms, lengths)


def _segment_sums(terms: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``terms[start:start + n].sum()`` for consecutive segments of ``lengths``: numpy's own summation order."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out = np.zeros(len(lengths))
    for length in np.unique(lengths[lengths > 0]):
        segments = np.flatnonzero(lengths == length)
        out[segments] = terms[(starts[segments][:, None] + np.arange(length))].sum(axis=1)
    return out
