"""gradient.vanishing and gradient.exploding: AUTOTRAINER's norm ratio, the backstops and the gate."""

from __future__ import annotations

import numpy as np
import pytest

from summary_doctor.findings import Severity
from summary_doctor.rules.base import Context
from summary_doctor.rules.gradients import GradientExploding, GradientVanishing

FLAT = [2.3] * 30
CONVERGING = list(np.geomspace(2.3, 0.05, 30))
STEPS = (1, 10, 20, 30)


def findings(rule, run):
    assert rule.requirements(run, Context()) is None
    return list(rule.check(run, Context()))


def grads(first_std: float, last_std: float, *, n: int = 1000) -> dict:
    rng = np.random.default_rng(0)
    return {
        "grad/fc1.weight": {s: rng.normal(0, first_std, n) for s in STEPS},
        "grad/fc2.weight": {s: rng.normal(0, (first_std * last_std) ** 0.5, n) for s in STEPS},
        "grad/fc3.weight": {s: rng.normal(0, last_std, n) for s in STEPS},
    }


@pytest.mark.parametrize("rule", [GradientVanishing, GradientExploding])
def test_quiet_on_healthy_regression(fixture_run, rule):
    assert findings(rule(), fixture_run("healthy_regression")) == []


@pytest.mark.parametrize("rule", [GradientVanishing, GradientExploding])
def test_not_checkable_without_gradients(fixture_run, rule):
    missing = rule().requirements(fixture_run("healthy_mlp"), Context())
    assert missing is not None and "HistogramSummary" in missing.enable


def test_vanishing_ratio_fires_only_when_the_loss_does_not_converge(synthetic_run):
    flat = synthetic_run(grads(1e-8, 1e-3), loss=FLAT, name="flat")
    converged = synthetic_run(grads(1e-8, 1e-3), loss=CONVERGING, name="converged")
    [finding] = findings(GradientVanishing(), flat)
    assert finding.tags == ("grad/fc1.weight", "grad/fc3.weight")
    assert finding.evidence["median_ratio"] < 1e-3
    assert findings(GradientVanishing(), converged) == []


def test_vanishing_ratio_edge(synthetic_run):
    # ||g_first|| ~ 3e-5 (< 1e-4) but the ratio is ~2e-3 (> 1e-3), and mean|g| ~ 8e-7 (> 1e-7)
    run = synthetic_run(grads(1e-6, 5e-4), loss=FLAT)
    assert findings(GradientVanishing(), run) == []


def test_vanishing_abs_mean_backstop(synthetic_run):
    rng = np.random.default_rng(0)
    run = synthetic_run({"fc1.weight.grad": {s: rng.normal(0, 1e-8, 1000) for s in STEPS}}, loss=FLAT)
    [finding] = findings(GradientVanishing(), run)
    assert finding.evidence["median_abs_mean"]["fc1.weight.grad"] < 1e-7


def test_exploding_nan_needs_no_gate(synthetic_run):
    series = grads(0.1, 0.1)
    series["grad/fc2.weight"][20] = np.append(series["grad/fc2.weight"][20], np.nan)
    [finding] = findings(GradientExploding(), synthetic_run(series, loss=CONVERGING))
    assert finding.severity is Severity.ERROR
    assert finding.step == 20


def test_exploding_ratio_edge(synthetic_run):
    above = synthetic_run(grads(1.0, 0.01), loss=FLAT, name="above")  # ratio ~100
    below = synthetic_run(grads(0.5, 0.01), loss=FLAT, name="below")  # ratio ~50
    converged = synthetic_run(grads(1.0, 0.01), loss=CONVERGING, name="converged")
    [finding] = findings(GradientExploding(), above)
    assert finding.evidence["median_ratio"] > 70
    assert findings(GradientExploding(), below) == []
    assert findings(GradientExploding(), converged) == []


def test_vanishing_gradient_fixture(fixture_run):
    [finding] = findings(GradientVanishing(), fixture_run("vanishing_gradient"))
    assert finding.id == "gradient.vanishing"


def test_exploding_gradient_fixture(fixture_run):
    [finding] = findings(GradientExploding(), fixture_run("exploding_gradient"))
    assert finding.id == "gradient.exploding"


def test_exploding_growth_by_orders_of_magnitude(synthetic_run):
    rng = np.random.default_rng(0)
    growing = {s: rng.normal(0, 0.01 * 10 ** (s / 10), 1000) for s in STEPS}  # x500 from step 1 to 30
    run = synthetic_run({"grad/fc1.weight": growing}, loss=FLAT)
    [finding] = findings(GradientExploding(), run)
    assert finding.evidence["growth"]["grad/fc1.weight"] > 100


def test_exploded_gradients_are_not_also_called_vanishing(fixture_run):
    assert findings(GradientVanishing(), fixture_run("exploding_gradient")) == []
