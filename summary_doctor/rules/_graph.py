"""The computation graph as the graph rules think of it: layers, weights, gradients, updates.

A MindSpore training graph holds three programs in one node list: the
network's forward pass (scopes under ``Default/...``), its gradient (scopes
under ``Gradients/...``) and the optimizer (the update nodes, e.g.
``ApplyMomentum`` in ``Default/optimizer-Momentum``). Every read of a weight
goes through bookkeeping nodes (``Load``, ``Depend``, ``UpdateState``,
``MakeTuple``, ``TupleGetItem``) that carry execution order, not values.
:class:`GraphQuery` sees through those, so that a rule can ask the questions
of its principle: which forward ops read this weight, which parameter does
this op read, what really feeds this input, which parameter does each update
node update and is it fed by a gradient. What was checked against MindSpore
2.10 graphs is written down in ``fixtures/README.md``.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from summary_doctor.reader.graph import Graph
from summary_doctor.reader.run import Run
from summary_doctor.rules._graph_ops import (
    ASSIGN_OPS,
    BOOKKEEPING,
    OPTIMIZER_CLASSES,
    SEE_THROUGH,
    UPDATE_OPS,
    WEIGHT_OPS,
)
from summary_doctor.rules.base import Missing

Part = Literal["forward", "gradient", "optimizer"]


@dataclass
class GraphQuery:
    """Questions the graph rules ask, answered on one :class:`Graph`."""

    graph: Graph

    @cached_property
    def _op(self) -> dict[str, str]:
        return dict(zip(self.graph.nodes["name"], self.graph.nodes["op_type"], strict=True))

    @cached_property
    def _scope(self) -> dict[str, str]:
        return dict(zip(self.graph.nodes["name"], self.graph.nodes["scope"], strict=True))

    def op(self, name: str) -> str:
        """The op type of node ``name`` ('' for parameters and constants)."""
        return self._op.get(name, "")

    def scope(self, name: str) -> str:
        """The scope of node ``name``: the cell path it was compiled in (``Default/.../fc1-Dense``)."""
        return self._scope.get(name, "")

    def nodes(self, *op_types: str, part: Part | None = None) -> list[str]:
        """Names of the nodes of ``op_types`` (all when none given), in graph order, optionally of one part."""
        wanted = set(op_types)
        names = [n for n, op in self._op.items() if not wanted or op in wanted]
        return [n for n in names if part is None or self.part(n) == part]

    # --- the three parts of a training graph ---------------------------------------------------

    @cached_property
    def _optimizer_scopes(self) -> tuple[str, ...]:
        scopes = {self.scope(n) for n, op in self._op.items() if op in UPDATE_OPS}
        for scope in set(self._scope.values()):
            for i, segment in enumerate(scope.split("/")):
                attribute, _, cls = segment.partition("-")
                if cls in OPTIMIZER_CLASSES or "optim" in attribute.lower():
                    scopes.add("/".join(scope.split("/")[: i + 1]))
        return tuple(sorted(s for s in scopes if s))

    def part(self, name: str) -> Part:
        """``gradient`` (scope ``Gradients/...``), ``optimizer`` (update nodes and their scope) or ``forward``."""
        scope = self.scope(name)
        if scope.startswith("Gradients"):
            return "gradient"
        if self.op(name) in UPDATE_OPS or any(scope == s or scope.startswith(s + "/") for s in self._optimizer_scopes):
            return "optimizer"
        return "forward"

    @cached_property
    def is_training(self) -> bool:
        """A training graph has a gradient part or optimizer update nodes."""
        return bool(self.updates) or any(self.part(n) == "gradient" for n in self._op)

    # --- what feeds what ------------------------------------------------------------------------

    def source(self, name: str) -> str:
        """The first node, parameter or constant upstream of ``name`` that is not a see-through node."""
        seen = set()
        while self.op(name) in SEE_THROUGH and name not in seen:
            seen.add(name)
            inputs = self.graph.inputs(name)
            if not inputs:
                break
            name = inputs[0]
        return name

    def input_source(self, node: str, index: int) -> str | None:
        """What really feeds input ``index`` of ``node`` (see :meth:`source`), None if there is no such input."""
        inputs = self.graph.inputs(node)
        return self.source(inputs[index]) if index < len(inputs) else None

    def constant_input(self, node: str, index: int) -> Any:
        """The value of input ``index`` of ``node`` when it is a constant, else None."""
        source = self.input_source(node, index)
        return self.graph.constant(source) if source is not None and self.graph.is_constant(source) else None

    def reads(self, node: str, positions: tuple[int, ...] | None = None) -> list[str]:
        """Parameters that ``node`` reads (at ``positions``, or any input), seen through Load and friends."""
        inputs = self.graph.inputs(node)
        indices = range(len(inputs)) if positions is None else [i for i in positions if i < len(inputs)]
        found = [self.source(inputs[i]) for i in indices]
        return list(dict.fromkeys(p for p in found if self.graph.is_parameter(p)))

    def readers(self, parameter: str, part: Part | None = "forward") -> list[str]:
        """Nodes that use ``parameter``'s value, seen through Load, Cast, Reshape... (bookkeeping left out)."""
        found: dict[str, None] = {}
        queue, seen = deque([parameter]), {parameter}
        while queue:
            current = queue.popleft()
            for user in self.graph.users(current):
                if user in seen or not self._passes_value(current, user):
                    continue
                seen.add(user)
                if self.op(user) in SEE_THROUGH:
                    queue.append(user)
                elif self.op(user) not in BOOKKEEPING and (part is None or self.part(user) == part):
                    found[user] = None
        return list(found)

    def _passes_value(self, source: str, user: str) -> bool:
        """False when ``source`` is only an ordering input of ``user`` (Load's monad, Depend's attachment)."""
        if self.op(user) in ("Load", "Depend"):
            inputs = self.graph.inputs(user)
            return bool(inputs) and inputs[0] == source
        return self.op(user) != "UpdateState"

    def value_inputs(self, node: str) -> list[str]:
        """The inputs of ``node`` that carry values (ordering inputs of Load/Depend/UpdateState left out)."""
        if self.op(node) == "UpdateState":
            return []
        inputs = self.graph.inputs(node)
        inputs = inputs[:1] if self.op(node) in ("Load", "Depend") else inputs
        return [i for i in inputs if self.op(i) != "UpdateState"]

    def ancestors(self, node: str, part: Part | None = None) -> set[str]:
        """Every node, parameter and constant whose value flows into ``node`` (within ``part`` if given)."""
        seen: set[str] = set()
        queue = deque(self.value_inputs(node))
        while queue:
            current = queue.popleft()
            if current in seen or (part is not None and current in self._op and self.part(current) != part):
                continue
            seen.add(current)
            queue.extend(self.value_inputs(current))
        return seen

    # --- parameters: weights, graph inputs, updates --------------------------------------------

    @cached_property
    def updates(self) -> dict[str, str]:
        """Optimizer update node -> the parameter it writes (input 0)."""
        found = {}
        for name, op in self._op.items():
            is_update = op in UPDATE_OPS or (op in ASSIGN_OPS and self.part(name) == "optimizer")
            target = self.input_source(name, 0) if is_update else None
            if target is not None and self.graph.is_parameter(target):
                found[name] = target
        return found

    @cached_property
    def updated(self) -> dict[str, list[str]]:
        """Parameter -> its update nodes (network weights only: optimizer state is left out)."""
        found: dict[str, list[str]] = {}
        for node, parameter in self.updates.items():
            if parameter in self.weights:
                found.setdefault(parameter, []).append(node)
        return found

    @cached_property
    def _loaded(self) -> set[str]:
        return {self.graph.inputs(n)[0] for n in self.nodes("Load") if self.graph.inputs(n)}

    @cached_property
    def weights(self) -> list[str]:
        """The network's own parameters, in graph order.

        A parameter the forward pass reads through a ``Load`` (how MindSpore
        reads a Parameter), or the first input of an optimizer primitive
        (``ApplyMomentum``, ``Adam``...). Graph inputs (data, labels) are read
        directly and never updated; optimizer state (moments, learning rate,
        step counters) has no forward reader and is not an update's input 0.
        """
        optimized = {p for n, p in self.updates.items() if self.op(n) in UPDATE_OPS}
        names = self.graph.parameters["name"]
        return [p for p in names if p in optimized or (p in self._loaded and self.readers(p))]

    @cached_property
    def graph_inputs(self) -> list[str]:
        """Parameters the forward pass reads that are not weights: the data and the labels."""
        weights = set(self.weights)
        return [p for p in self.graph.parameters["name"] if p not in weights and self.readers(p)]

    def layer_weights(self, parameter: str, ops: Iterable[str] = WEIGHT_OPS) -> list[str]:
        """Forward ops of ``ops`` that use ``parameter`` at one of their weight positions."""
        wanted = set(ops)
        return [
            n
            for n in self.readers(parameter)
            if self.op(n) in wanted and parameter in self.reads(n, WEIGHT_OPS.get(self.op(n)))
        ]

    def size(self, parameter: str) -> int:
        """Number of values in ``parameter`` (0 when its shape is unknown)."""
        row = self.graph.parameter(parameter)
        size = None if row is None else row["size"]
        return int(size) if size is not None and size == size else 0

    def gradient_fed(self, update: str) -> bool:
        """Whether an update node's inputs come, through any chain, from the gradient part of the graph."""
        return any(self.part(a) == "gradient" for a in self.ancestors(update) if a in self._op)


