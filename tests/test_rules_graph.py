"""The graph rules on real MindSpore 2.10 fault fixtures, their healthy traps, and hand-built edge cases."""

from __future__ import annotations

import pytest
from builders import graph_event, graph_proto, scalar_event, summary_name, version_event, write_events

from summary_doctor.engine import diagnose
from summary_doctor.findings import Severity, Status
from summary_doctor.reader.run import read_run
from summary_doctor.rules.api import DivNoNan, DropoutKeepProb
from summary_doctor.rules.base import Context
from summary_doctor.rules.graph import GraphWeightFreezing, WeightFreezing
from summary_doctor.rules.graph_loss import LossFunction
from summary_doctor.rules.graph_sharing import WeightSharing
from summary_doctor.rules.graph_structure import NodeConnection, NodeMode

RULES = [WeightSharing, GraphWeightFreezing, NodeConnection, NodeMode, LossFunction, DropoutKeepProb, DivNoNan]
IDS = [r.ids[0] for r in RULES]
#: Healthy runs with a graph, and the traps they hold for these rules.
HEALTHY = [
    "healthy_mlp",
    "healthy_cnn",  # BatchNorm in training mode, Dropout keep 0.8
    "healthy_regression",
    "healthy_finetune",
    "healthy_long",  # MSELoss: a RealDiv in the gradient
    "healthy_embedding",  # a Gather, a RealDiv, an lr schedule with Divs
    "healthy_sgd_schedule",  # a Gather on the learning rate
    "resumed",
    "ranks/rank_0",
    "healthy_tied_embedding_lm",  # tied embedding: info
    "healthy_cnn_frozen_backbone",  # frozen prefix, good loss: info
    "healthy_mlp_dropout_l2norm",  # keep 0.5 and 0.9, a computed Div, CrossEntropyLoss's own Divs
]


def findings(rule, run):
    assert rule.requirements(run, Context()) is None
    return list(rule.check(run, Context()))


def problems(rule, run):
    return [f for f in findings(rule, run) if f.severity is not Severity.INFO]


@pytest.mark.parametrize("name", HEALTHY)
@pytest.mark.parametrize("rule", RULES)
def test_quiet_on_healthy_runs(fixture_run, name, rule):
    assert problems(rule(), fixture_run(name)) == []


@pytest.mark.parametrize("name", [*HEALTHY[:9], "mlp_dropout_p09", "lr_too_large", "exploding_gradient"])
def test_checklist_says_ok_or_problem_whenever_a_graph_was_recorded(fixture_run, name):
    checklist = {e.id: e.status for e in diagnose(fixture_run(name)).checklist}
    assert all(checklist[i] in (Status.OK, Status.PROBLEM) for i in IDS)


def test_not_checkable_without_a_graph(fixture_run):
    entries = {e.id: e for e in diagnose(fixture_run("healthy_custom_tags")).checklist}
    for symptom in IDS:
        if symptom == "graph.weight-freezing":  # its histogram side still checks the recorded weights
            assert entries[symptom].status is Status.OK
            continue
        assert entries[symptom].status is Status.NOT_CHECKABLE
        assert "collect_graph" in entries[symptom].enable


# --- graph.weight-sharing ---------------------------------------------------------------------


def test_sharing_of_a_reused_cell(fixture_run):
    [finding] = findings(WeightSharing(), fixture_run("mlp_sequential_reused_dense"))
    assert finding.severity is Severity.WARNING
    assert finding.tags == ("body.0.weight", "body.0.bias")
    assert finding.evidence["kind"] == "reused-cell"
    assert finding.title == "body.0.weight, body.0.bias: one layer (0 (Dense)) applied 3 times"
    assert "body-SequentialCell/0-Dense" in finding.message and "--ignore graph.weight-sharing" in finding.message


