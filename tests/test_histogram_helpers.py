"""Tag classification and the statistics estimated from histogram buckets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from summary_doctor.rules._histograms import (
    TagKind,
    base_name,
    bucket_stats,
    cdf_distance,
    classify_tag,
    fan_in,
    gradient_parameter,
    loss_outcome,
    stats_of_kind,
    tag_table,
)
from summary_doctor.rules.base import Context


@pytest.mark.parametrize(
    ("tag", "kind"),
    [
        ("fc1.weight/auto", TagKind.WEIGHT),
        ("conv1.weight", TagKind.WEIGHT),
        ("fc1.bias/auto", TagKind.OFFSET),
        ("bn1.beta/auto", TagKind.OFFSET),
        ("bn1.moving_mean/auto", TagKind.OFFSET),
        ("bn1.gamma/auto", TagKind.SCALE),
        ("bn1.moving_variance", TagKind.SCALE),
        ("fc1.weight.grad", TagKind.GRADIENT),
        ("grad/fc1.weight", TagKind.GRADIENT),
        ("gradient/conv2.weight", TagKind.GRADIENT),
        ("fc1.bias_grad", TagKind.GRADIENT),
        ("relu1_out", TagKind.ACTIVATION),
        ("act/relu1", TagKind.ACTIVATION),
        ("act/fc1", TagKind.ACTIVATION),
        ("activation/sigmoid3", TagKind.ACTIVATION),
        ("tanh2", TagKind.ACTIVATION),
        ("weights/dense1", TagKind.WEIGHT),
        ("params/conv1", TagKind.WEIGHT),
        ("weights/dense1.bias", TagKind.OFFSET),
        ("input_hist", TagKind.OTHER),
        ("label_hist", TagKind.OTHER),
    ],
)
def test_classify_tag_across_naming_styles(tag, kind):
    assert classify_tag(tag) is kind


def test_a_graph_parameter_without_a_known_suffix_is_a_weight():
    assert classify_tag("encoder.proj/auto", ["encoder.proj"]) is TagKind.WEIGHT


@pytest.mark.parametrize(
    ("tag", "parameter"),
    [
        ("grad/fc1.weight", "fc1.weight"),
        ("fc1.weight.grad", "fc1.weight"),
        ("gradients/conv1.weight/auto", "conv1.weight"),
        ("fc1.weight/auto", None),
        ("act/relu1", None),
    ],
)
def test_gradient_tag_maps_to_its_parameter(tag, parameter):
    assert gradient_parameter(tag) == parameter


def test_base_name_strips_auto():
    assert base_name("fc1.weight/auto") == "fc1.weight"


def test_fan_in_of_dense_and_conv_shapes():
    assert fan_in((64, 256)) == 256
    assert fan_in((16, 8, 3, 3)) == 72
    assert fan_in((64,)) is None


def _buckets(values, bins=90):
    counts, edges = np.histogram(values, bins=bins, range=(min(values), max(values)))
    return pd.DataFrame({"left": edges[:-1], "width": np.diff(edges), "count": counts})


def test_bucket_stats_estimate_spread_norm_and_abs_mean():
    values = np.random.default_rng(0).normal(0.0, 0.5, 20000)
    stats = bucket_stats(_buckets(values), float(values.mean()))
    assert stats["std"] == pytest.approx(values.std(), rel=0.02)
    assert stats["l2"] == pytest.approx(math.sqrt((values**2).sum()), rel=0.02)
    assert stats["abs_mean"] == pytest.approx(np.abs(values).mean(), rel=0.02)


def test_zero_share_counts_the_bucket_holding_zero_whole():
    values = np.concatenate([np.zeros(600), np.linspace(0.001, 9.0, 400)])
    stats = bucket_stats(_buckets(values, bins=9), None)
    # bucket [0, 1) holds the 600 zeros and the 45 positives below 1: an upper bound
    assert stats["zero_fraction"] == pytest.approx(645 / 1000, abs=0.002)
    assert stats["nonpositive"] == stats["zero_fraction"]


def test_cdf_distance_of_a_shift_is_the_shift():
    values = np.random.default_rng(1).normal(0.0, 1.0, 5000)
    assert cdf_distance(_buckets(values), _buckets(values + 0.25)) == pytest.approx(0.25, rel=0.01)
    assert cdf_distance(_buckets(values), _buckets(values)) == pytest.approx(0.0, abs=1e-12)


def test_tag_table_orders_layers_as_the_graph_does(fixture_run):
    table = tag_table(fixture_run("healthy_regression"))
    gradients = table[table["kind"] == "gradient"]
    assert list(gradients["parameter"]) == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert list(table.loc[table["kind"] == "weight", "fan_in"]) == [10, 64, 64]


def test_loss_outcome_on_healthy_and_diverging_runs(fixture_run):
    assert loss_outcome(fixture_run("healthy_mlp"), Context()).bad is False
    diverged = loss_outcome(fixture_run("lr_too_large"), Context())
    assert diverged.bad is True
    assert "inf" in diverged.reason or "nan" in diverged.reason


def test_loss_outcome_unknown_without_a_loss(synthetic_run):
    run = synthetic_run({"fc1.weight/auto": {1: [0.1, -0.1, 0.2]}})
    assert loss_outcome(run, Context()).bad is None


@pytest.mark.parametrize("gapped", [False, True])
def test_fast_cdf_equals_the_bucket_by_bucket_cdf(gapped):
    from summary_doctor.rules._histograms import _cdf

    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(1, 90))
        left = np.sort(rng.normal(size=n))
        width = np.diff(np.r_[left, left[-1] + rng.random()])
        if gapped:
            width = width * rng.uniform(0.3, 1.0, n)
        counts = rng.integers(0, 50, n).astype(float)
        counts[0] += 1
        grid = np.union1d(np.r_[left, left + width], rng.normal(size=20))
        part = np.clip((grid[None, :] - left[:, None]) / width[:, None], 0, 1)
        expected = (counts[:, None] * part).sum(axis=0) / counts.sum()
        assert np.allclose(_cdf((left, width, counts), grid), expected)


def test_bucket_arrays_match_the_buckets_frame(fixture_run):
    run = fixture_run("healthy_mlp")
    index = run.histograms.index[3]
    arrays, frame = run.bucket_arrays(index), run.histogram_buckets(index)
    assert np.array_equal(arrays.left, frame["left"]) and np.array_equal(arrays.count, frame["count"])
    assert arrays.count.dtype == np.int64 and len(arrays.width) == len(frame)


def test_stats_of_kind_takes_tensor_rows_with_exact_statistics(fixture_run):
    run = fixture_run("healthy_cnn")  # records two tensors (labels and logits) beside its histograms
    rows = stats_of_kind(run, TagKind.OTHER)
    exact = rows[rows["exact"]]
    assert set(exact["tag"]) == {"label_tensor", "logits_head"}
    value = np.asarray(run.tensors.loc[exact.index[0], "value"], dtype=float).ravel()
    assert exact["std"].iloc[0] == pytest.approx(value.std())
    assert exact["nonpositive"].iloc[0] == pytest.approx((value <= 0).mean())
