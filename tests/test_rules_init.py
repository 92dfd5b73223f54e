"""init.all-zero: exact zeros, and a spread far below the fan-in scale after the first update."""

from __future__ import annotations

import numpy as np
import pytest

from summary_doctor.findings import Severity
from summary_doctor.rules.base import Context
from summary_doctor.rules.init import InitAllZero

HEALTHY = ["healthy_mlp", "healthy_cnn", "healthy_regression", "resumed", "ranks/rank_0", "ranks/rank_1"]


def findings(run, rule=None):
    rule = rule or InitAllZero()
    assert rule.requirements(run, Context()) is None
    return list(rule.check(run, Context()))


def normal(std, n=2000, seed=0):
    return np.random.default_rng(seed).normal(0.0, std, n)


@pytest.mark.parametrize("name", [*HEALTHY, "lr_too_large", "lr_too_small", "frozen_layer"])
def test_quiet_where_weights_are_initialised_randomly(fixture_run, name):
    assert findings(fixture_run(name)) == []


def test_zero_init_fixture_shows_the_hidden_layer(fixture_run):
    [finding] = findings(fixture_run("zero_init"))
    assert finding.tags == ("fc2.weight/auto",)
    assert finding.step == 1
    assert finding.evidence["below_fan_in"] < 1e-2
    assert finding.evidence["below_peers"] < 1e-2
    assert "fc2.weight" in finding.title


def test_exact_zeros_are_an_error(synthetic_run):
    run = synthetic_run({"fc1.weight/auto": {1: np.zeros(500)}, "fc2.weight/auto": {1: normal(0.1)}})
    [finding] = findings(run)
    assert finding.severity is Severity.ERROR
    assert finding.evidence["zero_fraction"] == 1.0


def test_biases_and_batchnorm_never_flagged(synthetic_run):
    run = synthetic_run(
        {
            "fc1.weight/auto": {1: normal(0.1)},
            "fc1.bias/auto": {1: np.zeros(64)},
            "bn1.beta/auto": {1: np.zeros(16)},
            "bn1.moving_mean/auto": {1: np.zeros(16)},
            "bn1.gamma/auto": {1: np.ones(16)},
            "bn1.moving_variance/auto": {1: np.ones(16)},
        }
    )
    assert findings(run) == []


def test_peer_edge_without_fan_in(synthetic_run):
    # No graph: only peers. Variance < 1e-5 both times; 1/200 of the peers fires, 1/50 does not.
    peers = {f"p{i}.weight/auto": {1: normal(0.2, seed=i)} for i in range(3)}
    tiny = synthetic_run({"z.weight/auto": {1: normal(0.001, seed=9)}, **peers}, name="tiny")
    small = synthetic_run({"z.weight/auto": {1: normal(0.003, seed=9)}, **peers}, name="small")
    [finding] = findings(tiny)
    assert finding.tags == ("z.weight/auto",)
    assert finding.evidence["fan_in"] is None
    assert findings(small) == []


def test_deepdiagnosis_variance_bound_is_required(synthetic_run):
    # 1/1000 of its peers, but a variance of 4e-4 > 1e-5: a legitimately small init, not zero
    peers = {f"p{i}.weight/auto": {1: normal(20.0, seed=i)} for i in range(3)}
    run = synthetic_run({"z.weight/auto": {1: normal(0.02, seed=9)}, **peers})
    assert findings(run) == []


def test_a_single_weight_without_fan_in_or_peers_is_not_judged(synthetic_run):
    run = synthetic_run({"z.weight/auto": {1: normal(1e-5)}})
    assert findings(run) == []


def test_one_adam_step_from_zero_reads_as_equal_magnitudes(synthetic_run):
    # every element moved by +-lr (the sign of its gradient): spread ~50x below its peers, not 100x
    rng = np.random.default_rng(1)
    adam_step = 0.002 * rng.choice([-1.0, 1.0], size=1000)
    run = synthetic_run({"fc2.weight/auto": {1: adam_step}, "fc1.weight/auto": {1: normal(0.1)}})
    (finding,) = [f for f in InitAllZero().check(run, Context()) if f.tags == ("fc2.weight/auto",)]
    assert finding.severity.value == "warning" and finding.evidence["abs_mean_over_max"] > 0.9


def test_equal_magnitudes_need_a_small_spread(synthetic_run):
    # binary-like weights at the normal scale are not a zero init
    rng = np.random.default_rng(2)
    signs = 0.1 * rng.choice([-1.0, 1.0], size=1000)
    run = synthetic_run({"fc2.weight/auto": {1: signs}, "fc1.weight/auto": {1: normal(0.1)}})
    assert list(InitAllZero().check(run, Context())) == []
