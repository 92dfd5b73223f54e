"""CDF distance and mean|w| of consecutive weight histograms: compiled when it pays, numpy otherwise.

Both routes give the same numbers bit for bit (``cdf_distance`` and
``abs_means``, see :mod:`._kernels`):

* the numpy route decodes 4 MB of histograms at a time into a
  ``BucketTable`` and measures it with :mod:`._bucket_cdf`;
* the compiled route (numba, the optional ``fast`` extra) reads the buckets
  straight from the bytes and measures each pair in one pass, in two
  threads. Loading numba and its cached machine code costs ~0.4 s per
  process, so it is taken only for runs whose weight histograms are large
  enough to repay it (``COMPILED_MIN_BYTES``, the measured crossover), or
  when it is already loaded. Pairs it cannot take exactly (irregular bytes,
  non-finite edges) go to the numpy route.

``SUMMARY_DOCTOR_NUMBA=0`` in the environment keeps to the numpy route,
``SUMMARY_DOCTOR_NUMBA=1`` takes the compiled one whatever the size (to
measure the crossover).
"""

from __future__ import annotations

import importlib
import itertools
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import numpy as np
import pandas as pd

from summary_doctor.reader.run import Run
from summary_doctor.rules._bucket_cdf import consecutive_distances, curves
from summary_doctor.rules._bucket_stats import abs_means, chunks

log = logging.getLogger(__name__)

NUMPY_CHUNK_BYTES = 4 * 2**20  # encoded bytes decoded at once by the numpy route: bounds memory
COMPILED_CHUNK_BYTES = 8 * 2**20  # encoded bytes of pairs per compiled task (two in flight)
COMPILED_MIN_BYTES = 32 * 2**20  # pair bytes; below, the numpy route beats loading numba (crossover ~19 MB runs)
COMPILED_MIN_BYTES_LOADED = 2**16  # once numba is loaded, only the smallest tables stay with numpy
THREADS = 2
_PAD = 32

_kernels: ModuleType | None = None
_unavailable = False


def pair_measures(run: Run, rows: pd.DataFrame, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cdf_distance`` of rows ``first`` and ``first + 1`` of ``rows`` and mean|w| of rows ``first``."""
    encoded = rows["encoded"].to_numpy()
    sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    work = int(sizes[first].sum() + sizes[first + 1].sum()) if len(first) else 0
    kernels = compiled_kernels(work)
    if kernels is not None:
        try:
            return _compiled(kernels, run, rows, encoded, sizes, first)
        except Exception as error:  # a platform numba cannot compile for: the numpy route still answers
            _give_up(error)
    return numpy_measures(run, rows, first)


def compiled_kernels(work: int) -> ModuleType | None:
    """The compiled kernels when ``work`` encoded bytes repay loading them (or they are loaded), else None."""
    global _kernels
    choice = os.environ.get("SUMMARY_DOCTOR_NUMBA")
    if _unavailable or sys.byteorder != "little" or choice == "0":
        return None
    if choice != "1" and work < (COMPILED_MIN_BYTES_LOADED if _kernels is not None else COMPILED_MIN_BYTES):
        return None
    if _kernels is None:
        try:
            module = importlib.import_module("summary_doctor.rules._kernels")
        except Exception as error:  # not installed, or installed against another numpy
            _give_up(error)
            return None
        _kernels = module
    return _kernels


def _give_up(error: BaseException) -> None:
    global _unavailable
    _unavailable = True
    log.debug("compiled kernels unavailable (%s: %s); using the numpy route", type(error).__name__, error)


def numpy_measures(run: Run, rows: pd.DataFrame, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The numpy route: 4 MB of histograms decoded into a table at a time, measured with ``_bucket_cdf``."""
    distance, scale = np.empty(len(first)), np.empty(len(first))
    sizes = rows["encoded"].map(len).to_numpy()
    for chunk in chunks(sizes[first] + sizes[first + 1], NUMPY_CHUNK_BYTES):
        involved = np.unique(np.concatenate([first[chunk], first[chunk] + 1]))
        table = run.bucket_table(rows.index[involved])
        at = np.searchsorted(involved, first[chunk])
        distance[chunk] = consecutive_distances(curves(table), at)
        scale[chunk] = abs_means(table, at)
    return distance, scale


def _compiled(
    kernels: ModuleType, run: Run, rows: pd.DataFrame, encoded: np.ndarray, sizes: np.ndarray, first: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    distance, scale = np.empty(len(first)), np.empty(len(first))
    status = np.empty(len(first), dtype=np.int8)
    parts = _parts(sizes[first] + sizes[first + 1])

    def task(part: slice) -> None:
        _measure_part(kernels, encoded, first, part, (distance, scale, status))

    if len(parts) > 1:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(task, parts))
    else:
        for part in parts:
            task(part)
    redo = np.flatnonzero(status != kernels.OK)
    if len(redo):
        distance[redo], scale[redo] = numpy_measures(run, rows, first[redo])
    return distance, scale


def _parts(pair_bytes: np.ndarray) -> list[slice]:
    """Consecutive pairs in parts of about ``COMPILED_CHUNK_BYTES``, at least one per thread when there is work."""
    total = int(pair_bytes.sum())
    count = max(THREADS if len(pair_bytes) >= THREADS else 1, -(-total // COMPILED_CHUNK_BYTES))
    edges = np.searchsorted(np.cumsum(pair_bytes), np.arange(1, count) * (total / count))
    cuts = [0, *edges.tolist(), len(pair_bytes)]
    return [slice(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _measure_part(
    kernels: ModuleType, encoded: np.ndarray, first: np.ndarray, part: slice, out: tuple[np.ndarray, ...]
) -> None:
    """The kernel on one part of the pairs, given only the histograms that part needs."""
    pairs = first[part]
    involved = np.unique(np.concatenate([pairs, pairs + 1]))
    a, b = np.searchsorted(involved, pairs), np.searchsorted(involved, pairs + 1)
    run_kernel(kernels, encoded[involved].tolist(), a, b, *(column[part] for column in out))


def joined(encoded: list[bytes]) -> tuple[np.ndarray, ...]:
    """The kernels' view of serialized histograms: bytes joined and padded, doubles at every offset, bounds."""
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    ends = np.cumsum(lengths)
    data = np.frombuffer(b"".join([*encoded, bytes(_PAD)]), dtype=np.uint8)  # one copy, padding included
    doubles = np.ndarray(shape=(len(data) - 7,), dtype="<f8", buffer=data, strides=(1,))
    return data, doubles, ends - lengths, ends


def run_kernel(
    kernels: ModuleType,
    encoded: list[bytes],
    first: np.ndarray,
    second: np.ndarray,
    distance: np.ndarray,
    scale: np.ndarray,
    status: np.ndarray,
) -> None:
    """``pair_measures`` of histograms ``encoded[first[p]]`` and ``encoded[second[p]]`` into the three outputs."""
    kernels.pair_measures(*joined(encoded), first, second, distance, scale, status)
