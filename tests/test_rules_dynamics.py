"""Loss dynamics rules: threshold edges on small synthetic curves, and the real fixtures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from summary_doctor.engine import diagnose
from summary_doctor.reader.frames import build_frame
from summary_doctor.reader.lineage import Lineage
from summary_doctor.reader.run import Run
from summary_doctor.rules.base import Context, TagOverrides
from summary_doctor.rules.dynamics import LossDiverging, LossNanInf, LossOscillating, LossPlateau, MetricOverfitting

RNG = np.random.default_rng(0)


def make_run(curves: dict[str, tuple[np.ndarray, np.ndarray]], hyper: dict | None = None) -> Run:
    """A run holding only the given scalar curves ({tag: (steps, values)}) and lineage hyperparameters."""
    tags, steps, values = [], [], []
    for tag, (s, v) in curves.items():
        tags += [tag] * len(s)
        steps += [int(x) for x in s]
        values += [float(x) for x in v]
    n = len(tags)
    scalars = build_frame(
        "scalars",
        {
            "run": ["syn"] * n,
            "file": ["f"] * n,
            "offset": list(range(n)),
            "tag": tags,
            "step": steps,
            "wall_time": [0.0] * n,
            "value": values,
            "superseded": [False] * n,
        },
    )
    return Run(path=Path("syn"), name="syn", scalars=scalars, lineage=Lineage(hyperparameters=hyper or {}))


def loss_run(values: np.ndarray, tag: str = "loss/auto", **hyper: object) -> Run:
    steps = np.arange(1, len(values) + 1) * 10
    return make_run({tag: (steps, np.asarray(values, float))}, hyper)


def ids(run: Run, rule: type, **fields: object) -> list[str]:
    return [f.id for f in rule(**fields).check(run, Context()) if f.severity.rank >= 1]


def converging(n: int = 60, start: float = 2.5, end: float = 0.1, noise: float = 0.3) -> np.ndarray:
    """A healthy-looking step loss: exponential decay with multiplicative batch noise."""
    t = np.linspace(0, 1, n)
    return (
        start * (end / start) ** (1 - np.exp(-5 * t)) / (1 - math.exp(-5)) ** 0 * np.exp(noise * RNG.standard_normal(n))
    )


@pytest.mark.parametrize("scale", [0.01, 1.0, 1000.0])
def test_a_noisy_converging_loss_fires_nothing_at_any_scale(scale: float) -> None:
    run = loss_run(scale * converging())
    for rule in (LossNanInf, LossDiverging, LossOscillating, LossPlateau):
        assert ids(run, rule) == [], rule


def test_nan_inf_reports_the_first_non_finite_step() -> None:
    values = np.r_[np.linspace(2, 1, 10), np.nan, np.inf, np.nan]
    (finding,) = LossNanInf().check(loss_run(values), Context())
    assert finding.step == 110 and finding.evidence["nonfinite"] == 3 and finding.severity.value == "error"


def test_nan_inf_uses_lineage_when_the_curve_is_finite() -> None:
    run = make_run({"loss/auto": (np.arange(5), np.ones(5))}, {"loss": float("nan")})
    assert [f.id for f in LossNanInf().check(run, Context())] == ["loss.nan-inf"]


@pytest.mark.parametrize(("factor", "fires"), [(1.9, False), (2.4, True)])
def test_diverging_edges_around_rise_factor(factor: float, fires: bool) -> None:
    # start 2.0, so the level floor is 0.1: the end is 2x the best when (factor + 0.1) / (1.0 + 0.1) = 2
    values = np.r_[2.0, np.full(29, 1.0), np.full(30, factor)]
    assert bool(ids(loss_run(values), LossDiverging)) is fires


def test_diverging_threshold_can_be_changed() -> None:
    values = np.r_[np.linspace(2.0, 1.0, 30), np.full(30, 2.5)]
    assert ids(loss_run(values), LossDiverging, rise_factor=3.0) == []


@pytest.mark.parametrize(("swing", "fires"), [(1.5, False), (4.0, True)])
def test_oscillating_edges_on_swing(swing: float, fires: bool) -> None:
    flat = np.tile([2.0, 2.0 * swing], 30)  # swings around a level that never falls
    assert bool(ids(loss_run(flat), LossOscillating)) is fires


def test_oscillating_needs_swings_larger_than_progress() -> None:
    t = np.linspace(0, 1, 60)
    falling = 5.0 * np.exp(-6 * t) * np.tile([1.0, 2.2], 30)  # swings 2.2x but falls 400x
    assert ids(loss_run(falling), LossOscillating) == []


def test_plateau_fires_on_an_early_stall_far_above_the_start() -> None:
    values = np.r_[np.linspace(2.5, 1.5, 10), np.full(50, 1.5)] * np.exp(0.05 * RNG.standard_normal(60))
    (finding,) = LossPlateau().check(loss_run(values), Context())
    assert finding.step <= 120 and finding.evidence["stalled_fraction"] > 0.7


@pytest.mark.parametrize(("final", "fires"), [(1.0, False), (1.5, True)])
def test_plateau_is_gated_on_convergence(final: float, fires: bool) -> None:
    # the start is the first record, 2.5, so the level floor is 0.125: converged means
    # (final + 0.125) / (2.5 + 0.125) < 0.5, so 1.0 has converged (0.43) and 1.5 has not (0.62)
    values = np.r_[np.linspace(2.5, final, 10), np.full(50, final)]
    assert bool(ids(loss_run(values), LossPlateau)) is fires


@pytest.mark.parametrize("seed", range(5))
def test_small_batch_noise_is_not_oscillation_divergence_or_plateau(seed: int) -> None:
    # per-batch losses spanning a factor of ten (log-sd 0.9) around a falling trend, 300 records
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 300)
    values = (0.1 + 2.2 * np.exp(-6 * t)) * np.exp(0.9 * rng.standard_normal(300))
    run = loss_run(values)
    for rule in (LossDiverging, LossOscillating, LossPlateau):
        assert ids(run, rule) == [], rule


def test_a_fast_warm_up_drop_counts_as_progress() -> None:
    # 2.4 -> 0.6 in the first records, then slow progress to the task's floor at 0.26
    values = np.r_[np.geomspace(2.4, 0.6, 4), np.geomspace(0.6, 0.26, 36)] * np.exp(0.05 * RNG.standard_normal(40))
    assert ids(loss_run(values), LossPlateau) == []


def test_plateau_defers_to_an_eval_curve_that_still_improves() -> None:
    steps = np.arange(1, 61) * 10
    train = 0.25 * np.exp(0.05 * RNG.standard_normal(60))  # a fine-tune: flat from the start
    improving = make_run({"loss/auto": (steps, train), "eval_loss": ([200, 400, 600], [0.30, 0.28, 0.27])})
    stalled = make_run({"loss/auto": (steps, train), "eval_loss": ([200, 400, 600], [0.30, 0.30, 0.30])})
    assert ids(improving, LossPlateau) == []
    assert ids(stalled, LossPlateau) == ["loss.plateau"]


def test_a_real_rise_after_a_noisy_minimum_is_divergence() -> None:
    t = np.linspace(0, 1, 200)
    trend = np.where(t < 0.5, 2.0 * np.exp(-4 * t), 2.0 * np.exp(-2) * np.exp(6 * (t - 0.5)))
    values = trend * np.exp(0.5 * RNG.standard_normal(200))
    assert ids(loss_run(values), LossDiverging) == ["loss.diverging"]


def test_plateau_leaves_a_late_stall_alone() -> None:
    values = np.r_[np.linspace(2.5, 1.2, 40), np.full(20, 1.2)]  # stalls for a third of the run
    assert ids(loss_run(values), LossPlateau) == []


def eval_run(eval_values: list[float], train_end: float = 0.1) -> Run:
    train_steps = np.arange(1, 101) * 10
    train = np.geomspace(2.0, train_end, 100)
    eval_steps = np.arange(1, len(eval_values) + 1) * (1000 // len(eval_values))
    return make_run(
        {"loss/auto": (train_steps, train), "eval_loss": (eval_steps, np.asarray(eval_values))},
        {"batch_size": 32, "train_dataset_size": 32 * 200, "epoch": 5},
    )


@pytest.mark.parametrize(
    ("evals", "fires"),
    [([1.0, 0.8, 0.7, 0.72, 0.8], True), ([1.0, 0.8, 0.7, 0.69, 0.7], False), ([1.0, 0.8, 0.7, 0.9], False)],
)
def test_overfitting_needs_a_sustained_rise(evals: list[float], fires: bool) -> None:
    assert bool(ids(eval_run(evals), MetricOverfitting)) is fires


def test_overfitting_from_the_accuracy_gap() -> None:
    steps = np.arange(1, 51) * 10
    run = make_run({"acc": (steps, np.full(50, 0.99)), "val/acc": (steps[4::10], np.full(5, 0.90))})
    (finding,) = MetricOverfitting().check(run, Context())
    assert finding.evidence["gap"] == pytest.approx(0.09)
    narrow = make_run({"acc": (steps, np.full(50, 0.95)), "val/acc": (steps[4::10], np.full(5, 0.90))})
    assert list(MetricOverfitting().check(narrow, Context())) == []


def test_user_tag_override_is_followed_and_a_wrong_one_is_not_checkable() -> None:
    run = loss_run(np.r_[np.linspace(2.0, 1.0, 30), np.full(30, 3.0)], tag="objective")
    context = Context(tags=TagOverrides(loss="objective"))
    assert [f.id for f in LossDiverging().check(run, context)] == ["loss.diverging"]
    wrong = diagnose(run, context=Context(tags=TagOverrides(loss="nope")))
    entry = next(e for e in wrong.checklist if e.id == "loss.diverging")
    assert entry.status.value == "not-checkable" and "--loss-tag" in entry.reason


@pytest.mark.parametrize("name", ["healthy_mlp", "healthy_cnn", "healthy_regression", "resumed"])
def test_dynamics_stay_quiet_on_healthy_fixtures(fixture_run, name: str) -> None:
    run = fixture_run(name)
    found = [f for f in diagnose(run, select=["loss", "metric"]).findings if f.severity.rank >= 1]
    assert found == []


def test_lr_too_large_fixture_shows_nan_and_divergence(fixture_run) -> None:
    found = {f.id: f for f in diagnose(fixture_run("lr_too_large"), select=["loss"]).findings}
    assert set(found) == {"loss.nan-inf", "loss.diverging"}
    assert found["loss.nan-inf"].step == 7