_CACHE: dict[int, tuple[weakref.ref[Graph], GraphQuery]] = {}


def query(graph: Graph) -> GraphQuery:
    """The (cached) :class:`GraphQuery` of ``graph``: every graph rule of a run shares one."""
    ref, cached = _CACHE.get(id(graph), (None, None))
    if ref is None or ref() is not graph or cached is None:
        cached = GraphQuery(graph)
        _CACHE[id(graph)] = (weakref.ref(graph), cached)
        weakref.finalize(graph, _CACHE.pop, id(graph), None)
    return cached


def graphs(run: Run) -> Iterator[GraphQuery]:
    """A query per graph of the run (a run may hold a training graph and an evaluation graph)."""
    for graph in run.graphs:
        yield query(graph)


def layer_name(scope: str) -> str:
    """``Default/network-WithLossCell/_backbone-MLP/fc2-Dense`` -> ``fc2 (Dense)``: the cell a node sits in."""
    segment = scope.rstrip("/").rsplit("/", 1)[-1]
    attribute, _, cls = segment.partition("-")
    return f"{attribute} ({cls})" if cls else attribute


def uses_text(q: GraphQuery, nodes: Iterable[str]) -> str:
    """``3 MatMul and 3 BiasAdd in Default/.../0-Dense; MatMul in Default/.../fc3-Dense``: ops grouped by scope."""
    by_scope: dict[str, dict[str, int]] = {}
    for node in dict.fromkeys(nodes):
        counts = by_scope.setdefault(q.scope(node) or "the top-level graph", {})
        counts[q.op(node)] = counts.get(q.op(node), 0) + 1
    parts = []
    for scope, counts in by_scope.items():
        ops = " and ".join(f"{n} {op}" if n > 1 else op for op, n in counts.items())
        parts.append(f"{ops} in {scope}")
    return "; ".join(parts)


