"""Hyperparameter rules: threshold edges on synthetic curves and lineage, and the real fixtures."""

from __future__ import annotations

import numpy as np
import pytest
from test_rules_dynamics import eval_run, loss_run

from summary_doctor.engine import diagnose
from summary_doctor.rules.base import Context
from summary_doctor.rules.hparams import BatchTooLarge, TooFewEpochs, TooManyEpochs
from summary_doctor.rules.learning_rate import LrTooLarge, LrTooSmall

RNG = np.random.default_rng(1)
EPOCHS = {"batch_size": 32, "train_dataset_size": 32 * 20, "epoch": 3}  # 20 steps per epoch


def fired(rule, run, **fields) -> list:
    return [f for f in rule(**fields).check(run, Context()) if f.severity.rank >= 1]


def falling(n: int, per_epoch: float, noise: float) -> np.ndarray:
    """A loss falling by ``per_epoch`` (fraction) per 20-step epoch, steps 10 apart, with log-normal noise."""
    epochs = np.arange(n) * 10 / 20
    return 2.0 * (1 - per_epoch) ** epochs * np.exp(noise * RNG.standard_normal(n))


@pytest.mark.parametrize(("per_epoch", "fires"), [(0.05, False), (0.3, True)])
def test_too_few_epochs_edges_on_the_drop_per_epoch(per_epoch: float, fires: bool) -> None:
    # 6 epochs: at 30% per epoch the loss ends at 17% of its start, far above the 5% floor
    run = loss_run(falling(12, per_epoch, 0.01), **EPOCHS)
    assert bool(fired(TooFewEpochs, run)) is fires


def test_too_few_epochs_ignores_a_loss_that_fell_to_a_fraction_of_a_percent_of_its_start() -> None:
    # the same 30% per epoch over 20 epochs ends at 0.1% of the start: converged, however steep its log
    run = loss_run(falling(40, 0.3, 0.01), **EPOCHS)
    assert fired(TooFewEpochs, run) == []


def test_too_few_epochs_ignores_a_drop_lost_in_noise() -> None:
    run = loss_run(falling(40, 0.3, 0.6), **EPOCHS)
    assert fired(TooFewEpochs, run) == []


def test_too_few_epochs_defers_to_an_eval_loss_that_stopped_improving() -> None:
    still_falling = eval_run([1.0, 0.8, 0.7, 0.6, 0.5], train_end=0.01)
    stopped = eval_run([1.0, 0.8, 0.7, 0.6, 0.6], train_end=0.01)
    assert fired(TooFewEpochs, still_falling) and not fired(TooFewEpochs, stopped)


@pytest.mark.parametrize(
    ("size", "batch", "end", "fires"),
    [(2000, 1000, 1.5, True), (2000, 1000, 0.5, False), (2000, 400, 1.5, False), (6400, 32, 1.5, False)],
)
def test_batch_too_large_needs_few_steps_and_poor_convergence(size, batch, end, fires) -> None:
    values = np.linspace(2.0, end, 20)
    run = loss_run(values, batch_size=batch, train_dataset_size=size, epoch=10)
    assert bool(fired(BatchTooLarge, run)) is fires


def test_a_big_batch_with_enough_steps_per_epoch_is_only_info() -> None:
    run = loss_run(np.linspace(2.0, 1.5, 20), batch_size=512, train_dataset_size=512 * 40, epoch=10)
    (finding,) = BatchTooLarge().check(run, Context())
    assert finding.severity.value == "info" and "batch size 512" in finding.title
    assert fired(BatchTooLarge, run) == []


def test_batch_too_large_is_not_checkable_without_lineage() -> None:
    assert BatchTooLarge().requirements(loss_run(np.linspace(2, 1, 20)), Context()) is not None


def test_too_many_epochs_recommends_the_best_evaluation() -> None:
    (finding,) = fired(TooManyEpochs, eval_run([1.0, 0.8, 0.7, 0.75, 0.85]))
    assert finding.evidence["best_step"] == 600 and "epoch 3" in finding.title
    assert fired(TooManyEpochs, eval_run([1.0, 0.8, 0.7, 0.65, 0.6])) == []


def test_too_many_epochs_needs_train_loss_still_falling() -> None:
    assert fired(TooManyEpochs, eval_run([1.0, 0.8, 0.7, 0.75, 0.85], train_end=2.0)) == []


@pytest.mark.parametrize(("lr", "fires"), [(1e-8, True), (1e-6, False)])
def test_lr_too_small_without_histograms_uses_lineage(lr: float, fires: bool) -> None:
    run = loss_run(2.0 * np.exp(0.05 * RNG.standard_normal(40)), learning_rate=lr)
    assert bool(fired(LrTooSmall, run)) is fires


def test_lr_too_large_without_histograms_is_a_warning_on_the_outcome() -> None:
    run = loss_run(np.r_[np.linspace(2.0, 1.0, 20), [np.nan] * 5], learning_rate=0.5)
    (finding,) = fired(LrTooLarge, run)
    assert finding.severity.value == "warning" and "no weight histograms" in finding.message


def test_lr_too_large_stays_quiet_on_a_good_outcome() -> None:
    assert fired(LrTooLarge, loss_run(np.geomspace(2.0, 0.1, 40))) == []


def test_fixture_lr_too_large_is_confirmed_by_the_update_ratio(fixture_run) -> None:
    (finding,) = [f for f in diagnose(fixture_run("lr_too_large")).findings if f.id == "hparam.lr-too-large"]
    assert finding.severity.value == "error" and finding.evidence["update_ratio"] > 0.1


def test_fixture_lr_too_small_has_tiny_updates(fixture_run) -> None:
    (finding,) = [f for f in diagnose(fixture_run("lr_too_small")).findings if f.id == "hparam.lr-too-small"]
    assert finding.evidence["update_ratio_max"] < 1e-4


@pytest.mark.parametrize("name", ["healthy_mlp", "healthy_cnn", "healthy_regression", "resumed", "ranks/rank_0"])
def test_hparam_rules_stay_quiet_on_healthy_fixtures(fixture_run, name: str) -> None:
    assert [f for f in diagnose(fixture_run(name), select=["hparam"]).findings if f.severity.rank >= 1] == []


def test_a_stalled_loss_alone_is_not_blamed_on_the_learning_rate() -> None:
    # a plateau has many causes: without weight update ratios lr-too-large stays quiet
    stalled = np.r_[np.linspace(2.5, 2.3, 5), np.full(55, 2.3)] * np.exp(0.01 * RNG.standard_normal(60))
    assert fired(LrTooLarge, loss_run(stalled, learning_rate=0.1)) == []
