"""The compiled kernels (numba) give the references' numbers bit for bit, and the numpy route stands in without them.

References: ``cdf_distance`` and ``bucket_stats`` (one histogram at a time),
protobuf for the buckets. numba compiles the kernels once (a few seconds)
and caches them on disk, so only the first test run after a change pays it.
"""

from __future__ import annotations

import logging
import math
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, read_fixture
from test_buckets import ODD as ODD_BYTES
from test_buckets import REGULAR, STATS, _histogram

from summary_doctor.reader.buckets import decode_with_protobuf
from summary_doctor.reader.files import find_runs
from summary_doctor.reader.run import Buckets, Run
from summary_doctor.rules import _pair_measures as routes
from summary_doctor.rules._histograms import bucket_stats, cdf_distance
from summary_doctor.rules.weights import update_ratios

FIXTURE_NAMES = [str(p.relative_to(FIXTURES)) for p in find_runs(FIXTURES)] if FIXTURES.exists() else []


@pytest.fixture(scope="module")
def kernels():
    pytest.importorskip("numba", reason="numba (the 'fast' extra) is not installed")
    module = routes.compiled_kernels(10**18)
    assert module is not None, "numba is installed but the kernels did not load"
    return module


def _reference(a: bytes, b: bytes) -> tuple[float, float]:
    left, right = Buckets(*decode_with_protobuf(a)), Buckets(*decode_with_protobuf(b))
    return cdf_distance(left, right), bucket_stats(left)["abs_mean"]


def _same(x: float, y: float) -> bool:
    return struct.pack("<d", x) == struct.pack("<d", y) or (math.isnan(x) and math.isnan(y))


def _kernel(kernels, encoded: list[bytes], first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, ...]:
    distance, scale = np.full(len(first), -1.0), np.full(len(first), -1.0)
    status = np.full(len(first), -1, dtype=np.int8)
    routes.run_kernel(kernels, encoded, first.astype(np.int64), second.astype(np.int64), distance, scale, status)
    return distance, scale, status