def test_sharing_across_layers(fixture_run):
    [finding] = findings(WeightSharing(), fixture_run("mlp_fc3_weight_assigned_fc2"))
    assert (finding.severity, finding.tags) == (Severity.WARNING, ("fc2.weight",))
    assert finding.evidence["kind"] == "across-layers"
    assert [u["scope"].rsplit("/", 1)[-1] for u in finding.evidence["users"]] == ["fc2-Dense", "fc3-Dense"]


def test_tied_embedding_is_info(fixture_run):
    [finding] = findings(WeightSharing(), fixture_run("healthy_tied_embedding_lm"))
    assert (finding.severity, finding.evidence["kind"]) == (Severity.INFO, "tied-embedding")
    assert [u["op"] for u in finding.evidence["users"]] == ["Gather", "MatMul"]


def test_identical_copies_from_histograms(fixture_run):
    [finding] = findings(WeightSharing(), fixture_run("mlp_ensemble_heads_same_init"))
    assert finding.severity is Severity.WARNING
    assert finding.evidence == {
        "kind": "identical-copies",
        "parameters": ["heads.0.weight", "heads.1.weight"],
        "common_records": 25,
    }


# --- graph.weight-freezing (graph side) --------------------------------------------------------


def test_a_frozen_layer_behind_a_trained_one_is_a_warning(fixture_run):
    [finding] = findings(GraphWeightFreezing(), fixture_run("mlp_optimizer_skips_fc2"))
    assert finding.severity is Severity.WARNING
    assert finding.tags == ("fc2.weight", "fc2.bias")
    assert finding.evidence["trained_upstream"] == {"fc2.weight": ["fc1.weight"]}
    assert finding.evidence["frozen_values"] == 32 * 64 + 32
    assert "hole in the middle" in finding.message


def test_a_frozen_backbone_with_a_good_loss_is_info(fixture_run):
    [finding] = findings(GraphWeightFreezing(), fixture_run("healthy_cnn_frozen_backbone"))
    assert finding.severity is Severity.INFO
    assert finding.tags == ("conv1.weight", "conv2.weight")
    assert finding.evidence["trained_upstream"] == {}
    assert finding.evidence["frozen_values"] == 8 * 9 + 16 * 8 * 9
    assert "frozen backbone" in finding.message


def test_a_frozen_backbone_is_a_warning_when_it_is_most_of_the_network(fixture_run):
    [finding] = findings(GraphWeightFreezing(most_frozen=0.05), fixture_run("healthy_cnn_frozen_backbone"))
    assert finding.severity is Severity.WARNING
    assert "most of the network is frozen" in finding.message


def test_frozen_by_an_lr_0_group_is_left_to_the_histograms(fixture_run):
    run = fixture_run("mlp_frozen_by_optimizer")
    assert findings(GraphWeightFreezing(), run) == []
    assert [f.severity for f in findings(WeightFreezing(), run)] == [Severity.WARNING]


def test_histogram_side_leaves_gradientless_parameters_to_node_connection(fixture_run):
    assert findings(WeightFreezing(), fixture_run("mlp_unused_layer_output")) == []


def test_graph_freezing_needs_a_training_graph(fixture_run):
    missing = GraphWeightFreezing().requirements(fixture_run("mlp_eval_graph_dropout_always_on"), Context())
    assert missing is not None and "evaluation graph" in missing.reason


# --- graph.node-connection ----------------------------------------------------------------------


def test_a_layer_whose_output_is_unused_gets_no_gradient(fixture_run):
    [finding] = findings(NodeConnection(), fixture_run("mlp_unused_layer_output"))
    assert finding.severity is Severity.WARNING
    assert finding.tags == ("fc_aux.weight", "fc_aux.bias")
    assert finding.evidence["not_read_by_forward"] == ["fc_aux.weight", "fc_aux.bias"]
    assert "pruned" in finding.message


