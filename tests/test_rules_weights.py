"""weight.overflow, weight.update-ratio, update_ratios and graph.weight-freezing."""

from __future__ import annotations

import numpy as np
import pytest

from summary_doctor.findings import Severity
from summary_doctor.rules.base import Context
from summary_doctor.rules.graph import WeightFreezing
from summary_doctor.rules.weights import WeightOverflow, WeightUpdateRatio, update_ratios

HEALTHY = ["healthy_mlp", "healthy_cnn", "healthy_regression", "resumed", "ranks/rank_0", "ranks/rank_1"]
RULES = [WeightOverflow, WeightUpdateRatio, WeightFreezing]


def findings(rule, run):
    assert rule.requirements(run, Context()) is None
    return list(rule.check(run, Context()))


def weights(seed=0, n=2000, scale=0.1):
    return np.random.default_rng(seed).normal(0.0, scale, n)


@pytest.mark.parametrize("name", HEALTHY)
@pytest.mark.parametrize("rule", RULES)
def test_quiet_on_healthy_runs(fixture_run, name, rule):
    assert findings(rule(), fixture_run(name)) == []


def test_overflow_on_lr_too_large(fixture_run):
    [finding] = findings(WeightOverflow(), fixture_run("lr_too_large"))
    assert finding.severity is Severity.ERROR
    assert finding.step == finding.evidence["first_step"]
    assert "fc1.weight/auto" in finding.tags
    assert finding.evidence["nan_at_first_step"] > 0


def test_overflow_counts_inf_in_synthetic_weights(synthetic_run):
    w = weights()
    run = synthetic_run({"fc1.weight/auto": {1: w, 2: np.append(w, [np.inf, np.nan])}})
    [finding] = findings(WeightOverflow(), run)
    assert (finding.step, finding.evidence["nan_at_first_step"], finding.evidence["inf_at_first_step"]) == (2, 1, 1)


def test_update_ratio_of_a_shift_per_step(synthetic_run):
    w = weights()
    run = synthetic_run({"fc1.weight/auto": {1: w, 11: w + 0.01}})
    [row] = update_ratios(run).itertuples()
    assert (row.prev_step, row.step, row.gap, row.exact) == (1, 11, 10, False)
    assert row.ratio == pytest.approx(0.01 / np.abs(w).mean() / 10, rel=0.03)


def test_update_ratios_skip_biases_and_mark_identical_histograms_zero(synthetic_run):
    w = weights()
    run = synthetic_run({"fc1.weight/auto": {1: w, 2: w}, "fc1.bias/auto": {1: w, 2: w + 1}})
    ratios = update_ratios(run)
    assert list(ratios["tag"]) == ["fc1.weight/auto"]
    assert ratios["ratio"].iloc[0] == 0.0


def test_update_ratio_too_large_edge(synthetic_run):
    w = np.abs(weights()) + 0.05  # mean |w| known and away from zero
    above = synthetic_run({"fc1.weight/auto": {1: w, 2: w * 2.2}}, name="above")  # ratio 1.2
    below = synthetic_run({"fc1.weight/auto": {1: w, 2: w * 1.8}}, name="below")  # ratio 0.8
    [finding] = findings(WeightUpdateRatio(), above)
    assert finding.evidence["direction"] == "too-large"
    assert finding.evidence["max_ratio"] == pytest.approx(1.2, rel=0.02)
    assert findings(WeightUpdateRatio(), below) == []


def test_update_ratio_too_small_needs_a_loss_that_does_not_converge(synthetic_run):
    w = weights()
    steps = {s: w + 1e-7 * s for s in (1, 11, 21, 31)}
    flat = synthetic_run({"fc1.weight/auto": steps}, loss=[2.3] * 30, name="flat")
    converged = synthetic_run({"fc1.weight/auto": steps}, loss=list(np.geomspace(2.3, 0.1, 30)), name="converged")
    [finding] = findings(WeightUpdateRatio(), flat)
    assert finding.evidence["direction"] == "too-small"
    assert findings(WeightUpdateRatio(), converged) == []


