"""Compiled kernels (numba): update-ratio measures of weight-histogram pairs, straight from their bytes.

This module imports numba at its top and is itself imported only by
:mod:`summary_doctor.rules._pair_measures`, lazily, when a run is large
enough to repay numba's start-up; without numba the numpy route computes
the same numbers.

Every number equals the reference's bit for bit:

* buckets are read from the wire bytes as ``reader/buckets.py`` reads them
  (only the regular shape ``0a LEN 09 <left> 11 <width> 18 <count>`` chained
  from the first byte, then known statistics fields; anything else is left
  to protobuf by the caller);
* the distance is ``_histograms.cdf_distance``: the union of both
  histograms' edges (``np.union1d``), each CDF as ``_cdf`` takes it (the
  ``np.interp`` formula for ordered buckets, NaN fallbacks included, or the
  clipped sum added in bucket order), and the trapezoids added in numpy's
  pairwise order (``ndarray.sum``);
* mean|w| is ``_bucket_stats.abs_means``, also summed pairwise.

A pair whose buckets are irregular bytes, have non-finite edges, negative
counts, counts too large to add exactly in any order or more than
``MAX_BUCKETS`` buckets gets status
``FALLBACK``: the caller measures it with the numpy route. Only ``pair_measures``
(and ``decode``, for tests and the benchmark) are entry points, so loading
the cached machine code costs one lookup each; helpers are inlined.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK, FALLBACK = 0, 1
_EXACT_TOTAL = 2**53  # integer counts up to this total add exactly in any order
# numpy 1.x adds arrays longer than 8192 in buffered blocks, numpy 2 in one tree: sums that long (histograms
# of more than 2048 buckets: 4 edges a bucket in a pair's grid) are left to numpy itself
MAX_BUCKETS = 2048
_MAX_TAIL_FIELDS = 16
_inline = njit(nogil=True, error_model="numpy")


@_inline
def _varint_field(tag):
    return tag == 0x10 or tag == 0x18 or tag == 0x20 or tag == 0x40  # nan/+inf/-inf counts, count


@_inline
def _fixed64_field(tag):
    return tag == 0x29 or tag == 0x31 or tag == 0x39  # max, min, sum


@_inline
def _decode(data, doubles, start, end, left, width, count):
    """Buckets of one histogram (bytes ``start:end``) into ``left/width/count[:n]``; n, or -1 if irregular."""
    n = 0
    pos = start
    while pos < end and data[pos] == 0x0A:
        length = np.int64(data[pos + 1])
        if length < 20 or length > 29 or pos + 2 + length > end:
            return -1
        if data[pos + 2] != 0x09 or data[pos + 11] != 0x11 or data[pos + 20] != 0x18:
            return -1
        following = pos + 2 + length
        value = np.uint64(0)
        for k, at in enumerate(range(pos + 21, following)):
            byte = data[at]
            last = at == following - 1
            if last != (byte < 0x80) or (k == 9 and byte >= 2):
                return -1
            value |= np.uint64(byte & 0x7F) << np.uint64(7 * k)
        left[n] = doubles[pos + 3]
        width[n] = doubles[pos + 12]
        count[n] = np.int64(value)
        n += 1
        pos = following
    fields = 0
    while pos < end:
        if fields == _MAX_TAIL_FIELDS:
            return -1
        tag = data[pos]
        if _varint_field(tag):
            k = 0
            while k < 10 and data[pos + 1 + k] >= 0x80:
                k += 1
            if k == 10:
                return -1
            pos += 2 + k
        elif _fixed64_field(tag):
            pos += 9
        else:
            return -1
        fields += 1
    return n if pos == end else -1


@_inline
def _exact(left, width, count, n):
    """Finite edges and counts whose total adds exactly in any order: what the kernel computes bit for bit."""
    total = 0
    for i in range(n):
        right = left[i] + width[i]
        if not (np.isfinite(left[i]) and np.isfinite(width[i]) and np.isfinite(right)):
            return False
        if count[i] < 0 or count[i] > _EXACT_TOTAL:
            return False
        total += count[i]
        if total > _EXACT_TOTAL:
            return False
    return True


@_inline
def _block(a, lo, n):
    """numpy's pairwise summation of ``a[lo:lo + n]`` for n <= 128: eight accumulators, then the rest."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    m = n - (n % 8)
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@_inline
def _pairwise_sum(a, n, stack):
    """``a[:n].sum()`` as numpy adds a contiguous float64 array (blocks of 128 split in halves).

    numpy recurses; here the tree is walked with an explicit stack
    (``stack``: 64 x 4 floats), since numba cannot cache recursive functions.
    Each frame is (lo, n, state, left sum); state 0: left half pending,
    1: right half pending.
    """
    if n <= 128:
        return _block(a, 0, n)
    depth = 0
    stack[0, 0], stack[0, 1], stack[0, 2] = 0.0, float(n), 0.0
    carry = 0.0
    while True:
        lo, size, state = int(stack[depth, 0]), int(stack[depth, 1]), stack[depth, 2]
        half = size // 2
        half -= half % 8
        if size <= 128 or state == 2.0:
            carry = _block(a, lo, size) if size <= 128 else stack[depth, 3] + carry
            if depth == 0:
                return carry
            depth -= 1
            if stack[depth, 2] == 0.0:
                stack[depth, 3] = carry
            stack[depth, 2] += 1.0
            continue
        child_lo, child_size = (lo, half) if state == 0.0 else (lo + half, size - half)
        depth += 1
        stack[depth, 0], stack[depth, 1], stack[depth, 2] = float(child_lo), float(child_size), 0.0


