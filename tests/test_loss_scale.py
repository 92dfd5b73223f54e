"""One reading of the loss for every rule: finite prefix, level ln(loss + 5% of the start), one "converged" bar.

The traps are real runs that converged to a fraction of a percent of their
start, a hard task that stops at a modest loss, and runs whose loss turns
NaN/Inf; the faults are real runs that must keep firing.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_rules_dynamics import loss_run

from summary_doctor.engine import diagnose
from summary_doctor.rules import _series as series
from summary_doctor.rules._histograms import loss_outcome
from summary_doctor.rules.base import Context

NEAR_ZERO = ["healthy_embedding_batch512_short", "healthy_multioutput_adamw_small_batch", "healthy_moons_adam_defaults"]


def problems(run, *ids: str) -> set[str]:
    return {f.id for f in diagnose(run, select=list(ids)).findings if f.severity.rank >= 1}


def entry(run, symptom: str):
    return next(e for e in diagnose(run, select=[symptom]).checklist if e.id == symptom)


def test_the_curve_stops_at_the_first_non_finite_value() -> None:
    c = series.loss_curve(loss_run(np.r_[np.linspace(2, 1, 10), np.nan, 0.5, np.inf]), Context())
    assert len(c) == 10 and c.nonfinite_step == 110


def test_levels_below_the_floor_count_as_shares_of_the_start() -> None:
    # the example: 2.3 -> 0.004, then 0.013: a 3x ratio, but 0.4% of the start
    c = series.loss_curve(loss_run(np.r_[2.3, np.full(20, 0.004), np.full(20, 0.013)]), Context())
    assert c.floor == pytest.approx(0.05 * 2.3)
    rise = series.as_factor(c.level[-1] - c.level[1])
    assert rise == pytest.approx((0.013 + 0.115) / (0.004 + 0.115)) and rise < 1.1
    assert c.value_at(c.level[-1]) == pytest.approx(0.013)


@pytest.mark.parametrize("name", NEAR_ZERO)
def test_runs_converged_near_zero_are_not_still_falling_nor_swinging(fixture_run, name: str) -> None:
    run = fixture_run(name)
    assert problems(run, "hparam.too-few-epochs", "loss.oscillating", "loss.diverging") == set()
    assert loss_outcome(run, Context()).bad is False


def test_a_hard_task_that_stops_at_a_modest_loss_is_not_a_plateau(fixture_run) -> None:
    run = fixture_run("healthy_overlapping_classes_sgd")
    c = series.loss_curve(run, Context())
    assert 0.25 < series.remaining(c) < series.CONVERGED_RATIO
    assert problems(run, "loss.plateau") == set()


@pytest.mark.parametrize("name", ["plateau", "label_noise_plateau_cnn", "cnn_lr_too_large_adam", "lr_too_small"])
def test_stalls_that_keep_most_of_the_start_are_still_plateaus(fixture_run, name: str) -> None:
    run = fixture_run(name)
    assert series.remaining(series.loss_curve(run, Context())) > 0.55
    assert problems(run, "loss.plateau") == {"loss.plateau"}


def test_an_inf_curve_is_not_a_plateau(fixture_run) -> None:
    run = fixture_run("mlp_tanh_loss_inf_momentum")
    assert problems(run, "loss") == {"loss.nan-inf"}
    plateau = entry(run, "loss.plateau")
    assert plateau.status.value == "not-checkable" and "non-finite at step 92" in plateau.reason


def test_a_nan_curve_is_not_still_falling(fixture_run) -> None:
    run = fixture_run("mlp_naive_bce_log_nan")
    few = entry(run, "hparam.too-few-epochs")
    assert few.status.value == "not-checkable" and "non-finite" in few.reason
    assert loss_outcome(run, Context()).bad is True


def test_a_blown_up_loss_is_diverging_not_swinging_nor_too_slow(fixture_run) -> None:
    run = fixture_run("regression_warmup_to_lr_too_large")
    found = problems(run, "loss", "hparam")
    assert "loss.diverging" in found and "hparam.lr-too-large" in found
    assert not found & {"loss.oscillating", "hparam.lr-too-small"}
    # weights grown 1e20x make every later update look tiny: only "too large" is reported
    ratios = [f for f in diagnose(run).findings if f.id == "weight.update-ratio"]
    assert [f.evidence["direction"] for f in ratios] == ["too-large"]


def test_oscillation_is_measured_around_the_trend() -> None:
    # falls 1000x through its late part in steps that never go back up: descending, not swinging
    t = np.linspace(0, 1, 80)
    steady = 2.0 * np.exp(-9 * t) * np.exp(0.05 * np.random.default_rng(3).standard_normal(80))
    assert problems(loss_run(steady), "loss.oscillating") == set()


def test_plain_sgd_with_a_100x_too_small_rate_is_called(fixture_run) -> None:
    (finding,) = [
        f for f in diagnose(fixture_run("regression_sgd_lr_too_small")).findings if f.id == "hparam.lr-too-small"
    ]
    assert finding.evidence["loss_improvement"] < 0.5 and finding.evidence["limit"] == 1e-4
    assert "still descending" in finding.message


def test_plain_sgd_at_a_good_rate_is_not(fixture_run) -> None:
    run = fixture_run("healthy_regression_plain_sgd")
    assert problems(run, "hparam", "weight") == set()
