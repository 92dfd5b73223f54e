"""Dataset rules on real runs: missing values, outliers, class imbalance, too few samples, label errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from summary_doctor.findings import Severity
from summary_doctor.rules.base import Context
from summary_doctor.rules.classes import ClassImbalance
from summary_doctor.rules.dataset import MissingValues, Outliers
from summary_doctor.rules.dynamics import LossPlateau
from summary_doctor.rules.label_errors import LabelErrors, other_cause
from summary_doctor.rules.samples import TooFewSamples, trainable_parameters

#: Healthy runs that record their input and labels (the traps).
RECORDING_HEALTHY = [
    "healthy_cnn",
    "mlp_heavy_tailed_features",
    "mlp_mild_imbalance_class_weights",
    "cnn_pixels_scaled_unit",
    "mlp_eval_same_pipeline",
]
HEALTHY = [
    *RECORDING_HEALTHY,
    "healthy_mlp",
    "healthy_regression",
    "healthy_sgd_schedule",
    "healthy_finetune",
    "healthy_long",
    "healthy_embedding",
    "healthy_custom_tags",
    "resumed",
]


def findings(run, rule):
    if rule.requirements(run, Context()) is not None:
        return []
    return [f for f in rule.check(run, Context())]


def problems(run, rule):
    return [f for f in findings(run, rule) if f.severity.rank >= 1]


# --- missing values ---------------------------------------------------------------------------


def test_nan_inputs_named_as_the_cause_of_the_nan_loss(fixture_run):
    [finding] = findings(fixture_run("mlp_input_nan"), MissingValues())
    assert finding.severity is Severity.ERROR
    assert finding.step == 3 and finding.tags == ("input",)
    assert finding.evidence["loss_first_nonfinite_step"] == 3
    assert finding.evidence["records_affected"] == 6 and finding.evidence["nan"] == 6
    assert "the data is the likely cause, not the learning rate" in finding.message


@pytest.mark.parametrize("name", [*RECORDING_HEALTHY, "mlp_input_spike_outliers", "mlp_sorted_no_shuffle"])
def test_no_missing_values_where_none_were_recorded(fixture_run, name):
    run = fixture_run(name)
    assert MissingValues().requirements(run, Context()) is None
    assert findings(run, MissingValues()) == []


def test_missing_values_not_checkable_without_input(fixture_run):
    missing = MissingValues().requirements(fixture_run("healthy_mlp"), Context())
    assert "ops.HistogramSummary()('input', x)" in missing.enable


# --- outliers ---------------------------------------------------------------------------------


def test_sensor_spike_found_with_its_steps(fixture_run):
    [finding] = findings(fixture_run("mlp_input_spike_outliers"), Outliers())
    assert finding.evidence["extreme"] == pytest.approx(1e4)
    assert finding.evidence["exceedance_iqr"] > 1000
    assert 4 in finding.evidence["steps"] and len(finding.evidence["steps"]) < finding.evidence["records"] / 2
    assert "The loss is Inf" in finding.message


@pytest.mark.parametrize("name", [*RECORDING_HEALTHY, "cnn_raw_pixels_unnormalized", "mlp_input_nan"])
def test_heavy_tails_and_bounded_pixels_are_not_outliers(fixture_run, name):
    run = fixture_run(name)
    assert Outliers().requirements(run, Context()) is None
    assert findings(run, Outliers()) == []


def test_heavy_tails_stay_far_below_the_line(fixture_run):
    """|z| up to 11.7 in the heavy-tailed fixture: its largest batch extreme is within 4x the typical one."""
    from summary_doctor.rules._inputs import find_data_tag, records
    from summary_doctor.rules.dataset import exceedances

    run = fixture_run("mlp_heavy_tailed_features")
    rows = records(run, find_data_tag(run, "input", Context()))
    exceed, *_, typical = exceedances(rows, 1.5)
    assert rows["max"].max() > 10 * rows["q3"].median()
    assert exceed.max() / typical < 5 < math.sqrt(math.log(2) * len(rows) / Outliers().alpha)


# --- class imbalance --------------------------------------------------------------------------


def test_twenty_to_one_is_a_warning(fixture_run):
    [finding] = findings(fixture_run("mlp_class_imbalance_20to1"), ClassImbalance())
    assert finding.severity is Severity.WARNING
    assert (finding.evidence["least_class"], finding.evidence["most_class"]) == ("3", "0")
    assert finding.evidence["ratio_upper"] < 0.1 and finding.evidence["resolved"]
    assert set(finding.evidence["class_counts"]) == {"0", "1", "2", "3"}


def test_mild_imbalance_with_class_weights_is_info(fixture_run):
    [finding] = findings(fixture_run("mlp_mild_imbalance_class_weights"), ClassImbalance())
    assert finding.severity is Severity.INFO
    assert "class-weighted" in finding.evidence["handled"]
    assert 0.1 < finding.evidence["ratio"] < 0.5


@pytest.mark.parametrize("name", ["healthy_cnn", "mlp_heavy_tailed_features", "mlp_input_nan", "mlp_sorted_no_shuffle"])
def test_balanced_classes_pass(fixture_run, name):
    run = fixture_run(name)
    assert ClassImbalance().requirements(run, Context()) is None
    assert findings(run, ClassImbalance()) == []


def test_ten_classes_in_four_buckets_are_not_checkable(fixture_run):
    missing = ClassImbalance().requirements(fixture_run("mlp_eval_same_pipeline"), Context())
    assert "several classes into one bucket" in missing.reason and "TensorSummary" in missing.enable


# --- too few samples --------------------------------------------------------------------------


def test_trainable_parameters_come_from_optimizer_state(fixture_run):
    params = trainable_parameters(fixture_run("cnn_dead_relu_bn"))
    assert "bn1.gamma" in params and "bn1.moving_mean" not in params and "inputs0" not in params
    assert params["conv1.weight"] == 8 * 1 * 3 * 3


def test_sixty_four_samples_for_a_big_mlp_with_an_eval_gap(fixture_run):
    [finding] = findings(fixture_run("overfitting"), TooFewSamples())
    assert finding.severity is Severity.WARNING
    assert finding.evidence["train_samples"] == 64
    assert finding.evidence["trainable_parameters"] > 2 * 64 + 256
    assert "eval loss up" in finding.message


def test_without_evaluation_only_info(fixture_run):
    [finding] = findings(fixture_run("healthy_mlp"), TooFewSamples())
    assert finding.severity is Severity.INFO and "No evaluation" in finding.message


@pytest.mark.parametrize("name", HEALTHY)
def test_no_sample_count_warning_on_healthy_runs(fixture_run, name):
    assert problems(fixture_run(name), TooFewSamples()) == []


# --- label errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["plateau", "label_noise_plateau_cnn"])
def test_random_labels_are_suspected_and_said_to_be_indirect(fixture_run, name):
    [finding] = findings(fixture_run(name), LabelErrors())
    assert finding.severity is Severity.WARNING
    assert "indirect" in finding.title and finding.message.startswith("Indirect evidence, not proof.")
    assert finding.evidence["classes"] == 10
    assert finding.evidence["loss_level"] == pytest.approx(np.log(10), rel=0.1)


@pytest.mark.parametrize(
    "name",
    [
        "dead_relu",  # dead activations
        "vanishing_gradient",
        "lr_too_small",
        "cnn_lr_too_large_adam",  # a stall after too-large steps
        "cnn_dead_relu_bn",
    ],
)
def test_stalls_with_another_cause_do_not_blame_the_labels(fixture_run, name):
    run = fixture_run(name)
    assert problems(run, LossPlateau())  # the stall is there: another rule explains it
    assert other_cause(run, Context()) is not None
    assert findings(run, LabelErrors()) == []


@pytest.mark.parametrize("name", HEALTHY)
def test_no_label_suspicion_on_healthy_runs(fixture_run, name):
    assert findings(fixture_run(name), LabelErrors()) == []
