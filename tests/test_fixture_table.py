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
    "overfitting": {"metric.overfitting", "hparam.too-many-epochs"},
    "plateau": {"loss.plateau"},
    "dead_relu": {"activation.dead", "loss.plateau"},
    "vanishing_gradient": {"gradient.vanishing", "loss.plateau"},
    "exploding_gradient": {"gradient.exploding", "loss.nan-inf", "weight.overflow", "weight.update-ratio"},
    # the loss spikes, the ReLUs die and it sits at ln 10: a stall with large updates
    "cnn_lr_too_large_adam": {"hparam.lr-too-large", "loss.plateau"},
    "cnn_zero_init_conv": {"init.all-zero"},
    "overfit_val_tags": {"metric.overfitting", "hparam.too-many-epochs"},
    "cnn_dead_relu_bn": {"activation.dead", "loss.plateau", "weight.update-ratio"},
    "mlp_frozen_by_optimizer": {"graph.weight-freezing"},
    "label_noise_plateau_cnn": {"loss.plateau"},
    # the graph rules: one fault per fixture, and healthy runs holding their traps
    "healthy_tied_embedding_lm": set(),  # tied embedding: graph.weight-sharing info only
    "healthy_cnn_frozen_backbone": set(),  # frozen prefix, good loss: graph.weight-freezing info only
    "healthy_mlp_dropout_l2norm": set(),  # Dropout keep 0.5/0.9, BatchNorm training, Divs with a finite loss
    "mlp_sequential_reused_dense": {"graph.weight-sharing"},
    "mlp_fc3_weight_assigned_fc2": {"graph.weight-sharing"},
    "mlp_ensemble_heads_same_init": {"graph.weight-sharing"},
    "mlp_optimizer_skips_fc2": {"graph.weight-freezing"},
    "mlp_unused_layer_output": {"graph.node-connection"},
    "cnn_bn_loop_without_set_train": {"graph.node-mode"},
    "cnn_bn_use_batch_statistics_false": {"graph.node-mode"},
    "mlp_eval_graph_dropout_always_on": {"graph.node-mode"},
    "cnn_softmax_before_ce": {"graph.loss-function"},
    # the loss floor ln(1 + 3/e) = 0.74 (4 classes), and sigmoid(sigmoid(x)) > 0.5, stall the loss
    "mlp_softmax_before_crossentropyloss": {"graph.loss-function", "loss.plateau"},
    "mlp_sigmoid_before_bcewithlogits": {"graph.loss-function", "loss.plateau"},
    # an unbounded loss: the weights run away until they overflow, which the lr rules read as too large a step
    "mlp_nllloss_on_logits": {
        "graph.loss-function",
        "hparam.lr-too-large",
        "loss.nan-inf",
        "weight.overflow",
        "weight.update-ratio",
    },
    "regression_mse_label_broadcast": {"graph.loss-function", "loss.plateau"},  # it can only learn the batch mean
    "mlp_dropout_p09": {"api.dropout-keep-prob", "loss.nan-inf"},  # outputs scaled 10x: Inf cross-entropy at step 10
    "mlp_ops_dropout_p09": {"api.dropout-keep-prob"},
    "mlp_batch_std_div_zero": {"api.div-no-nan", "loss.nan-inf", "weight.overflow"},
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