@_inline
def _sorted_edges(left, width, n, out):
    """The histogram's lefts and rights in ascending order into ``out[:2n]``.

    Interleaved they are sorted but where buckets overlap by a rounding
    error: insertion sort; -1 when they turn out far from sorted (the
    caller leaves such a pair to the numpy route).
    """
    m = 2 * n
    for i in range(n):
        out[2 * i] = left[i]
        out[2 * i + 1] = left[i] + width[i]
    moves = 0
    for i in range(1, m):
        v = out[i]
        j = i - 1
        while j >= 0 and out[j] > v:
            out[j + 1] = out[j]
            j -= 1
            moves += 1
        out[j + 1] = v
        if moves > 16 * m + 64:
            return -1
    return m


@_inline
def _union(ea, ma, eb, mb, grid):
    """``np.union1d`` of two sorted arrays into ``grid``: merged, equal values once; its length."""
    i = j = g = 0
    while i < ma or j < mb:
        if j >= mb or (i < ma and ea[i] <= eb[j]):
            v = ea[i]
            i += 1
        else:
            v = eb[j]
            j += 1
        if g == 0 or v != grid[g - 1]:
            grid[g] = v
            g += 1
    return g


@_inline
def _ordered(left, width, n):
    """``_cdf``'s test for ``np.interp``: buckets of positive width, each starting at or after the last's end."""
    if n == 0:
        return False
    for i in range(n):
        if not width[i] > 0:
            return False
    for i in range(1, n):  # noqa: SIM110  (a loop: numba compiles it without a generator)
        if not left[i] >= left[i - 1] + width[i - 1]:
            return False
    return True


@_inline
def _interp(left, width, count, n, total, grid, g, out, xs, ys):
    """``np.interp(grid, xs, ys, left=0, right=1)`` through the bucket edges, with numpy's formula."""
    cum = 0.0
    for i in range(n):
        c = float(count[i])
        cum += c
        cumulative = cum / total
        xs[2 * i], xs[2 * i + 1] = left[i], left[i] + width[i]
        ys[2 * i], ys[2 * i + 1] = cumulative - c / total, cumulative
    m = 2 * n
    j = 0
    for k in range(g):
        x = grid[k]
        if x < xs[0]:
            out[k] = 0.0
        elif x > xs[m - 1]:
            out[k] = 1.0
        else:
            while j + 1 < m and xs[j + 1] <= x:
                j += 1
            if j == m - 1 or xs[j] == x:
                out[k] = ys[j]
            else:
                slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
                v = slope * (x - xs[j]) + ys[j]
                if np.isnan(v):
                    v = slope * (x - xs[j + 1]) + ys[j + 1]
                    if np.isnan(v) and ys[j] == ys[j + 1]:
                        v = ys[j]
                out[k] = v


@_inline
def _clipped(left, width, count, n, total, grid, g, out):
    """Sum over buckets of count * clip((x - left) / width, 0, 1) (a step where width <= 0), in bucket order.

    Buckets from the first one on that are already whole at x stay whole
    as x grows: their counts are added once (integers: exactly); with
    sorted lefts, buckets starting after x add nothing and are skipped.
    """
    sorted_lefts = True
    for i in range(1, n):
        if left[i] < left[i - 1]:
            sorted_lefts = False
    full = 0
    whole = 0.0
    for k in range(g):
        x = grid[k]
        while full < n:
            w, lo = width[full], left[full]
            if not ((x - lo) / w >= 1.0 if w > 0 else x >= lo):
                break
            whole += float(count[full])
            full += 1
        s = whole
        started = full > 0
        for i in range(full, n):
            lo = left[i]
            if sorted_lefts and x < lo and i > full:
                break
            w = width[i]
            p = min(max((x - lo) / w, 0.0), 1.0) if w > 0 else (1.0 if x >= lo else 0.0)
            t = float(count[i]) * p
            s = s + t if started else t
            started = True
        out[k] = s / total


@_inline
def _cdf(left, width, count, n, grid, g, out, xs, ys):
    """``_histograms._cdf``: the share of values <= each grid point."""
    total = 0.0
    for i in range(n):
        total += float(count[i])
    if total == 0.0:
        total = 1.0
    if _ordered(left, width, n):
        _interp(left, width, count, n, total, grid, g, out, xs, ys)
    else:
        _clipped(left, width, count, n, total, grid, g, out)