def _assert_pairs_match(kernels, encoded: list[bytes], first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Every pair the kernel takes equals the references; returns which pairs it left to the numpy route."""
    distance, scale, status = _kernel(kernels, encoded, first, second)
    assert set(status) <= {kernels.OK, kernels.FALLBACK}
    for p in np.flatnonzero(status == kernels.OK):
        expected = _reference(encoded[first[p]], encoded[second[p]])
        assert _same(distance[p], expected[0]), (p, distance[p], expected[0])
        assert _same(scale[p], expected[1]), (p, scale[p], expected[1])
    return status == kernels.FALLBACK


def test_pairwise_sum_adds_in_numpys_order(kernels):
    rng = np.random.default_rng(11)
    for n in [*range(0, 300), 1000, 1024, 1025, 4099, 8192]:  # the longest sum the kernel does
        values = rng.normal(size=n) * 10.0 ** rng.integers(-6, 6, n)
        assert _same(kernels.pairwise_sum(values), float(values.sum())), n


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_tag_gives_the_reference_numbers(kernels, name):
    run = read_fixture(name)
    rows = run.histograms.sort_values(["tag", "step"], kind="stable")
    tag = rows["tag"].to_numpy()
    first = np.flatnonzero(tag[1:] == tag[:-1])
    fallback = _assert_pairs_match(kernels, list(rows["encoded"]), first, first + 1)
    assert not fallback.any(), "MindSpore's own histograms never need the numpy route"


def _buckets(left, width, count, **stats) -> bytes:
    return _histogram(zip(left, width, count, strict=True), **stats).SerializeToString()


ODD_BUCKETS = {
    "empty": ([], [], []),
    "one bucket": ([0.5], [0.25], [3]),
    "zero counts": ([0.0, 1.0], [1.0, 1.0], [0, 0]),
    "zero width": ([0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [2, 3, 4]),
    "zero width where a bucket starts": ([0.0, 1.0, 1.0], [2.0, 0.0, 1.0], [5, 7, 1]),
    "negative width": ([0.0, 1.0], [1.0, -0.5], [2, 3]),
    "unsorted": ([1.0, 0.0, 2.0], [1.0, 1.0, 1.0], [1, 2, 3]),
    "reversed, far from sorted": (list(np.arange(200.0)[::-1]), [1.0] * 200, list(range(200))),
    "gaps": ([0.0, 2.0, 5.0], [1.0, 1.0, 1.0], [1, 2, 3]),
    "wide overlaps": ([0.0, 0.1, 0.2, 0.3], [1.0, 1.0, 1.0, 1.0], [1, 2, 3, 4]),
    "touching by rounding": ([0.0, 0.1, 0.2], [0.1 + 1e-17, 0.1 + 2e-17, 0.1], [4, 5, 6]),
    "signed zeros": ([-1.0, -0.0, 0.0], [1.0, 0.0, 1.0], [1, 1, 1]),
    "many buckets": (list(np.linspace(-3, 3, 301)[:-1]), [0.02] * 300, list(range(1, 301))),
    "too many buckets": (list(np.linspace(-3, 3, 2050)[:-1]), [3 / 1024] * 2049, [1] * 2049),
    "infinite edge": ([0.0, 1.0], [1.0, np.inf], [1, 1]),
    "NaN edge": ([0.0, np.nan], [1.0, 1.0], [1, 1]),
    "overflowing right edge": ([0.0, 1e308], [1.0, 1.7e308], [1, 1]),
    "negative count": ([0.0, 1.0], [1.0, 1.0], [3, -2]),
    "counts too large to add exactly": ([0.0, 1.0], [1.0, 1.0], [2**53, 3]),
    "large exact counts": ([0.0, 1.0], [1.0, 1.0], [2**52, 2**51]),
    "denormal width": ([0.0, 5e-324], [5e-324, 1.0], [1, 1]),
}
_EXPECTED_FALLBACK = {
    "too many buckets",
    "reversed, far from sorted",
    "infinite edge",
    "NaN edge",
    "overflowing right edge",
    "negative count",
    "counts too large to add exactly",
}


def test_odd_histograms_give_the_reference_numbers(kernels):
    names = sorted(ODD_BUCKETS)
    encoded = [_buckets(*ODD_BUCKETS[name], max=1.0, min=-1.0, nan_count=0) for name in names]
    first, second = np.divmod(np.arange(len(names) ** 2), len(names))
    fallback = _assert_pairs_match(kernels, encoded, first, second)
    odd = np.isin(names, sorted(_EXPECTED_FALLBACK))
    assert np.array_equal(fallback, odd[first] | odd[second])


def _random_histogram(rng) -> bytes:
    n = int(rng.choice([0, 1, 2, 5, 40, 130, 257]))
    shape = rng.integers(0, 5)
    scale = 10.0 ** rng.integers(-6, 4)
    left = np.sort(rng.normal(size=n)) * scale
    width = np.abs(rng.normal(size=n)) * scale * 0.1
    if shape == 1:  # contiguous, as MindSpore writes them, with rounding either way
        left = rng.normal() * scale + np.arange(n) * scale * 0.01
        width = np.full(n, scale * 0.01) * (1 + rng.integers(-1, 2, n) * 2e-16)
    elif shape == 2:  # a few swapped and zero-width buckets
        width[rng.random(n) < 0.2] = 0.0
        if n > 1:
            i = rng.integers(0, n - 1)
            left[[i, i + 1]] = left[[i + 1, i]]
    elif shape == 3:  # repeated edges
        left = np.round(left / scale, 1) * scale
        width = np.round(width / scale, 1) * scale
    counts = rng.integers(0, 2**20, n) >> rng.integers(0, 20, n)
    return _buckets(left.tolist(), width.tolist(), counts.tolist(), max=1.0, min=0.0)


def test_random_histograms_give_the_reference_numbers(kernels):
    rng = np.random.default_rng(2024)
    encoded = [_random_histogram(rng) for _ in range(400)]
    first = np.arange(len(encoded) - 1)
    fallback = _assert_pairs_match(kernels, encoded, first, first + 1)
    assert fallback.mean() < 0.05


def test_odd_bytes_are_left_to_protobuf(kernels):
    names = sorted(ODD_BYTES)
    encoded = [ODD_BYTES[name] for name in names] + [REGULAR + STATS]
    sizes, left, width, count = kernels.decode(*routes.joined(encoded))
    at = np.concatenate([[0], np.cumsum(np.maximum(sizes, 0))])
    for i, data in enumerate(encoded):
        if sizes[i] < 0:
            continue  # irregular: the caller asks protobuf
        reference = decode_with_protobuf(data)
        got = (left[at[i] : at[i + 1]], width[at[i] : at[i + 1]], count[at[i] : at[i + 1]])
        assert all(g.tobytes() == r.tobytes() for g, r in zip(got, reference, strict=True)), names[i]
    regular = {names[i] for i in np.flatnonzero(sizes >= 0) if i < len(names)}
    assert {"canonical", "empty bytes", "statistics only", "NaN and Inf edges", "huge count"} <= regular
    assert not regular & {"statistics before the buckets", "width before left", "count first", "garbage"}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_histogram_decodes_as_protobuf_does(kernels, name):
    encoded = list(read_fixture(name).histograms["encoded"])
    sizes, left, _, count = kernels.decode(*routes.joined(encoded))
    assert (sizes >= 0).all()
    at = np.concatenate([[0], np.cumsum(sizes)])
    for i, data in enumerate(encoded):
        reference = decode_with_protobuf(data)
        assert left[at[i] : at[i + 1]].tobytes() == reference[0].tobytes()
        assert np.array_equal(count[at[i] : at[i + 1]], reference[2])


def _table_run(encoded: list[bytes]) -> Run:
    return Run(path=FIXTURES, name="hand-built", histograms=pd.DataFrame({"encoded": encoded}))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the numpy route on edges that overflow to inf
def test_both_routes_measure_odd_pairs_alike(kernels, monkeypatch):
    names = sorted(ODD_BUCKETS)
    encoded = [_buckets(*ODD_BUCKETS[name]) for name in names for _ in range(2)] * 3
    run = _table_run(encoded)
    first = np.arange(len(encoded) - 1)
    monkeypatch.setattr(routes, "COMPILED_MIN_BYTES", 0)
    monkeypatch.setattr(routes, "COMPILED_CHUNK_BYTES", 512)  # several parts, in two threads
    compiled = routes.pair_measures(run, run.histograms, first)
    expected = routes.numpy_measures(run, run.histograms, first)
    for got, want in zip(compiled, expected, strict=True):
        assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_update_ratios_are_the_same_by_either_route(kernels, monkeypatch, name):
    run = read_fixture(name)
    run.derived.clear()
    numpy_route = update_ratios(run)
    run.derived.clear()
    monkeypatch.setattr(routes, "COMPILED_MIN_BYTES", 0)
    compiled = update_ratios(run)
    run.derived.clear()
    pd.testing.assert_frame_equal(compiled, numpy_route, check_exact=True)
    for column in ("ratio", "prev_abs_mean"):
        assert compiled[column].to_numpy().tobytes() == numpy_route[column].to_numpy().tobytes()


def test_without_numba_the_numpy_route_answers_and_says_so_once(monkeypatch, caplog):
    run = read_fixture("healthy_mlp")
    run.derived.clear()
    expected = update_ratios(run)
    run.derived.clear()
    monkeypatch.setitem(sys.modules, "summary_doctor.rules._kernels", None)  # import fails as if not installed
    monkeypatch.setattr(routes, "_kernels", None)
    monkeypatch.setattr(routes, "_unavailable", False)
    monkeypatch.setattr(routes, "COMPILED_MIN_BYTES", 0)
    with caplog.at_level(logging.DEBUG, logger=routes.__name__):
        got = update_ratios(run)
        run.derived.clear()
        update_ratios(run)
    run.derived.clear()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    messages = [r.getMessage() for r in caplog.records if "numpy route" in r.getMessage()]
    assert len(messages) == 1 and messages[0].startswith("compiled kernels unavailable (ModuleNotFoundError")


def test_small_tables_stay_with_numpy(monkeypatch):
    monkeypatch.setattr(routes, "_kernels", None)
    assert routes.compiled_kernels(routes.COMPILED_MIN_BYTES - 1) is None
    monkeypatch.setenv("SUMMARY_DOCTOR_NUMBA", "0")
    assert routes.compiled_kernels(10**18) is None


def test_the_compiled_route_can_be_asked_for_whatever_the_size(kernels, monkeypatch):
    monkeypatch.setenv("SUMMARY_DOCTOR_NUMBA", "1")
    assert routes.compiled_kernels(1) is kernels


def test_json_of_a_small_run_imports_neither_numba_nor_matplotlib(tmp_path):
    code = (
        "import sys\n"
        "from summary_doctor.cli import main\n"
        f"main([{str(FIXTURES / 'lr_too_large')!r}, '--format', 'json', '-o', {str(tmp_path / 'r.json')!r}])\n"
        "print(sorted(m for m in ('numba', 'matplotlib', 'llvmlite') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
