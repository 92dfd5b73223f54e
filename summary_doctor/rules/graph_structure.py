"""Computation graph: parameters cut off from the loss, and BatchNorm/Dropout in the wrong mode.

Both read what MindSpore compiled rather than what the code says: in
GRAPH_MODE a layer whose output is unused is pruned from the forward graph
(its optimizer update then reads a constant instead of a gradient), and a
BatchNorm compiled for inference says so in its ``is_training`` input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules import _graph
from summary_doctor.rules import _graph_ops as graph_ops
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register

BATCH_NORMS = ("BatchNorm", "BatchNormWithActivation", "BatchNormWithAddAndActivation", "SyncBatchNorm")
#: Dropout ops of MindSpore 2.x (Dropout, Dropout2D/3D) and 1.x (DropoutGenMask + DropoutDoMask).
DROPOUTS = ("Dropout", "Dropout2D", "Dropout3D", "DropoutGenMask", "DropoutDoMask", "DropoutExt")
#: BatchNorm's ``is_training`` is input 5 in MindSpore 2.x (an attribute in 1.x).
IS_TRAINING_INPUT = 5


@register
@dataclass
class NodeConnection(Rule):
    """Trained parameters that receive no gradient: their layer never reaches the loss.

    What it detects: an optimizer update node (ApplyMomentum, Adam, ...) whose
    inputs come from no node of the gradient part of the graph, i.e. the
    parameter is updated with a constant instead of a gradient; and whether
    any forward op reads that parameter at all. One finding per run names the
    parameters, their update nodes and the layers they belong to.
    Why it matters: a layer that is computed but whose output reaches no loss
    (or a layer that is defined but never called) never learns; the network is
    not the one that was designed (checklist cg.03, node connections).
    Typical causes: a branch whose result is dropped (``aux = self.fc_aux(h)``
    and ``aux`` never used), a layer created in ``__init__`` and not called in
    ``construct``, ``ops.stop_gradient`` on the only path to the loss.
    How to fix: use the output where it was meant to go, or delete the layer
    (and leave it out of the optimizer).
    Thresholds: none. In MindSpore 2.x GRAPH_MODE an unused output is pruned
    from the forward graph and its update node is fed a constant: a fact of the
    compiled graph, not a measurement, so any such parameter is reported.
    """

    ids = ("graph.node-connection",)

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return _graph.missing_graph(run)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        q = _graph.training_query(run)
        cut = {n: p for n, p in q.updates.items() if q.op(n) in graph_ops.UPDATE_OPS and not q.gradient_fed(n)}
        if not cut:
            return
        parameters = [p for p in q.weights if p in set(cut.values())]
        unread = [p for p in parameters if not q.readers(p)]
        read = [p for p in parameters if p not in unread]
        yield make_finding(
            self,
            run,
            Severity.WARNING,
            f"{', '.join(parameters[:3])}{' ...' if len(parameters) > 3 else ''} receive no gradient",
            _connection_message(q, cut, unread, read),
            tags=tuple(parameters),
            hint=(
                "Use the layer's output on the way to the loss (or delete the layer and leave its parameters out "
                "of the optimizer); check for ops.stop_gradient on the path."
            ),
            evidence={
                "parameters": parameters,
                "not_read_by_forward": unread,
                "updates": {p: _graph.where(q, n) for n, p in cut.items()},
                "graph_nodes": [n for p in parameters for n, target in cut.items() if target == p],
            },
        )


def _connection_message(q: _graph.GraphQuery, cut: dict[str, str], unread: list[str], read: list[str]) -> str:
    update = _graph.where(q, next(iter(cut)))
    text = (
        f"The optimizer updates {', '.join(dict.fromkeys(cut.values()))} ({update}), but those updates are fed "
        "no gradient: nothing in the gradient part of the graph reaches them, so the parameters never change."
    )
    if unread:
        text += (
            f" No forward op reads {', '.join(unread)}: the layer's output is unused, so MindSpore pruned it from "
            "the graph (or the layer is never called in construct)."
        )
    if read:
        text += f" {', '.join(read)} {'is' if len(read) == 1 else 'are'} read, but the gradient is stopped before them."
    return text


@register
@dataclass
class NodeMode(Rule):
    """BatchNorm compiled for inference in a training graph; Dropout left on in an evaluation graph.

    What it detects: in a training graph (one with a gradient or optimizer
    part), BatchNorm ops whose ``is_training`` is false (MindSpore 2.x: the
    constant input 5; 1.x: the attribute; instance name ``bn_infer``). In an
    evaluation graph (no gradient, no optimizer), Dropout ops, and BatchNorm
    ops in training mode. One finding per graph names the layers by scope.
    Why it matters: a BatchNorm that never uses batch statistics in training
    normalises with moving statistics that never update (mean 0, variance 1):
    it is no normalisation at all. Dropout at evaluation makes predictions
    random and the reported metrics pessimistic (checklist cg.04).
    Typical causes: a hand-written training loop without ``net.set_train()``
    (cells start with ``training=False``; only ``Model.train`` switches them),
    ``BatchNorm2d(use_batch_statistics=False)``, ``ops.dropout(x, p)`` without
    ``training=self.training`` (its default is True), an evaluation without
    ``net.set_train(False)``.
    How to fix: call ``net.set_train()`` before training and
    ``net.set_train(False)`` before evaluating; leave ``use_batch_statistics``
    at its default; pass ``training=self.training`` to ``ops.dropout``.
    Thresholds: none: the mode is a compiled fact. MindSpore 2.x writes no node
    for ``nn.Dropout`` in evaluation mode, so a Dropout node in an evaluation
    graph is always active.
    """

    ids = ("graph.node-mode",)

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return _graph.missing_graph(run, training=False)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        seen: set[tuple[str, ...]] = set()
        for q in _graph.graphs(run):
            wrong = _wrong_mode_nodes(q)
            key = (str(q.is_training), *sorted(q.scope(n) for n in wrong))
            if wrong and key not in seen:
                seen.add(key)
                yield self._finding(run, q, wrong)

    def _finding(self, run: Run, q: _graph.GraphQuery, wrong: list[str]) -> Finding:
        layers = [q.scope(n) for n in wrong]
        if q.is_training:
            title = f"BatchNorm in inference mode while training ({len(wrong)} layer{'s' * (len(wrong) > 1)})"
            message = (
                f"In the training graph, {_graph.uses_text(q, wrong)} {'is' if len(wrong) == 1 else 'are'} compiled "
                "with is_training=False: they normalise with moving statistics that are never updated instead of "
                "batch statistics. A hand-written loop without net.set_train() does this (cells start in "
                "evaluation mode; only Model.train switches them), and so does use_batch_statistics=False."
            )
        else:
            title = f"{q.op(wrong[0])} active in the evaluation graph"
            message = (
                f"The evaluation graph (no gradient, no optimizer) holds {_graph.uses_text(q, wrong)}: "
                "evaluation results are random (Dropout) or use batch statistics (BatchNorm in training mode). "
                "ops.dropout(x, p) without training=self.training, or an evaluation without net.set_train(False), "
                "does this."
            )
        return make_finding(
            self,
            run,
            Severity.WARNING,
            title,
            message,
            hint=(
                "Call net.set_train() before training and net.set_train(False) before evaluating; keep "
                "use_batch_statistics at its default; pass training=self.training to ops.dropout."
            ),
            evidence={"training_graph": q.is_training, "layers": layers, "graph_nodes": wrong},
        )


def _wrong_mode_nodes(q: _graph.GraphQuery) -> list[str]:
    """BatchNorms not training in a training graph; Dropouts and training BatchNorms in an evaluation graph."""
    norms = q.nodes(*BATCH_NORMS, part="forward")
    if q.is_training:
        return [n for n in norms if batch_norm_training(q, n) is False]
    return q.nodes(*DROPOUTS, part="forward") + [n for n in norms if batch_norm_training(q, n) is True]


def batch_norm_training(q: _graph.GraphQuery, node: str) -> bool | None:
    """Whether a BatchNorm node normalises with batch statistics (None when the graph does not say)."""
    value = q.constant_input(node, IS_TRAINING_INPUT)
    if isinstance(value, bool):
        return value
    attributes = q.graph.node(node)["attributes"]
    if isinstance(attributes.get("is_training"), bool):
        return attributes["is_training"]
    instance = q.graph.node(node)["instance_name"]
    return {"bn_train": True, "bn_infer": False}.get(instance)
