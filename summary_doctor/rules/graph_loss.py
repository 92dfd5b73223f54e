"""Computation graph: a loss fed what it does not expect (probabilities for logits and back), or broadcast labels.

A loss is found two ways: as one op (``SparseSoftmaxCrossEntropyWithLogits``,
``BCEWithLogitsLoss``, ``BinaryCrossEntropy``, ``NLLLoss``), or as the scope of
a loss cell whose primitives MindSpore expands in place (``nn.CrossEntropyLoss``
and ``nn.NLLLoss`` have no op of their own: ``.../_loss_fn-CrossEntropyLoss``
holds ReduceMax, Exp, Log, GatherD ...). What feeds it is the first op outside
that scope, seen through reshapes and casts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules import _graph
from summary_doctor.rules import _graph_ops as graph_ops
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register
from summary_doctor.rules.tags import curve

#: What each loss expects as its prediction input.
LOGITS, SIGMOID_LOGITS, LOG_PROBS, PROBS, VALUES = (
    "logits",
    "sigmoid-logits",
    "log-probabilities",
    "probabilities",
    "values",
)
LOSS_OPS = {
    "SparseSoftmaxCrossEntropyWithLogits": LOGITS,
    "SoftmaxCrossEntropyWithLogits": LOGITS,
    "CrossEntropy": LOGITS,
    "BCEWithLogitsLoss": SIGMOID_LOGITS,
    "SigmoidCrossEntropyWithLogits": SIGMOID_LOGITS,
    "BinaryCrossEntropy": PROBS,
    "NLLLoss": LOG_PROBS,
}
LOSS_CELLS = {
    "SoftmaxCrossEntropyWithLogits": LOGITS,
    "CrossEntropyLoss": LOGITS,
    "BCEWithLogitsLoss": SIGMOID_LOGITS,
    "NLLLoss": LOG_PROBS,
    "BCELoss": PROBS,
    "MSELoss": VALUES,
    "L1Loss": VALUES,
    "SmoothL1Loss": VALUES,
    "HuberLoss": VALUES,
    "RMSELoss": VALUES,
    "MAELoss": VALUES,
}
#: Ops that produce raw scores (no squashing): a Dense/conv layer's output.
RAW = frozenset({"MatMul", "BatchMatMul", "BiasAdd", "Add", "AddExt", "Dense", "Conv2D", "Conv3D"})
SQUASH = {"Softmax": "Softmax", "SoftmaxV2": "Softmax", "LogSoftmax": "LogSoftmax", "Sigmoid": "Sigmoid"}


@dataclass(frozen=True)
class LossInput:
    """One loss in the graph and what feeds its prediction input."""

    expects: str
    name: str
    scope: str
    nodes: tuple[str, ...]
    producer: str


def _squash(q: _graph.GraphQuery, producer: str) -> str:
    """``Softmax``, ``LogSoftmax``, ``Sigmoid``, ``raw`` or ``other``: what the producer does to its input."""
    op = q.op(producer)
    if op == "Log" and q.op(q.input_source(producer, 0) or "") in ("Softmax", "SoftmaxV2"):
        return "LogSoftmax"
    return SQUASH.get(op, "raw" if op in RAW else "other")


def loss_inputs(q: _graph.GraphQuery) -> list[LossInput]:
    """Every loss of the forward graph (loss ops first, then loss cells holding no loss op)."""
    found = []
    for node in q.nodes(*LOSS_OPS, part="forward"):
        producer = q.input_source(node, 0) or ""
        found.append(LossInput(LOSS_OPS[q.op(node)], q.op(node), q.scope(node), (node,), producer))
    covered = {q.scope(n) for n in q.nodes(*LOSS_OPS, part="forward")}
    for scope, cls in _loss_cell_scopes(q).items():
        if any(c == scope or c.startswith(scope + "/") for c in covered):
            continue
        members = [n for n in q.nodes(part="forward") if q.scope(n) == scope or q.scope(n).startswith(scope + "/")]
        outside = [(n, s) for n in members for s in map(q.source, q.value_inputs(n)) if _from_network(q, s, scope)]
        if outside:
            producer = outside[0][1]
            readers = tuple(dict.fromkeys(n for n, s in outside if s == producer))
            found.append(LossInput(LOSS_CELLS[cls], cls, scope, readers, producer))
    return found


def _loss_cell_scopes(q: _graph.GraphQuery) -> dict[str, str]:
    """Scope prefix of each loss cell (``.../_loss_fn-NLLLoss``) -> its class name."""
    found = {}
    for scope in dict.fromkeys(q.scope(n) for n in q.nodes(part="forward")):
        parts = scope.split("/")
        for i, segment in enumerate(parts):
            cls = segment.partition("-")[2]
            if cls in LOSS_CELLS:
                found["/".join(parts[: i + 1])] = cls
                break
    return found


def _from_network(q: _graph.GraphQuery, source: str, scope: str) -> bool:
    """A value computed by the network outside the loss cell (not a label, a constant or a loss-cell node)."""
    if not q.op(source):
        return False
    inner = q.scope(source) == scope or q.scope(source).startswith(scope + "/")
    return not inner and q.op(source) not in graph_ops.BOOKKEEPING


#: (what the loss expects, what feeds it) -> (severity, why it is wrong)
VERDICTS: dict[tuple[str, str], tuple[Severity, str]] = {
    (LOGITS, "Softmax"): (
        Severity.ERROR,
        "applies a softmax of its own: the loss sees softmax(softmax(x)), cannot fall below ln(1 + (C-1)/e) for C "
        "classes, and its gradients shrink as the outputs saturate",
    ),
    (LOGITS, "LogSoftmax"): (
        Severity.INFO,
        "applies a log-softmax of its own; log-softmax is idempotent, so the result is right, but the LogSoftmax "
        "is redundant (with log-probabilities, NLLLoss is the matching loss)",
    ),
    (SIGMOID_LOGITS, "Sigmoid"): (
        Severity.ERROR,
        "applies a sigmoid of its own: the loss sees sigmoid(sigmoid(x)), which lies in (0.5, 0.73), so it can "
        "never reach a confident prediction for either class",
    ),
    (LOG_PROBS, "raw"): (
        Severity.ERROR,
        "expects log-probabilities: on raw scores it returns minus the label's score, which has no lower bound, "
        "so the loss goes negative and the scores grow without limit",
    ),
    (LOG_PROBS, "Softmax"): (
        Severity.ERROR,
        "expects log-probabilities, not probabilities: minus a probability is bounded in [-1, 0] and is not a "
        "likelihood",
    ),
    (PROBS, "raw"): (
        Severity.ERROR,
        "expects probabilities in (0, 1): raw scores outside that range have no log-likelihood (MindSpore's CPU "
        "kernel stops on them; other devices return NaN)",
    ),
}
FIXES = {
    LOGITS: "remove the Softmax at the end of the network (the loss applies it) and apply it only when predicting",
    SIGMOID_LOGITS: "remove the Sigmoid at the end of the network (the loss applies it)",
    LOG_PROBS: "end the network with ops.log_softmax, or use nn.CrossEntropyLoss on the raw scores",
    PROBS: "end the network with a Sigmoid, or better use nn.BCEWithLogitsLoss on the raw scores",
}


@register
@dataclass
class LossFunction(Rule):
    """A loss fed the wrong kind of prediction, or predictions that broadcast against the labels.

    What it detects: a Softmax feeding a softmax-cross-entropy loss
    (``SoftmaxCrossEntropyWithLogits``, ``nn.CrossEntropyLoss``), a Sigmoid
    feeding ``BCEWithLogitsLoss``, raw scores (a Dense/conv output) feeding
    ``nn.NLLLoss`` or ``nn.BCELoss``, probabilities feeding ``nn.NLLLoss``; and
    in a loss cell, an elementwise op between the prediction and the labels
    whose output is larger than both (shapes (N, 1) and (N,) broadcast to
    (N, N)). Each finding names the loss, its scope and the op that feeds it.
    Why it matters: the network then optimises a different objective than
    intended: the loss has a floor it cannot pass, no lower bound at all, or
    compares every prediction with every label (checklist cg.05).
    Typical causes: a Softmax/Sigmoid kept at the end of the network for
    inference; PyTorch habits (``NLLLoss`` without ``log_softmax``); a one-column
    target stored flat.
    How to fix: return raw scores from the network and let the loss apply the
    squashing; match the label shape to the prediction (``label.reshape(-1, 1)``).
    Thresholds: none: each pair (loss, producer) is right or wrong by the
    loss's definition (MindSpore's loss documentation). LogSoftmax before a
    softmax cross-entropy is only info: log-softmax is idempotent.
    """

    ids = ("graph.loss-function",)

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return _graph.missing_graph(run, training=False)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        q = _graph.training_query(run) or _graph.query(run.graphs[-1])
        for loss in loss_inputs(q):
            verdict = VERDICTS.get((loss.expects, _squash(q, loss.producer)))
            if verdict is not None:
                yield self._mismatch(run, context, q, loss, *verdict)
        for node, label in broadcasts(q):
            yield self._broadcast(run, q, node, label)

    def _mismatch(
        self, run: Run, context: Context, q: _graph.GraphQuery, loss: LossInput, severity: Severity, why: str
    ) -> Finding:
        fed = _graph.where(q, loss.producer)
        negative = _lowest_loss(run, context) if loss.expects in (LOG_PROBS, PROBS) else None
        seen = f" The recorded loss goes down to {negative:.4g}, below 0." if negative is not None else ""
        return make_finding(
            self,
            run,
            severity,
            f"{loss.name} fed by {q.op(loss.producer) or loss.producer} ({_graph.layer_name(q.scope(loss.producer))})",
            f"The loss {loss.name} in {loss.scope} is fed by {fed}. It {why}.{seen}",
            hint=f"To fix: {FIXES[loss.expects]}.",
            evidence={
                "loss": loss.name,
                "loss_scope": loss.scope,
                "expects": loss.expects,
                "fed_by": {"op": q.op(loss.producer), "scope": q.scope(loss.producer)},
                "lowest_loss": negative,
                "graph_nodes": [*_feeding(q, loss.producer), loss.producer, loss.nodes[0]],
                "graph_focus": [loss.producer],
            },
        )

    def _broadcast(self, run: Run, q: _graph.GraphQuery, node: str, label: str) -> Finding:
        shapes = {i: _shape(q, i) for i in map(q.source, q.value_inputs(node))}
        out = q.graph.node(node)["output_shape"]
        return make_finding(
            self,
            run,
            Severity.ERROR,
            f"prediction and labels broadcast to {out} in {_graph.layer_name(q.scope(node))}",
            f"{_graph.where(q, node)} combines the prediction and the labels ({label}) with shapes "
            f"{' and '.join(str(s) for s in shapes.values())} into {out}: every prediction is compared with every "
            "label of the batch, so the network can only learn the batch mean.",
            hint="Give the labels the prediction's shape (e.g. label.reshape(-1, 1), or squeeze the prediction).",
            evidence={
                "op": q.op(node),
                "scope": q.scope(node),
                "input_shapes": [list(s) if s else None for s in shapes.values()],
                "output_shape": list(out) if out else None,
                "graph_nodes": [*shapes, node],
                "graph_focus": [node],
            },
        )


def _feeding(q: _graph.GraphQuery, node: str) -> list[str]:
    """The op that feeds ``node`` (for the drawing), if there is one."""
    return [s for s in map(q.source, q.value_inputs(node)) if q.op(s)][:1]


def broadcasts(q: _graph.GraphQuery) -> list[tuple[str, str]]:
    """Ops of loss cells that combine a label input with the network's output into a larger tensor."""
    labels = set(q.graph_inputs)
    found = []
    for scope in _loss_cell_scopes(q):
        for node in q.nodes(part="forward"):
            if not (q.scope(node) == scope or q.scope(node).startswith(scope + "/")):
                continue
            sources = [q.source(i) for i in q.value_inputs(node) if not q.graph.is_constant(q.source(i))]
            label = next((s for s in sources if s in labels), None)
            sizes = [_size(_shape(q, s)) for s in sources]
            if label and len(sources) >= 2 and all(sizes) and _size(q.graph.node(node)["output_shape"]) > max(sizes):
                found.append((node, label))
    return found


def _shape(q: _graph.GraphQuery, name: str) -> tuple[int, ...] | None:
    row = q.graph.node(name) if q.op(name) else q.graph.parameter(name)
    key = "output_shape" if q.op(name) else "shape"
    return None if row is None else row[key]


def _size(shape: tuple[int, ...] | None) -> int:
    return math.prod(shape) if shape else 0


def _lowest_loss(run: Run, context: Context) -> float | None:
    """The lowest finite recorded training loss when it is below zero (impossible for a likelihood loss)."""
    series = curve(run, "loss", context)
    if series is None:
        return None
    finite = series[series.map(math.isfinite)]
    return float(finite.min()) if not finite.empty and finite.min() < 0 else None