def where(q: GraphQuery, node: str) -> str:
    """``MatMul in Default/.../fc2-Dense``: how findings name a node so it can be found in the network."""
    return f"{q.op(node)} in {q.scope(node) or 'the top-level graph'}"


def training_query(run: Run) -> GraphQuery | None:
    """The query of the run's training graph (the newest graph with a gradient or optimizer part), or None."""
    candidates = ([run.graph] if run.graph is not None else []) + list(reversed(run.graphs))
    return next((q for q in map(query, candidates) if q.is_training), None)


def without_gradient(run: Run) -> set[str]:
    """Weights whose optimizer update has no gradient behind it (``graph.node-connection`` reports them)."""
    q = training_query(run)
    if q is None:
        return set()
    return {p for n, p in q.updates.items() if q.op(n) in UPDATE_OPS and not q.gradient_fed(n)}


ENABLE_GRAPH = "SummaryCollector(..., collect_specified_data={'collect_graph': True}) (the default, in GRAPH_MODE)"


def missing_graph(run: Run, *, training: bool = True) -> Missing | None:
    """Why a graph rule cannot run: no graph recorded, or (``training``) none with an optimizer part."""
    if not run.graphs:
        return Missing("no computation graph recorded", "record the graph with " + ENABLE_GRAPH)
    if training and training_query(run) is None:
        return Missing(
            "the recorded graph has no gradient or optimizer part (an evaluation graph)",
            "record the training graph with " + ENABLE_GRAPH,
        )
    return None