@_inline
def _abs_mean(left, width, count, n, terms, stack):
    """``abs_means``: sum of count * mean|x| over buckets (pairwise) / total, NaN without values."""
    total = 0.0
    for i in range(n):
        right = left[i] + width[i]
        lo = left[i]
        c = float(count[i])
        total += c
        if lo * right < 0 and right > lo:
            terms[i] = c * ((lo * lo + right * right) / (2 * (right - lo)))
        else:
            terms[i] = c * (abs(lo + right) / 2)
    if not total > 0:
        return np.nan
    return _pairwise_sum(terms, n, stack) / total


@_inline
def _trapezoids(grid, g, fa, fb, stack):
    """``((gap[1:] + gap[:-1]) / 2 * np.diff(grid)).sum()`` with gap = |fa - fb|, the terms written over fa."""
    for k in range(g - 1):
        fa[k] = (abs(fa[k + 1] - fb[k + 1]) + abs(fa[k] - fb[k])) / 2 * (grid[k + 1] - grid[k])
    return _pairwise_sum(fa, g - 1, stack)


@_inline
def _prepare(data, doubles, start, end, left, width, count, edges):
    """Decode one histogram and sort its edges: (buckets, edges), edges -1 when the kernel cannot take it."""
    n = _decode(data, doubles, start, end, left, width, count)
    if not 0 <= n <= MAX_BUCKETS or not _exact(left, width, count, n):
        return n, -1
    return n, _sorted_edges(left, width, n, edges)


@njit(cache=True, nogil=True, error_model="numpy")
def pair_measures(data, doubles, starts, ends, first, second, distance, scale, status):
    """For each pair p, ``cdf_distance`` of histograms ``first[p]`` and ``second[p]`` and mean|w| of the first.

    Histogram ``i`` is ``data[starts[i]:ends[i]]`` (serialized
    ``Summary.Histogram``; ``data`` is followed by at least 32 padding bytes
    and ``doubles`` is ``data`` seen as a little-endian double at every byte
    offset). Results go to ``distance``, ``scale`` and ``status`` (OK or
    FALLBACK); the GIL is released, so threads can share the pairs. When a
    pair starts where the last one ended (consecutive records of a tag),
    that histogram is decoded once.
    """
    most = 1
    for i in range(len(starts)):
        most = max(most, (ends[i] - starts[i]) // 21 + 1)
    la, wa, lb, wb = np.empty(most), np.empty(most), np.empty(most), np.empty(most)
    ca, cb = np.empty(most, np.int64), np.empty(most, np.int64)
    ea, eb, xs, ys = np.empty(2 * most), np.empty(2 * most), np.empty(2 * most), np.empty(2 * most)
    grid, fa, fb = np.empty(4 * most), np.empty(4 * most), np.empty(4 * most)
    stack = np.empty((64, 4))
    last, nb, mb = -1, 0, -1
    for p in range(len(first)):
        i, j = first[p], second[p]
        if i == last:  # the last pair's second histogram, already decoded: swap the buffers
            la, lb, wa, wb, ca, cb, ea, eb = lb, la, wb, wa, cb, ca, eb, ea
            na, ma = nb, mb
        else:
            na, ma = _prepare(data, doubles, starts[i], ends[i], la, wa, ca, ea)
        nb, mb = _prepare(data, doubles, starts[j], ends[j], lb, wb, cb, eb)
        last = j
        status[p] = FALLBACK
        if ma < 0 or mb < 0:
            continue
        status[p] = OK
        scale[p] = _abs_mean(la, wa, ca, na, xs, stack)
        g = _union(ea, ma, eb, mb, grid)
        if g < 2:
            distance[p] = 0.0
            continue
        _cdf(la, wa, ca, na, grid, g, fa, xs, ys)
        _cdf(lb, wb, cb, nb, grid, g, fb, xs, ys)
        distance[p] = _trapezoids(grid, g, fa, fb, stack)


@njit(cache=True, nogil=True, error_model="numpy")
def decode(data, doubles, starts, ends):
    """Buckets of every histogram: sizes (-1 where irregular) and the concatenated left, width and count."""
    capacity = 0
    for i in range(len(starts)):
        capacity += (ends[i] - starts[i]) // 21 + 1
    left, width, count = np.empty(capacity), np.empty(capacity), np.empty(capacity, np.int64)
    sizes = np.empty(len(starts), np.int64)
    at = 0
    for i in range(len(starts)):
        n = _decode(data, doubles, starts[i], ends[i], left[at:], width[at:], count[at:])
        sizes[i] = n
        at += max(n, 0)
    return sizes, left[:at], width[:at], count[:at]


def pairwise_sum(values: np.ndarray) -> float:
    """The kernels' pairwise summation, for tests: must equal ``values.sum()`` bit for bit."""
    return _pairwise_sum_entry(np.ascontiguousarray(values, dtype=np.float64))


@njit(cache=True)
def _pairwise_sum_entry(values):
    return _pairwise_sum(values, len(values), np.empty((64, 4)))
