"""activation.dead: dead ReLU value share and sigmoid/tanh saturation, gated on the loss."""

from __future__ import annotations

import numpy as np
import pytest

from summary_doctor.rules.activations import ActivationDead, function_of
from summary_doctor.rules.base import Context

FLAT = [2.3] * 30
CONVERGING = list(np.geomspace(2.3, 0.05, 30))
STEPS = (1, 10, 20, 30)


def findings(run):
    rule = ActivationDead()
    assert rule.requirements(run, Context()) is None
    return list(rule.check(run, Context()))


def relu(zero_share: float, n: int = 4000) -> np.ndarray:
    zeros = round(zero_share * n)
    positives = np.random.default_rng(0).uniform(0.5, 5.0, n - zeros)
    return np.concatenate([np.zeros(zeros), positives])


def series(values) -> dict:
    return {s: values for s in STEPS}


def test_quiet_on_healthy_regression(fixture_run):
    assert findings(fixture_run("healthy_regression")) == []


def test_not_checkable_without_activations(fixture_run):
    missing = ActivationDead().requirements(fixture_run("healthy_mlp"), Context())
    assert missing is not None and "HistogramSummary" in missing.enable


@pytest.mark.parametrize("loss", [None, FLAT, CONVERGING])
def test_half_zero_relu_never_fires(synthetic_run, loss):
    assert findings(synthetic_run({"act/relu1": series(relu(0.5))}, loss=loss)) == []


def test_mindinsight_edge_without_a_loss(synthetic_run):
    dead = synthetic_run({"act/relu1": series(relu(0.9995))}, name="dead")
    alive = synthetic_run({"act/relu1": series(relu(0.995))}, name="alive")
    [finding] = findings(dead)
    assert finding.evidence["median_share_nonpositive"] >= 0.999
    assert findings(alive) == []


def test_deepdiagnosis_share_needs_a_bad_outcome(synthetic_run):
    flat = synthetic_run({"relu2_out": series(relu(0.8))}, loss=FLAT, name="flat")
    converged = synthetic_run({"relu2_out": series(relu(0.8))}, loss=CONVERGING, name="converged")
    [finding] = findings(flat)
    assert finding.evidence["threshold"] == 0.7
    assert findings(converged) == []


def test_a_converged_run_is_never_flagged_even_fully_dead(synthetic_run):
    assert findings(synthetic_run({"act/relu1": series(relu(1.0))}, loss=CONVERGING)) == []


def test_tanh_saturation(synthetic_run):
    saturated = np.concatenate([np.full(1999, 0.99999999), np.full(1999, -0.99999999), [0.0, 0.1]])
    [finding] = findings(synthetic_run({"act/tanh1": series(saturated)}, loss=FLAT))
    assert finding.evidence["function"] == "tanh"
    spread = np.random.default_rng(0).uniform(-0.9, 0.9, 4000)
    assert findings(synthetic_run({"act/tanh1": series(spread)}, loss=FLAT, name="spread")) == []


def test_function_from_name_graph_or_values():
    assert function_of("act/sigmoid2", 0.0, 1.0, "relu") == "sigmoid"
    assert function_of("act/fc1", -3.0, 3.0, "relu") == "relu"
    assert function_of("act/fc1", 0.0, 3.0, None) == "relu"
    assert function_of("act/fc1", -0.5, 0.9, None) == "tanh"
    assert function_of("act/fc1", -3.0, 3.0, None) is None


def test_dead_relu_fixture(fixture_run):
    found = findings(fixture_run("dead_relu"))
    assert {f.tags for f in found} >= {("act/fc1",)}
    assert all(f.evidence["median_share_nonpositive"] >= 0.999 for f in found)
