"""Vectorised bucket statistics and CDF distances equal the one-histogram helpers bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, read_fixture

from summary_doctor.reader.buckets import BucketTable
from summary_doctor.reader.files import find_runs
from summary_doctor.reader.run import Buckets
from summary_doctor.rules._bucket_cdf import CLIPPED, INTERP, SCALAR, consecutive_distances, curves
from summary_doctor.rules._bucket_stats import table_stats
from summary_doctor.rules._histograms import bucket_stats, cdf_distance

FIXTURE_NAMES = [str(p.relative_to(FIXTURES)) for p in find_runs(FIXTURES)] if FIXTURES.exists() else []


def _table(histograms: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> BucketTable:
    sizes = [len(h[0]) for h in histograms]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    columns = [
        np.concatenate([np.asarray(h[k], dtype=t) for h in histograms]) for k, t in enumerate((float, float, np.int64))
    ]
    return BucketTable(np.arange(len(histograms)), offsets, *columns)


def _assert_matches_scalar(table: BucketTable, means: np.ndarray) -> None:
    stats = table_stats(table, means)
    for i in range(len(table)):
        expected = np.array(list(bucket_stats(Buckets(*table.row(i)), means[i]).values()))
        assert stats[i].tobytes() == expected.tobytes() or np.array_equal(stats[i], expected, equal_nan=True), i
    if len(table) < 2:
        return
    distances = consecutive_distances(curves(table), np.arange(len(table) - 1), chunk=5)
    for i in range(len(table) - 1):
        expected = cdf_distance(Buckets(*table.row(i)), Buckets(*table.row(i + 1)))
        assert distances[i] == expected or (np.isnan(distances[i]) and np.isnan(expected)), (i, distances[i], expected)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_tag_gives_the_scalar_numbers(name):
    run = read_fixture(name)
    for tag in run.histograms["tag"].unique():
        rows = run.histograms[run.histograms["tag"] == tag]
        _assert_matches_scalar(run.bucket_table(rows.index), rows["mean"].to_numpy())


def _mindspore_like(rng, n: int, nudge: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Buckets as float32 arithmetic leaves them: contiguous, some edges one ulp apart either way."""
    low = rng.normal() * 0.1
    width = np.float32(abs(rng.normal()) * 0.01 + 1e-6)
    left = (np.float32(low) + np.arange(n, dtype=np.float32) * width).astype(float)
    widths = np.full(n, float(width)) * (1 + rng.integers(-1, 2, n) * 2e-7 * nudge)
    return left, widths, rng.integers(0, 1000, n)


def test_random_histograms_give_the_scalar_numbers():
    rng = np.random.default_rng(3)
    histograms = [_mindspore_like(rng, int(rng.choice([1, 4, 33, 90])), bool(rng.integers(0, 2))) for _ in range(120)]
    table = _table(histograms)
    assert {INTERP, CLIPPED} <= set(curves(table).kind)
    _assert_matches_scalar(table, rng.normal(size=len(table)))


ODD = {
    "empty": ([], [], []),
    "one bucket": ([0.5], [0.25], [3]),
    "zero counts": ([0.0, 1.0], [1.0, 1.0], [0, 0]),
    "zero width": ([0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [2, 3, 4]),
    "unsorted": ([1.0, 0.0, 2.0], [1.0, 1.0, 1.0], [1, 2, 3]),
    "gaps": ([0.0, 2.0, 5.0], [1.0, 1.0, 1.0], [1, 2, 3]),
    "wide overlaps": ([0.0, 0.1, 0.2, 0.3], [1.0, 1.0, 1.0, 1.0], [1, 2, 3, 4]),
    "infinite edge": ([0.0, 1.0], [1.0, np.inf], [1, 1]),
    "finite edges, overflowing right edge": ([0.0, 1e308], [1.0, 1.7e308], [1, 1]),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the scalar helper on edges that overflow to inf
@pytest.mark.parametrize("case", sorted(ODD))
def test_odd_histograms_give_the_scalar_numbers(case):
    rng = np.random.default_rng(5)
    regular = _mindspore_like(rng, 6, True)
    odd = tuple(np.asarray(a) for a in ODD[case])
    table = _table([regular, odd, regular, odd, odd, _mindspore_like(rng, 3, False)])
    _assert_matches_scalar(table, np.array([np.nan, 0.5, np.inf, np.nan, 1.0, np.nan]))


def test_only_odd_shapes_are_left_to_the_scalar_helper():
    kinds = curves(_table([tuple(np.asarray(a) for a in ODD[k]) for k in ("zero width", "unsorted", "gaps")])).kind
    assert list(kinds) == [SCALAR, SCALAR, INTERP]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_right_edge_overflowing_to_inf_is_left_to_the_scalar_helper():
    # finite left and width whose sum is inf once crashed the table merge (inf is also its padding)
    odd = tuple(np.asarray(a) for a in ODD["finite edges, overflowing right edge"])
    one = tuple(np.asarray(a) for a in ODD["one bucket"])
    table = _table([one, odd, one])
    assert curves(table).kind[1] == SCALAR
    _assert_matches_scalar(table, np.full(3, np.nan))
