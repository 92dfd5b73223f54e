"""Data-processing rules on real runs: normalisation, shuffling, train/eval preprocessing."""

from __future__ import annotations

import pytest

from summary_doctor.findings import Severity
from summary_doctor.rules._pipeline import shuffle_state
from summary_doctor.rules.base import Context, TagOverrides
from summary_doctor.rules.preprocess import NotNormalized, TrainEvalMismatch
from summary_doctor.rules.shuffle import NoShuffle, label_order

RECORDING_HEALTHY = [
    "healthy_cnn",
    "mlp_heavy_tailed_features",
    "mlp_mild_imbalance_class_weights",
    "cnn_pixels_scaled_unit",
    "mlp_eval_same_pipeline",
]


def findings(run, rule, context=None):
    context = context or Context()
    assert rule.requirements(run, context) is None
    return list(rule.check(run, context))


# --- not normalised ---------------------------------------------------------------------------


def test_raw_pixels_without_rescale(fixture_run):
    [finding] = findings(fixture_run("cnn_raw_pixels_unnormalized"), NotNormalized())
    assert finding.severity is Severity.WARNING
    assert finding.evidence["abs_mean"] > 100 and finding.evidence["max"] == 255
    assert finding.evidence["normalizing_ops"] == []
    assert "no Rescale or Normalize op" in finding.message


@pytest.mark.parametrize("name", [*RECORDING_HEALTHY, "mlp_input_spike_outliers", "mlp_sorted_no_shuffle"])
def test_unit_scale_inputs_pass_with_or_without_a_pipeline_op(fixture_run, name):
    assert findings(fixture_run(name), NotNormalized()) == []


def test_pixels_scaled_in_numpy_have_no_pipeline_op_and_pass(fixture_run):
    run = fixture_run("cnn_pixels_scaled_unit")
    from summary_doctor.rules._pipeline import normalizing_ops

    assert normalizing_ops(run) == []
    assert findings(run, NotNormalized()) == []


def test_pipeline_alone_decides_when_it_normalises(fixture_run):
    assert findings(fixture_run("healthy_mlp"), NotNormalized()) == []  # Rescale + Normalize, no input recorded
    missing = NotNormalized().requirements(fixture_run("healthy_regression"), Context())
    assert "no Normalize/Rescale op" in missing.reason and "ops.HistogramSummary()('input', x)" in missing.enable


# --- no shuffle -------------------------------------------------------------------------------


def test_sequential_image_folder_with_one_class_per_batch(fixture_run):
    run = fixture_run("mlp_sorted_no_shuffle")
    assert shuffle_state(run).state == "not shuffled"
    [finding] = findings(run, NoShuffle())
    assert finding.evidence["pipeline"] == "not shuffled"
    assert finding.evidence["single_class_batches"] == finding.evidence["records"]
    assert finding.evidence["expected_single_class_share"] < 1e-6
    assert "SequentialSampler" in finding.title


def test_numpy_slices_shuffle_is_invisible_but_the_labels_are_mixed(fixture_run):
    """NumpySlicesDataset(shuffle=True) is recorded as a bare GeneratorDataset: the labels decide."""
    run = fixture_run("mlp_heavy_tailed_features")
    assert shuffle_state(run).state == "unknown"
    order = label_order(run, Context())
    assert order.variance_ratio < NoShuffle().min_ratio and order.single_class == 0
    assert findings(run, NoShuffle()) == []


@pytest.mark.parametrize("name", [*RECORDING_HEALTHY, "healthy_mlp", "mlp_class_imbalance_20to1", "mlp_input_nan"])
def test_shuffled_runs_pass(fixture_run, name):
    assert findings(fixture_run(name), NoShuffle()) == []


def test_no_pipeline_and_no_labels_is_not_checkable(fixture_run):
    missing = NoShuffle().requirements(fixture_run("healthy_custom_tags"), Context())
    assert "no dataset graph" in missing.reason and "collect_dataset_graph" in missing.enable


# --- train / eval mismatch --------------------------------------------------------------------


def test_evaluation_without_normalize(fixture_run):
    [finding] = findings(fixture_run("mlp_eval_missing_normalize"), TrainEvalMismatch())
    assert finding.tags == ("input", "eval/input")
    assert finding.evidence["drift"] > 0.1 > finding.evidence["noise"]
    assert finding.evidence["scale_ratio"] == pytest.approx(0.25, rel=0.1)  # Normalize's std 0.25 missing
    assert finding.evidence["mean_shift"] > 0.5


def test_same_pipeline_differs_only_by_sampling(fixture_run):
    run = fixture_run("mlp_eval_same_pipeline")
    assert findings(run, TrainEvalMismatch()) == []
    from summary_doctor.rules._inputs import find_data_tag
    from summary_doctor.rules.preprocess import compare

    measure = compare(run, find_data_tag(run, "input", Context()), find_data_tag(run, "eval_input", Context()))
    assert measure["drift"] < measure["noise"] < 0.1


def test_mismatch_needs_both_tags_and_names_the_option(fixture_run):
    missing = TrainEvalMismatch().requirements(fixture_run("mlp_input_nan"), Context())
    assert "evaluation input" in missing.reason and "--eval-input-tag" in missing.enable
    context = Context(tags=TagOverrides(eval_input="validation_batch"))
    missing = TrainEvalMismatch().requirements(fixture_run("mlp_eval_same_pipeline"), context)
    assert "'validation_batch'" in missing.reason
