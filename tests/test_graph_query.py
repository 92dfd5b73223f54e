"""The graph query helper on real MindSpore 2.10 graphs: parts, weights, reads through Load, updates."""

from __future__ import annotations

import pytest

from summary_doctor.rules._graph import GraphQuery, layer_name, query, training_query, uses_text

REUSED = "Default/network-WithLossCell/_backbone-ReusedBody/body-SequentialCell/0-Dense"
MLP_WEIGHTS = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]


def graph_of(fixture_run, name: str) -> GraphQuery:
    return query(fixture_run(name).graph)


def test_a_training_graph_has_three_parts(fixture_run):
    q = graph_of(fixture_run, "healthy_mlp")
    assert q.is_training
    assert {q.part(n) for n in q.nodes("MatMul")} == {"forward", "gradient"}
    assert len(q.nodes("MatMul", part="forward")) == 3
    assert {q.op(n) for n in q.nodes(part="optimizer")} >= {"ApplyMomentum", "AssignAdd"}
    assert all(q.scope(n) == "Default/optimizer-Momentum" for n in q.nodes("ApplyMomentum"))


def test_weights_are_told_from_graph_inputs_and_optimizer_state(fixture_run):
    q = graph_of(fixture_run, "healthy_mlp")
    assert q.weights == MLP_WEIGHTS
    assert q.graph_inputs == ["inputs0", "inputs1"]
    assert "moments.fc1.weight" not in q.weights and "learning_rate" not in q.weights


def test_a_forward_op_reads_its_weight_through_load(fixture_run):
    q = graph_of(fixture_run, "healthy_mlp")
    [matmul] = [n for n in q.nodes("MatMul", part="forward") if q.scope(n).endswith("fc2-Dense")]
    assert q.op(q.graph.inputs(matmul)[1]) == "Load"
    assert q.reads(matmul) == ["fc2.weight"]
    assert q.readers("fc2.weight") == [matmul]
    assert q.layer_weights("fc2.weight") == [matmul]


def test_each_weight_has_one_update_fed_by_a_gradient(fixture_run):
    q = graph_of(fixture_run, "healthy_mlp")
    assert sorted(q.updated) == sorted(MLP_WEIGHTS)
    assert all(len(nodes) == 1 and q.gradient_fed(nodes[0]) for nodes in q.updated.values())


def test_a_pruned_layer_is_updated_with_a_constant(fixture_run):
    q = graph_of(fixture_run, "mlp_unused_layer_output")
    assert q.readers("fc_aux.weight") == []
    [update] = q.updated["fc_aux.weight"]
    assert not q.gradient_fed(update)
    assert q.graph.is_constant(q.graph.inputs(update)[3])  # ApplyMomentum's gradient input


def test_a_reused_cell_gives_three_readers_in_one_scope(fixture_run):
    q = graph_of(fixture_run, "mlp_sequential_reused_dense")
    readers = q.layer_weights("body.0.weight")
    assert [q.op(n) for n in readers] == ["MatMul"] * 3
    assert {q.scope(n) for n in readers} == {REUSED}
    assert "body.1.weight" not in q.weights


@pytest.mark.parametrize(("name", "keep"), [("mlp_dropout_p09", 0.1), ("healthy_cnn", 0.8)])
def test_dropout_keep_probability_is_a_constant_input(fixture_run, name, keep):
    q = graph_of(fixture_run, name)
    dropouts = q.nodes("Dropout", part="forward")
    assert dropouts
    assert all(q.constant_input(n, 1) == pytest.approx(keep) for n in dropouts)
    assert all(q.graph.node(n)["attributes"].get("keep_prob") is None for n in dropouts)


@pytest.mark.parametrize(("name", "training"), [("healthy_cnn", True), ("cnn_bn_loop_without_set_train", False)])
def test_batch_norm_mode_is_constant_input_5(fixture_run, name, training):
    q = graph_of(fixture_run, name)
    norms = q.nodes("BatchNorm", part="forward")
    assert len(norms) == 2
    assert {q.constant_input(n, 5) for n in norms} == {training}
    assert set(q.graph.nodes.set_index("name").loc[norms, "instance_name"]) == {"bn_train" if training else "bn_infer"}


def test_an_evaluation_graph_has_no_optimizer_part(fixture_run):
    run = fixture_run("mlp_eval_graph_dropout_always_on")
    q = query(run.graph)
    assert not q.is_training and q.updates == {}
    assert training_query(run) is None
    assert q.graph_inputs == ["data", "label"]


def test_learning_rate_schedules_belong_to_the_optimizer(fixture_run):
    q = graph_of(fixture_run, "healthy_sgd_schedule")
    [gather] = q.nodes("Gather")
    assert q.reads(gather) == ["learning_rate", "global_step"] and q.part(gather) == "optimizer"
    assert "learning_rate" not in q.weights
    q = graph_of(fixture_run, "healthy_embedding")
    schedule = [n for n in q.nodes() if "WarmupLinearDecay" in q.scope(n)]
    assert schedule and {q.part(n) for n in schedule} == {"optimizer"}


def test_source_sees_through_tuple_get_item_and_reshape(fixture_run):
    q = graph_of(fixture_run, "healthy_tied_embedding_lm")
    [loss] = q.nodes("SparseSoftmaxCrossEntropyWithLogits", part="forward")
    assert q.op(q.input_source(loss, 0)) == "MatMul"
    assert q.input_source(loss, 1) == "inputs1"  # labels, seen through the Reshape


def test_names_for_messages(fixture_run):
    q = graph_of(fixture_run, "mlp_sequential_reused_dense")
    assert layer_name("Default/network-WithLossCell/_backbone-MLP/fc2-Dense") == "fc2 (Dense)"
    text = uses_text(q, q.layer_weights("body.0.weight") + q.layer_weights("body.0.bias"))
    assert text == f"3 MatMul and 3 BiasAdd in {REUSED}"


def test_query_is_shared_per_graph(fixture_run):
    graph = fixture_run("healthy_mlp").graph
    assert query(graph) is query(graph)