def test_histogram_ratio_under_the_threshold_but_within_its_margin_is_not_reported(synthetic_run):
    w = weights()
    steps = {s: w + 3e-6 * s for s in (1, 11, 21, 31)}
    flat = synthetic_run({"fc1.weight/auto": steps}, loss=[2.3] * 30, name="margin")
    ratios = update_ratios(flat)
    assert (ratios["ratio"] < 1e-4).all() and (ratios["ratio"] > 1e-5).all()
    assert findings(WeightUpdateRatio(), flat) == []


def test_update_ratio_too_small_on_lr_too_small(fixture_run):
    [finding] = findings(WeightUpdateRatio(), fixture_run("lr_too_small"))
    assert finding.evidence["direction"] == "too-small"
    assert all(v < 1e-4 for v in finding.evidence["median_ratio"].values())


def test_a_frozen_layer_is_not_a_too_small_update(fixture_run):
    assert findings(WeightUpdateRatio(), fixture_run("frozen_layer")) == []


def test_freezing_on_frozen_layer(fixture_run):
    [finding] = findings(WeightFreezing(), fixture_run("frozen_layer"))
    assert finding.severity is Severity.WARNING
    assert "fc2.weight" in finding.evidence["frozen"]
    assert "fc1.weight" in finding.evidence["changing"]
    assert "requires_grad" in finding.hint


def test_freezing_needs_three_records_and_a_changing_peer(synthetic_run):
    w, v = weights(0), weights(1)
    two = synthetic_run({"a.weight/auto": {1: w, 2: w}, "b.weight/auto": {1: v, 2: v + 1}}, name="two")
    alone = synthetic_run({"a.weight/auto": {1: w, 2: w, 3: w}}, name="alone")
    three = synthetic_run({"a.weight/auto": {1: w, 2: w, 3: w}, "b.weight/auto": {1: v, 2: v + 1, 3: v + 2}})
    assert WeightFreezing().requirements(two, Context()) is not None
    assert findings(WeightFreezing(), alone) == []
    [finding] = findings(WeightFreezing(), three)
    assert finding.tags == ("a.weight/auto",)


def test_freezing_ignores_a_slow_drift(synthetic_run):
    w, v = np.abs(weights(0)) + 0.1, weights(1)
    drift = {s: w * (1 + 1e-4 * s) for s in (1, 2, 3)}  # 1e-4 relative per step > rtol 1e-5
    run = synthetic_run({"a.weight/auto": drift, "b.weight/auto": {1: v, 2: v + 1, 3: v + 2}})
    assert findings(WeightFreezing(), run) == []


def test_requirements_say_what_to_record(synthetic_run):
    run = synthetic_run({"act/relu1": {1: [0.0, 1.0]}}, loss=[1.0, 0.5])
    missing = WeightOverflow().requirements(run, Context())
    assert missing is not None and "histogram_regular" in missing.enable


def test_a_weight_whose_gradient_vanishes_is_not_called_frozen(fixture_run):
    assert findings(WeightFreezing(), fixture_run("vanishing_gradient")) == []


def test_freezing_keeps_a_parameter_with_all_zero_gradient(synthetic_run):
    w, v = weights(0), weights(1)
    run = synthetic_run(
        {
            "a.weight/auto": {1: w, 2: w, 3: w},
            "grad/a.weight": {1: np.zeros(10), 2: np.zeros(10), 3: np.zeros(10)},
            "b.weight/auto": {1: v, 2: v + 1, 3: v + 2},
        }
    )
    [finding] = findings(WeightFreezing(), run)
    assert finding.tags == ("a.weight/auto",)


def test_freezing_compares_bucket_counts_when_the_bytes_differ(synthetic_run):
    # a change far below rtol moves the bucket edges (other bytes) but not one value to another bucket
    w, v = np.abs(weights(0)) + 0.1, weights(1)
    tiny = {s: w * (1 + 1e-9 * s) for s in (1, 2, 3)}
    run = synthetic_run({"a.weight/auto": tiny, "b.weight/auto": {1: v, 2: v + 1, 3: v + 2}})
    rows = run.histograms[run.histograms["tag"] == "a.weight/auto"]
    assert rows["encoded"].nunique() == 3
    [finding] = findings(WeightFreezing(), run)
    assert finding.tags == ("a.weight/auto",)