# --- graph.node-mode ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cnn_bn_loop_without_set_train", "cnn_bn_use_batch_statistics_false"])
def test_batch_norm_in_inference_mode_while_training(fixture_run, name):
    [finding] = findings(NodeMode(), fixture_run(name))
    assert finding.severity is Severity.WARNING
    assert [s.rsplit("/", 1)[-1] for s in finding.evidence["layers"]] == ["bn1-BatchNorm2d", "bn2-BatchNorm2d"]
    assert finding.evidence["training_graph"] is True


def test_dropout_in_an_evaluation_graph(fixture_run):
    [finding] = findings(NodeMode(), fixture_run("mlp_eval_graph_dropout_always_on"))
    assert finding.evidence == {
        "training_graph": False,
        "layers": ["Default/network-WithLossCell/_backbone-AlwaysDropoutMLP"],
        "graph_nodes": ["6"],
    }


# --- graph.loss-function --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "loss", "fed_by"),
    [
        ("cnn_softmax_before_ce", "SparseSoftmaxCrossEntropyWithLogits", "Softmax"),
        ("mlp_softmax_before_crossentropyloss", "CrossEntropyLoss", "Softmax"),
        ("mlp_sigmoid_before_bcewithlogits", "BCEWithLogitsLoss", "Sigmoid"),
        ("mlp_nllloss_on_logits", "NLLLoss", "BiasAdd"),
    ],
)
def test_loss_fed_the_wrong_kind_of_prediction(fixture_run, name, loss, fed_by):
    [finding] = findings(LossFunction(), fixture_run(name))
    assert finding.severity is Severity.ERROR
    assert (finding.evidence["loss"], finding.evidence["fed_by"]["op"]) == (loss, fed_by)


def test_nll_on_logits_mentions_the_negative_loss(fixture_run):
    [finding] = findings(LossFunction(), fixture_run("mlp_nllloss_on_logits"))
    assert finding.evidence["lowest_loss"] < 0 and "below 0" in finding.message


def test_prediction_and_labels_broadcast(fixture_run):
    [finding] = findings(LossFunction(), fixture_run("regression_mse_label_broadcast"))
    assert finding.severity is Severity.ERROR
    assert (finding.evidence["input_shapes"], finding.evidence["output_shape"]) == ([[32, 1], [32]], [32, 32])


# --- api.dropout-keep-prob -----------------------------------------------------------------------


def test_nn_dropout_p09_keeps_a_tenth(fixture_run):
    found = findings(DropoutKeepProb(), fixture_run("mlp_dropout_p09"))
    assert [f.evidence["scope"].rsplit("/", 1)[-1] for f in found] == ["drop1-Dropout", "drop2-Dropout"]
    assert all(f.evidence["keep_prob"] == pytest.approx(0.1) and f.severity is Severity.WARNING for f in found)
    assert "p=0.1" in found[0].message


def test_ops_dropout_in_the_calling_cells_scope(fixture_run):
    [finding] = findings(DropoutKeepProb(), fixture_run("mlp_ops_dropout_p09"))
    assert finding.evidence["scope"] == "Default/network-WithLossCell/_backbone-OpsDropoutMLP"


# --- api.div-no-nan --------------------------------------------------------------------------------


def test_a_division_by_a_zero_std(fixture_run):
    [finding] = findings(DivNoNan(), fixture_run("mlp_batch_std_div_zero"))
    assert finding.severity is Severity.ERROR
    assert finding.step == 115
    assert finding.evidence["divisions"] == [
        {"op": "Div", "scope": "Default/network-WithLossCell/_backbone-StandardisedMLP"}
    ]


@pytest.mark.parametrize("name", ["mlp_nllloss_on_logits", "lr_too_large", "exploding_gradient", "mlp_dropout_p09"])
def test_no_division_blamed_for_a_blow_up(fixture_run, name):
    """NLLLoss holds Divs with a computed divisor, but its loss ran to -1e8 before the NaN."""
    assert findings(DivNoNan(), fixture_run(name)) == []


# --- hand-built graphs: MindSpore 1.x names and ops a CPU fixture cannot produce -------------------

