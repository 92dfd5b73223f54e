"""The graph evidence plots: each graph finding draws its own subgraph, never the failure image."""

from __future__ import annotations

import logging

import pytest

from summary_doctor.engine import diagnose
from summary_doctor.report.plots import choose, finding_png, graph
from summary_doctor.rules._graph import query

FAULTS = [
    "mlp_sequential_reused_dense",
    "mlp_ensemble_heads_same_init",
    "mlp_optimizer_skips_fc2",
    "mlp_unused_layer_output",
    "cnn_bn_loop_without_set_train",
    "mlp_eval_graph_dropout_always_on",
    "mlp_softmax_before_crossentropyloss",
    "regression_mse_label_broadcast",
    "mlp_ops_dropout_p09",
    "mlp_batch_std_div_zero",
]


def graph_findings(run):
    return [f for f in diagnose(run).findings if f.id.startswith(("graph.", "api."))]


@pytest.mark.parametrize("name", FAULTS)
def test_every_graph_finding_is_drawn(fixture_run, name, caplog):
    run = fixture_run(name)
    found = graph_findings(run)
    assert found
    with caplog.at_level(logging.WARNING):
        for finding in found:
            assert finding_png(run, finding).startswith(b"\x89PNG")
    assert "could not draw" not in caplog.text


def test_sharing_draws_the_parameters_and_all_their_readers(fixture_run):
    run = fixture_run("mlp_sequential_reused_dense")
    [finding] = graph_findings(run)
    q = query(run.graph)
    members, edges, focus = graph._members(q, finding)
    assert focus == {"body.0.weight", "body.0.bias"}
    assert sorted(q.op(m) for m in members if q.op(m)) == ["BiasAdd"] * 3 + ["MatMul"] * 3
    assert len(edges) == 6


def test_loss_drawing_shows_the_softmax_between_layer_and_loss(fixture_run):
    run = fixture_run("mlp_softmax_before_crossentropyloss")
    [finding] = [f for f in graph_findings(run) if f.id == "graph.loss-function"]
    q = query(run.graph)
    members, edges, focus = graph._members(q, finding)
    assert [q.op(m) for m in members] == ["BiasAdd", "Softmax", "ReduceMax"]
    assert {q.op(n) for n in focus} == {"Softmax"}
    assert len(edges) == 2


def test_copies_are_drawn_as_histograms_and_divisions_with_the_loss(fixture_run):
    run = fixture_run("mlp_ensemble_heads_same_init")
    [finding] = graph_findings(run)
    figure = choose(finding)(run, finding)
    assert [a.get_title(loc="left") for a in figure.axes[:2]] == ["heads.0.weight/auto", "heads.1.weight/auto"]
    run = fixture_run("mlp_batch_std_div_zero")
    [finding] = graph_findings(run)
    figure = choose(finding)(run, finding)
    assert figure.axes[0].get_ylabel() == "loss/auto"
