"""Computation graph: one parameter used as the weight of several layers, or two parameters that are one.

The graph shows sharing directly: a parameter that more than one forward
layer op (MatMul, Conv2D, Gather, BiasAdd...) reads. Whether it was meant is
judged from the shape of the sharing, the way a reviewer would: a table
looked up by a Gather and multiplied by a MatMul is the tied-embedding idiom;
one cell applied several times, or one weight read by layers with different
names, usually is a slip. Histograms show the converse: distinct parameters
that stay identical at every step are copies that never became different.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules import _graph
from summary_doctor.rules import _graph_ops as graph_ops
from summary_doctor.rules._histograms import TagKind, base_name, rows_of_kind
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register
from summary_doctor.rules.graph import unchanged_tags

TIED, REUSED, ACROSS = "tied-embedding", "reused-cell", "across-layers"
_PROJECTIONS = frozenset({"MatMul", "BatchMatMul", "Dense"})
_LEGITIMATE = (
    "Deliberate sharing looks the same in the graph (a hand-unrolled recurrent cell, a block repeated with tied "
    "weights on purpose, the two branches of a Siamese network): if that is the design, ignore this with "
    "--ignore graph.weight-sharing."
)


@dataclass(frozen=True)
class SharedWeights:
    """Parameters read by the same several layer ops (a weight and its bias go together)."""

    parameters: tuple[str, ...]
    nodes: tuple[str, ...]
    kind: str


def shared_weights(q: _graph.GraphQuery) -> list[SharedWeights]:
    """Every group of parameters that more than one forward layer op reads, with how it looks."""
    groups: dict[tuple[tuple[str, ...], int], list[tuple[str, list[str]]]] = {}
    for parameter in q.weights:
        ops = q.layer_weights(parameter)
        if len(ops) > 1:
            key = (tuple(sorted({q.scope(n) for n in ops})), len(ops))
            groups.setdefault(key, []).append((parameter, ops))
    found = []
    for (scopes, _), members in groups.items():
        nodes = tuple(dict.fromkeys(n for _, ops in members for n in ops))
        types = {q.op(n) for n in nodes}
        tied = bool(types & graph_ops.LOOKUP_OPS and types & _PROJECTIONS)
        kind = TIED if tied else (REUSED if len(scopes) == 1 else ACROSS)
        found.append(SharedWeights(tuple(p for p, _ in members), nodes, kind))
    return found


def identical_copies(run: Run, *, min_steps: int, rtol: float) -> list[tuple[str, str, int]]:
    """Pairs of distinct, changing parameter tags whose histograms are equal at every common step.

    Equal means min, max and sum within ``rtol`` and the same bucket counts, at
    ``min_steps`` common records or more. Parameters that never change are the
    freezing rule's, not copies.
    """
    rows = rows_of_kind(run, TagKind.WEIGHT, TagKind.OFFSET, TagKind.SCALE)
    if rows["tag"].nunique() < 2:
        return []
    frozen = unchanged_tags(run, min_steps=min_steps)
    rows = rows[~rows["tag"].isin(set(frozen.loc[frozen["unchanged"], "tag"]))]
    stats = rows[["min", "max", "sum"]].to_numpy(dtype=float)
    labels = rows.index.to_numpy()
    # count -> tag -> step -> row position; the last record of a step wins. Plain dicts: most runs have a
    # handful of tags, and pandas' per-tag frames cost more than the comparisons themselves
    positions: dict[int, dict[str, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    for position, (tag, step, count) in enumerate(
        zip(rows["tag"].tolist(), rows["step"].tolist(), rows["count"].tolist(), strict=True)
    ):
        positions[count][tag][step] = position
    pairs = []
    for count in sorted(positions):
        by_tag = positions[count]
        for a, b in combinations(sorted(by_tag), 2):
            steps = [step for step in by_tag[a] if step in by_tag[b]]
            if len(steps) < min_steps:
                continue
            at_a = np.array([by_tag[a][step] for step in steps])
            at_b = np.array([by_tag[b][step] for step in steps])
            if _same(run, stats[at_a], stats[at_b], labels[at_a], labels[at_b], rtol):
                pairs.append((a, b, len(steps)))
    return pairs


def _same(
    run: Run, stats_a: np.ndarray, stats_b: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray, rtol: float
) -> bool:
    """min, max and sum within ``rtol`` at every step, then the same bucket counts (equal bytes first)."""
    if not (np.isfinite(stats_a).all() and np.allclose(stats_a, stats_b, rtol=rtol, atol=0.0)):
        return False
    return all(
        np.array_equal(run.bucket_arrays(i).count, run.bucket_arrays(j).count)
        for i, j in zip(rows_a.tolist(), rows_b.tolist(), strict=True)
    )


@register
@dataclass
class WeightSharing(Rule):
    """One parameter used as the weight of several layers, or two parameters that stay one.

    What it detects: in the graph, a parameter read by more than one forward
    layer op (MatMul, BatchMatMul, Conv2D, Gather, BiasAdd, ...). Three shapes:
    a Gather and a MatMul on one table (an embedding reused as the output
    projection: info); one cell object applied in several places (several ops
    of one scope read one weight, and the parameters of the "other" layers do
    not exist: warning); one parameter read by layers of different scopes
    (``self.fc3.weight = self.fc2.weight``: warning). From histograms:
    distinct parameters whose histograms are identical at every recorded step
    while they change (warning).
    Why it matters: layers that were meant to be separate but share weights
    give the network fewer parameters than designed; copies that never
    diverge (an "ensemble" initialised from one tensor) are one model paid for
    twice (checklist cg.01).
    Typical causes: ``nn.SequentialCell([layer] * n)`` or a list built by
    repeating one cell object; assigning one layer's Parameter to another
    instead of copying its values; members of an ensemble created with the
    same initial tensor.
    How to fix: create one cell per layer (``[nn.Dense(32, 32) for _ in
    range(3)]``); copy values with ``set_data(other.data.copy())``; give
    ensemble members their own initialisation.
    Thresholds: the graph side has no number: any second layer op on a weight
    is sharing, and its shape decides the severity (tied embeddings are the
    idiom of Press & Wolf 2017, "Using the Output Embedding to Improve
    Language Models", used by GPT-2 and T5). Histogram copies: min, max and
    sum equal within ``rtol`` = 1e-7 and identical bucket counts at every one
    of at least ``min_steps`` = 3 common records; identical updates keep
    identical parameters bit-for-bit, so the tolerance only absorbs float
    printing.
    """

    ids = ("graph.weight-sharing",)
    min_steps: int = 3
    rtol: float = 1e-7

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return _graph.missing_graph(run, training=False)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        q = _graph.training_query(run) or _graph.query(run.graphs[-1])
        for group in shared_weights(q):
            yield self._graph_finding(run, q, group)
        for a, b, steps in identical_copies(run, min_steps=self.min_steps, rtol=self.rtol):
            yield self._copies_finding(run, a, b, steps)

    def _graph_finding(self, run: Run, q: _graph.GraphQuery, group: SharedWeights) -> Finding:
        names = ", ".join(group.parameters)
        are = "are" if len(group.parameters) > 1 else "is"
        uses = _graph.uses_text(q, group.nodes)
        scopes = list(dict.fromkeys(q.scope(n) for n in group.nodes))
        if group.kind == TIED:
            severity, title = Severity.INFO, f"{names} tied: looked up and used as the output projection"
            message = (
                f"{names} {are} read by a lookup and by a projection ({uses}): the tied-embedding idiom (the input "
                "embedding reused as the output layer, on purpose in many language models). Nothing to change "
                "if it is meant."
            )
        elif group.kind == REUSED:
            severity = Severity.WARNING
            times = max(sum(q.op(n) == op for n in group.nodes) for op in {q.op(n) for n in group.nodes})
            title = f"{names}: one layer ({_graph.layer_name(scopes[0])}) applied {times} times"
            message = (
                f"{names} {are} read by {uses}: one cell object "
                "is applied in several places, so those layers share one set of weights and the parameters of the "
                "other copies do not exist. `nn.SequentialCell([layer] * n)` or a list that repeats one cell "
                f"does this; create a new cell for each layer if they were meant to differ. {_LEGITIMATE}"
            )
        else:
            severity = Severity.WARNING
            layers = ", ".join(_graph.layer_name(s) for s in scopes)
            title = f"{names} shared by layers {layers}"
            message = (
                f"{names} {are} the weight of layers with different names ({uses}): the later layers have no weight "
                "of their own. An assignment such as `self.fc3.weight = self.fc2.weight` does this; to copy the "
                f"values instead, use `self.fc3.weight.set_data(self.fc2.weight.data.copy())`. {_LEGITIMATE}"
            )
        return make_finding(
            self,
            run,
            severity,
            title,
            message,
            tags=group.parameters,
            hint=(
                "Nothing to change if the tying is intended."
                if group.kind == TIED
                else "Create one cell (one Parameter) per layer unless the sharing is the design."
            ),
            evidence={
                "kind": group.kind,
                "parameters": list(group.parameters),
                "users": [{"op": q.op(n), "scope": q.scope(n)} for n in group.nodes],
                "graph_nodes": list(group.nodes),
            },
        )

    def _copies_finding(self, run: Run, a: str, b: str, steps: int) -> Finding:
        first, second = base_name(a), base_name(b)
        return make_finding(
            self,
            run,
            Severity.WARNING,
            f"{first} and {second} identical at all {steps} records",
            f"The histograms of {first} and {second} are identical at every one of {steps} common records while "
            "both change: the two parameters started equal and receive equal updates, so they never become "
            "different. An ensemble or a set of heads created from one initial tensor does this; if the copies "
            "are meant to be one parameter, share it, otherwise initialise them independently.",
            tags=(a, b),
            hint="Give each copy its own random initialisation (or use one shared parameter).",
            evidence={"kind": "identical-copies", "parameters": [first, second], "common_records": steps},
        )