NET = "Default/network-WithLossCell/_backbone-Net"
OPT = "Default/optimizer-Momentum"


def hand_built(tmp_path, nodes, *, constants=None, attributes=None, losses=(1.0, 0.9, 0.8)):
    parameters = {"inputs0": (4, 3), "inputs1": (4, 1), "fc.weight": (1, 3), "moments.fc.weight": (1, 3)}
    graph = graph_proto(nodes, parameters=parameters, constants=constants, attributes=attributes)
    events = [version_event(), graph_event(graph)]
    events += [scalar_event(step, "loss/auto", value) for step, value in enumerate(losses, 1)]
    write_events(tmp_path / summary_name(), events)
    return read_run(tmp_path)


TRAINING = [
    ("1", "Load", NET, ["fc.weight", "cst9"]),
    ("2", "MatMul", f"{NET}/fc-Dense", ["inputs0", "1"]),
    ("90", "MatMul", f"Gradients/{NET}/fc-Dense/Grad_MatMul", ["inputs0", "2"]),
    ("91", "ApplyMomentum", OPT, ["fc.weight", "moments.fc.weight", "cst9", "90"]),
]


def test_mindspore_1x_dropout_keep_prob_attribute(tmp_path):
    nodes = [*TRAINING, ("3", "Dropout", f"{NET}/drop-Dropout", ["2"])]
    run = hand_built(tmp_path, nodes, attributes={"3": {"keep_prob": 0.2}})
    [finding] = findings(DropoutKeepProb(), run)
    assert finding.evidence["keep_prob"] == pytest.approx(0.2)


def test_mindspore_1x_dropout_gen_mask_keeps_its_probability_in_input_1(tmp_path):
    nodes = [*TRAINING, ("3", "DropoutGenMask", f"{NET}/drop-Dropout", ["cst1", "cst2"])]
    run = hand_built(tmp_path, nodes, constants={"cst1": 4, "cst2": 0.5})
    assert findings(DropoutKeepProb(), run) == []  # keep 0.5: classic dropout


def test_mindspore_1x_batch_norm_is_training_attribute(tmp_path):
    nodes = [*TRAINING, ("3", "BatchNorm", f"{NET}/bn-BatchNorm1d", ["2", "cst1"])]
    run = hand_built(tmp_path, nodes, attributes={"3": {"is_training": False}})
    [finding] = findings(NodeMode(), run)
    assert finding.evidence["layers"] == [f"{NET}/bn-BatchNorm1d"]


@pytest.mark.parametrize(
    ("producer", "loss", "severity"),
    [
        ("BiasAdd", "BinaryCrossEntropy", Severity.ERROR),  # BCELoss on raw scores (the CPU kernel refuses it)
        ("LogSoftmax", "SparseSoftmaxCrossEntropyWithLogits", Severity.INFO),  # idempotent: redundant only
        ("Sigmoid", "BinaryCrossEntropy", None),  # BCELoss on probabilities: right
    ],
)
def test_loss_producer_pairs(tmp_path, producer, loss, severity):
    nodes = [*TRAINING, ("3", producer, f"{NET}/out-X", ["2"]), ("4", loss, f"{NET[:-14]}_loss_fn-L", ["3", "inputs1"])]
    found = findings(LossFunction(), hand_built(tmp_path, nodes))
    assert [f.severity for f in found] == ([severity] if severity else [])


@pytest.mark.parametrize(("divisor_op", "blamed"), [("Sqrt", True), ("Add", False)])
def test_divisions_guarded_by_an_epsilon_are_not_blamed(tmp_path, divisor_op, blamed):
    nodes = [
        *TRAINING,
        ("3", divisor_op, NET, ["2", "cst1"]),
        ("4", "Div", NET, ["2", "3"]),
    ]
    run = hand_built(tmp_path, nodes, constants={"cst1": 1e-6}, losses=(1.0, 0.9, float("nan")))
    assert len(findings(DivNoNan(), run)) == int(blamed)
