"""The whole CLI on every fixture: the warning/error ids must be exactly the expected ones.

Healthy fixtures must show nothing; each fault fixture shows its symptoms. A
fixture not generated yet is skipped; a fixture without an entry fails, so the
table grows with the fixtures.
"""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES

from summary_doctor.cli import main
from summary_doctor.reader.files import find_runs

EXPECTED: dict[str, set[str]] = {
    "healthy_mlp": set(),
    "healthy_cnn": set(),
    "healthy_regression": set(),
    "resumed": set(),
    "ranks/rank_0": set(),
    "ranks/rank_1": set(),
    "healthy_sgd_schedule": set(),
    "healthy_custom_tags": set(),
    "healthy_finetune": set(),
    "healthy_long": set(),
    "healthy_embedding": set(),
    "lr_too_large": {
        "loss.nan-inf",
        "loss.diverging",
        "hparam.lr-too-large",
        "weight.overflow",
        "weight.update-ratio",
    },
    "lr_too_small": {"hparam.lr-too-small", "loss.plateau", "weight.update-ratio"},
    "too_few_epochs": {"hparam.too-few-epochs"},
    "batch_too_large": {"hparam.batch-too-large"},
    "zero_init": {"init.all-zero"},
    "frozen_layer": {"graph.weight-freezing"},
    "oscillating": {"loss.oscillating", "hparam.lr-too-large"},
    # 64 samples for a 400k-parameter MLP, with the eval loss turning up
    "overfitting": {"metric.overfitting", "hparam.too-many-epochs", "dataset.too-few-samples"},
    # random labels: a stall with healthy updates and no other cause
    "plateau": {"loss.plateau", "dataset.label-errors"},
    "dead_relu": {"activation.dead", "loss.plateau"},
    "vanishing_gradient": {"gradient.vanishing", "loss.plateau"},
    "exploding_gradient": {"gradient.exploding", "loss.nan-inf", "weight.overflow", "weight.update-ratio"},
    # the loss spikes, the ReLUs die and it sits at ln 10: a stall with large updates
    "cnn_lr_too_large_adam": {"hparam.lr-too-large", "loss.plateau"},
    "cnn_zero_init_conv": {"init.all-zero"},
    "overfit_val_tags": {"metric.overfitting", "hparam.too-many-epochs"},
    "cnn_dead_relu_bn": {"activation.dead", "loss.plateau", "weight.update-ratio"},
    "mlp_frozen_by_optimizer": {"graph.weight-freezing"},
    "label_noise_plateau_cnn": {"loss.plateau", "dataset.label-errors"},
    # NaN in 3 samples: the loss and the weights turn NaN at the first NaN batch
    "mlp_input_nan": {"dataset.missing-values", "loss.nan-inf", "weight.overflow"},
    # a 1e4 spike: the loss is Inf in the batches that hold it
    "mlp_input_spike_outliers": {"dataset.outliers", "loss.nan-inf"},
    "mlp_heavy_tailed_features": set(),
    "mlp_class_imbalance_20to1": {"dataset.class-imbalance"},
    "mlp_mild_imbalance_class_weights": set(),
    # 0..255 pixels: Inf loss at the first forward pass, huge first updates, then a dead network at ln 10
    "cnn_raw_pixels_unnormalized": {
        "preprocess.not-normalized",
        "loss.nan-inf",
        "loss.plateau",
        "hparam.lr-too-large",
        "weight.update-ratio",
    },
    "cnn_pixels_scaled_unit": set(),
    # batches of one class at a time: the loss swings at every class change
    "mlp_sorted_no_shuffle": {"preprocess.no-shuffle", "loss.oscillating"},
    "mlp_eval_missing_normalize": {"preprocess.train-eval-mismatch"},
    "mlp_eval_same_pipeline": set(),
    # init.rank-mismatch is a cross-run finding: tests/test_rules_ranks.py audits the parent folders
    "ranks_seed_mismatch/rank_0": set(),
    "ranks_seed_mismatch/rank_1": set(),
    "ranks_same_init_sharded/rank_0": set(),
    "ranks_same_init_sharded/rank_1": set(),
}


def _fixture_names() -> list[str]:
    if not FIXTURES.exists():
        return []
    return sorted(path.relative_to(FIXTURES).as_posix() for path in find_runs(FIXTURES))


def _problem_ids(capsys: pytest.CaptureFixture[str], name: str) -> tuple[set[str], int]:
    status = main([str(FIXTURES / name), "--format", "json", "--fail-on", "never"])
    document = json.loads(capsys.readouterr().out)
    (run,) = document["runs"]
    return {f["id"] for f in run["findings"] if f["severity"] in ("warning", "error")}, status


@pytest.mark.parametrize("name", _fixture_names())
def test_fixture_shows_exactly_its_symptoms(capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert name in EXPECTED, f"fixture {name} has no row in EXPECTED: add what it should show"
    found, status = _problem_ids(capsys, name)
    assert status == 0
    assert found == EXPECTED[name]
