"""Finding the input and label tags, reading their records, and decoding class counts from label histograms."""

from __future__ import annotations

import numpy as np
import pytest

from summary_doctor.reader.run import Buckets
from summary_doctor.rules._inputs import find_data_tag, records, role_of
from summary_doctor.rules._labels import _bucket_classes, _split_by_sum, class_counts
from summary_doctor.rules.base import Context, TagOverrides


@pytest.mark.parametrize(
    ("tag", "role"),
    [
        ("input", "input"),
        ("data", "input"),
        ("x", "input"),
        ("features", "input"),
        ("input_hist", "input"),
        ("train/input", "input"),
        ("network_input", "input"),
        ("label", "label"),
        ("labels", "label"),
        ("y", "label"),
        ("target", "label"),
        ("label_tensor", "label"),
        ("eval/input", "eval_input"),
        ("val_input", "eval_input"),
        ("val/label", "eval_label"),
        ("test/labels", "eval_label"),
        ("features/relu1", None),  # an activation (cnn_dead_relu_bn)
        ("conv2_relu_out", None),
        ("grad/input", None),
        ("act/input", None),
        ("fc1.weight/auto", None),
        ("logits_head", None),
        ("eval_loss", None),
    ],
)
def test_roles_by_name(tag, role):
    assert role_of(tag) == role


def test_canonical_tags_of_the_recording_fixtures(fixture_run):
    run = fixture_run("mlp_eval_missing_normalize")
    found = {role: find_data_tag(run, role, Context()) for role in ("input", "label", "eval_input", "eval_label")}
    assert {role: tag.tag for role, tag in found.items()} == {
        "input": "input",
        "label": "label",
        "eval_input": "eval/input",
        "eval_label": "eval/label",
    }


def test_user_names_of_healthy_cnn_and_an_override(fixture_run):
    run = fixture_run("healthy_cnn")
    assert find_data_tag(run, "input", Context()).tag == "input_hist"
    label = find_data_tag(run, "label", Context())
    assert (label.tag, label.frame) == ("label_tensor", "tensors")  # exact values win
    chosen = find_data_tag(run, "label", Context(tags=TagOverrides(label="label_hist")))
    assert (chosen.tag, chosen.frame) == ("label_hist", "histograms")
    assert find_data_tag(run, "label", Context(tags=TagOverrides(label="nope"))) is None


def test_records_keep_exact_nan_counts_and_extremes(fixture_run):
    run = fixture_run("mlp_input_nan")
    rows = records(run, find_data_tag(run, "input", Context()))
    first = rows[rows["nonfinite"] > 0].iloc[0]
    assert (int(first["step"]), int(first["nan"]), int(first["count"])) == (3, 1, 320)
    assert rows["q1"].median() < 0 < rows["q3"].median()


def test_mindspore_int_buckets_and_the_sum_resolve_every_class(fixture_run):
    """int32 labels 0..3, 32 per batch: edges 0,0,1,2,3 (the closed last bucket holds classes 2 and 3)."""
    run = fixture_run("mlp_class_imbalance_20to1")
    data = find_data_tag(run, "label", Context())
    first = records(run, data).iloc[0]
    buckets = run.bucket_arrays(first["row"])
    assert buckets.left.tolist() == [0, 0, 1, 2] and buckets.width.tolist() == [0, 1, 1, 1]
    counts = class_counts(run, data)
    assert counts.resolved and sorted(counts.counts) == [0, 1, 2, 3]
    rows = records(run, data)
    assert sum(counts.counts.values()) == rows["count"].sum()
    assert sum(c * n for c, n in counts.counts.items()) == pytest.approx((rows["mean"] * rows["count"]).sum())


def test_sum_splits_the_one_shared_bucket():
    buckets = _bucket_classes(
        Buckets(np.array([0.0, 0.0, 1.0, 2.0]), np.array([0.0, 1.0, 1.0, 1.0]), np.array([0, 20, 5, 7]))
    )
    assert buckets == [((), 0.0), ((0,), 20.0), ((1,), 5.0), ((2, 3), 7.0)]
    # labels: 20 x 0, 5 x 1, 4 x 2, 3 x 3 -> sum 22
    assert sorted(_split_by_sum(buckets, 22.0)) == [((), 0.0), ((0,), 20.0), ((1,), 5.0), ((2,), 4.0), ((3,), 3.0)]


def test_float_buckets_that_mix_classes_stay_grouped(synthetic_run):
    """Float labels 0..9 in batches of 32: 4 buckets of width 2.25; only group totals are known."""
    rng = np.random.default_rng(0)
    run = synthetic_run({"label": {s: rng.integers(0, 10, 32).astype(float) for s in range(1, 9)}})
    counts = class_counts(run, find_data_tag(run, "label", Context()))
    assert not counts.resolved
    least, most = counts.bounds()
    assert 0 < least <= most


def test_float_buckets_narrower_than_one_resolve(synthetic_run):
    rng = np.random.default_rng(1)
    run = synthetic_run({"label": {s: rng.integers(0, 4, 100).astype(float) for s in range(1, 6)}})
    counts = class_counts(run, find_data_tag(run, "label", Context()))
    assert counts.resolved and sum(counts.counts.values()) == 500


def test_regression_targets_have_no_classes(synthetic_run):
    run = synthetic_run({"target": {s: np.random.default_rng(s).normal(size=32) for s in range(1, 6)}})
    assert class_counts(run, find_data_tag(run, "label", Context())) is None
