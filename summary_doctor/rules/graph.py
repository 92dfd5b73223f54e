"""Computation graph: parameters that never change (frozen) while the others train.

Two kinds of evidence for one checklist item: histograms that never change
(a parameter the optimizer holds but does not move, e.g. an lr-0 group), and
the graph (a layer weight that no optimizer update node writes, e.g. an
optimizer built on a subset of the parameters: SummaryCollector then records
no histogram of it, so the graph is the only evidence).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.derived import per_run
from summary_doctor.reader.run import Run
from summary_doctor.rules import _graph
from summary_doctor.rules import _graph_ops as graph_ops
from summary_doctor.rules._histograms import (
    ENABLE_WEIGHTS,
    TagKind,
    base_name,
    loss_outcome,
    names,
    rows_of_kind,
)
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register

TRAINED_KINDS = (TagKind.WEIGHT, TagKind.OFFSET, TagKind.SCALE)
_RUNNING_STATS = re.compile(r"(?:moving|running)_(?:mean|var|variance)$", re.IGNORECASE)


@per_run
def unchanged_tags(run: Run, *, rtol: float = 1e-5, atol: float = 1e-8, min_steps: int = 3) -> pd.DataFrame:
    """Per trainable-parameter tag with ``min_steps`` records or more: whether it never changed.

    Columns: tag, steps (records), first_step, last_step, unchanged. A tag is
    unchanged when min, max and sum at every recorded step are allclose to the
    first record (MindInsight's weight_not_changed test) and so are the bucket
    counts. Comparing with the first record, not the previous one, keeps a
    slowly moving weight (tiny learning rate) from looking frozen.
    BatchNorm running statistics are left out: they are not trained. So are
    parameters whose recorded gradient is not zero: they are not frozen, their
    gradient is too small to move them (gradient.vanishing says so).
    """
    rows = rows_of_kind(run, *TRAINED_KINDS)
    running = {name for name in rows["name"].unique() if _RUNNING_STATS.search(name)}  # per tag, not per row
    rows = rows[~rows["name"].isin(running | _receiving_gradient(run))]
    close = _stats_close(rows, rtol, atol)
    codes, tags = pd.factorize(rows["tag"])  # tags in order of first appearance
    members = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes))[:-1]) if len(tags) else []
    steps, encoded, labels = rows["step"].to_numpy(), rows["encoded"].to_numpy(), rows.index.to_numpy()
    records = []
    for tag, at in zip(tags, members, strict=True):
        if len(at) < min_steps:
            continue
        same = close[tag] and _buckets_same(run, labels[at], encoded[at])
        records.append((tag, len(at), int(steps[at].min()), int(steps[at].max()), same))
    return pd.DataFrame(records, columns=["tag", "steps", "first_step", "last_step", "unchanged"])


@per_run
def _receiving_gradient(run: Run) -> set[str]:
    """Parameters with a recorded gradient that is not all zero."""
    receiving: set[str] = set()
    for frame in ("histograms", "tensors"):  # each frame on its own: concatenating their schemas cost more
        grads = rows_of_kind(run, TagKind.GRADIENT, frame=frame)
        moving = (grads["max"].abs() > 0) | (grads["min"].abs() > 0)
        receiving.update(grads.loc[moving, "parameter"].dropna())
    return receiving


def _stats_close(rows: pd.DataFrame, rtol: float, atol: float) -> dict[str, bool]:
    """Per tag: min, max and sum finite and allclose to the tag's first record at every record (all tags at once)."""
    values = rows[["min", "max", "sum"]].to_numpy(dtype=float)
    codes, tags = pd.factorize(rows["tag"])
    first = values[np.unique(codes, return_index=True)[1]][codes]
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values).all(axis=1) & (np.abs(values - first) <= atol + rtol * np.abs(first)).all(axis=1)
    failures = np.bincount(codes, weights=~ok, minlength=len(tags))
    return dict(zip(tags, failures == 0, strict=True))


def _buckets_same(run: Run, labels: np.ndarray, encoded: np.ndarray) -> bool:
    """Whether every record has the first one's bucket counts: equal bytes first, decoding only the others."""
    differ = [label for label, data in zip(labels[1:].tolist(), encoded[1:], strict=True) if data != encoded[0]]
    if not differ:
        return True
    table = run.bucket_table(np.array([labels[0], *differ]))
    first = table.row(0)[2]
    return all(np.array_equal(first, table.row(i)[2]) for i in range(1, len(table)))


@register
@dataclass
class WeightFreezing(Rule):
    """A parameter whose histogram never changes while the other parameters train.

    What it detects: a weight or bias whose histogram statistics (min, max,
    sum) and bucket counts are the same at every recorded step, while at least
    one other recorded parameter changes. A parameter whose optimizer update
    the graph shows is fed no gradient is left to graph.node-connection, which
    names the cause (its layer's output reaches no loss).
    Why it matters: a layer that should train but is frozen caps the accuracy
    (checklist cg.02). It may be intentional (fine-tuning a pretrained
    backbone), hence a warning.
    Typical causes: ``requires_grad=False`` on the parameter, ``stop_gradient``
    / ``ops.stop_gradient`` on its path, the parameter left out of the
    optimizer's ``params`` list, a learning rate of 0 for its group.
    How to fix: if the layer should train, check ``requires_grad``,
    ``stop_gradient`` and the optimizer's params list.
    Thresholds: allclose with ``rtol`` = 1e-5, ``atol`` = 1e-8 at every
    recorded step (MindInsight watchpoint weight_not_changed, WNC), over at
    least ``min_steps`` = 3 records.
    """

    ids = ("graph.weight-freezing",)
    rtol: float = 1e-5
    atol: float = 1e-8
    min_steps: int = 3

    def requirements(self, run: Run, context: Context) -> Missing | None:
        counts = rows_of_kind(run, *TRAINED_KINDS).groupby("tag").size()
        if (counts >= self.min_steps).any():
            return None
        return Missing(f"no parameter histogram recorded at {self.min_steps} steps or more", ENABLE_WEIGHTS)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        table = unchanged_tags(run, rtol=self.rtol, atol=self.atol, min_steps=self.min_steps)
        cut_off = _graph.without_gradient(run)
        table = table[~table["tag"].map(base_name).isin(cut_off)]
        frozen, moving = table[table["unchanged"]], table[~table["unchanged"]]
        if frozen.empty or moving.empty:
            return
        tags = list(frozen["tag"])
        shown = names(tags)
        first, last = int(frozen["first_step"].min()), int(frozen["last_step"].max())
        yield Finding(
            id="graph.weight-freezing",
            severity=Severity.WARNING,
            title=f"{', '.join(shown[:3])} unchanged over {int(frozen['steps'].min())} records",
            message=(
                f"The histograms of {', '.join(shown)} are identical at every recorded step from {first} to {last} "
                f"while {', '.join(names(moving['tag']))} change: these parameters are not trained. "
                "This is right only if they were frozen on purpose (fine-tuning)."
            ),
            hint=(
                "If they should train: check requires_grad, stop_gradient on their path, and that they are in the "
                "optimizer's params list (checklist cg.02)."
            ),
            run=run.name,
            tags=tuple(tags),
            step=first,
            evidence={
                "frozen": [base_name(t) for t in tags],
                "changing": [base_name(t) for t in moving["tag"]],
                "records": {base_name(r.tag): int(r.steps) for r in frozen.itertuples()},
                "rtol": self.rtol,
                "atol": self.atol,
            },
        )


@register
@dataclass
class GraphWeightFreezing(Rule):
    """A layer weight that no optimizer update node writes while other layers train.

    What it detects: in the training graph, weights of Dense, Conv or Embedding
    layers (read by a forward MatMul, Conv2D or Gather) that no optimizer update
    node (ApplyMomentum, Adam, SGD, ... in the optimizer's scope) takes as its
    parameter, while other layer weights have one. One finding per run names the
    frozen parameters, their layers and their share of the network's weights
    (sizes from the graph's shapes).
    Why it matters: a layer that should learn but is frozen caps what the network
    can fit (checklist cg.02). SummaryCollector records histograms of the
    optimizer's parameters only, so the graph is the only place where such a
    layer shows.
    Typical causes: the optimizer built on a hand-made parameter list that misses
    a layer; ``requires_grad=False`` set on a layer, so ``trainable_params()``
    leaves it out.
    How to fix: build the optimizer on ``net.trainable_params()`` and freeze on
    purpose only what should stay fixed.
    Thresholds: judged on principle, not tuned. Fine-tuning freezes a prefix of
    the network (the pretrained backbone) and trains what follows (Yosinski et
    al. 2014, "How transferable are features in deep neural networks?"): that
    shape with a good outcome is info. A frozen layer with a trained layer
    upstream of it (a hole in the middle: the stem trains, the block after it
    does not) is almost never intended: a warning whatever the outcome. A
    frozen prefix is a warning too when more than ``most_frozen`` = 0.5 of the
    network's weights are frozen (most of the network is then not trained) or
    when the outcome is poor: the loss turns NaN/Inf or ends above
    ``1 - min_drop`` = half of its start (AUTOTRAINER's convergence gate, as
    the histogram rules use it).
    """

    ids = ("graph.weight-freezing",)
    most_frozen: float = 0.5
    min_drop: float = 0.5

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return _graph.missing_graph(run)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        q = _graph.training_query(run)
        kernels = [p for p in q.weights if q.layer_weights(p, graph_ops.KERNEL_OPS)] if q else []
        frozen = [p for p in kernels if p not in q.updated]
        if not frozen or len(frozen) == len(kernels):
            return
        frozen = _with_biases(q, frozen)
        holes = _trained_upstream(q, frozen, [p for p in kernels if p in q.updated])
        share = sum(map(q.size, frozen)) / max(1, sum(q.size(p) for p in q.weights if not _RUNNING_STATS.search(p)))
        outcome = loss_outcome(run, context, min_drop=self.min_drop)
        severity = Severity.WARNING if holes or share > self.most_frozen or outcome.bad else Severity.INFO
        yield make_finding(
            self,
            run,
            severity,
            f"{', '.join(frozen[:3])}{' ...' if len(frozen) > 3 else ''} not updated by the optimizer "
            f"({share:.0%} of the weights)",
            _freezing_message(q, frozen, holes, share, outcome.reason, self.most_frozen),
            tags=tuple(frozen),
            hint=(
                "If these layers should learn, build the optimizer on net.trainable_params() (or add them to its "
                "parameter list) and check requires_grad. If they are frozen on purpose, ignore this with "
                "--ignore graph.weight-freezing."
            ),
            evidence={
                "frozen": frozen,
                "layers": {p: q.scope(q.layer_weights(p)[0]) for p in frozen},
                "trained_upstream": holes,
                "frozen_share": share,
                "frozen_values": sum(map(q.size, frozen)),
                "outcome": outcome.reason,
                "graph_nodes": _freezing_nodes(q, frozen, kernels),
            },
        )


def _with_biases(q: _graph.GraphQuery, frozen: list[str]) -> list[str]:
    """The frozen kernels plus the not-updated parameters of the same layers (their biases)."""
    scopes = {q.scope(n) for p in frozen for n in q.layer_weights(p)}
    extra = [
        p
        for p in q.weights
        if p not in q.updated and p not in frozen and any(q.scope(n) in scopes for n in q.layer_weights(p))
    ]
    return [p for p in q.weights if p in set(frozen) | set(extra)]


def _trained_upstream(q: _graph.GraphQuery, frozen: list[str], trained: list[str]) -> dict[str, list[str]]:
    """Frozen kernel -> trained kernels whose layer feeds it (empty when the frozen layers form a prefix)."""
    trained_at = {n: p for p in trained for n in q.layer_weights(p, graph_ops.KERNEL_OPS)}
    holes = {}
    for parameter in frozen:
        ancestors = {a for n in q.layer_weights(parameter, graph_ops.KERNEL_OPS) for a in q.ancestors(n, "forward")}
        upstream = list(dict.fromkeys(trained_at[a] for a in ancestors if a in trained_at))
        if upstream:
            holes[parameter] = [p for p in trained if p in upstream]
    return holes


def _freezing_message(
    q: _graph.GraphQuery, frozen: list[str], holes: dict[str, list[str]], share: float, outcome: str, most: float
) -> str:
    layers = ", ".join(dict.fromkeys(q.scope(n) for p in frozen for n in q.layer_weights(p)))
    text = (
        f"{', '.join(frozen)} ({share:.0%} of the network's weights) have no optimizer update node in the "
        f"training graph while the other layers do: they keep their initial (or loaded) values. Frozen layer scopes: "
        f"{layers}."
    )
    if holes:
        pairs = "; ".join(f"{p} comes after the trained {', '.join(up)}" for p, up in holes.items())
        return f"{text} The frozen layers sit behind trained ones ({pairs}): a hole in the middle of the network, " + (
            "which is almost never intended (fine-tuning freezes a prefix, the backbone)."
        )
    text += " Every trained layer comes after them: the shape of a deliberately frozen backbone (fine-tuning)."
    if share > most:
        return f"{text} But most of the network is frozen ({share:.0%} > {most:.0%}); {outcome}."
    return f"{text} Outcome: {outcome}."


def _freezing_nodes(q: _graph.GraphQuery, frozen: list[str], kernels: list[str]) -> list[str]:
    """For the drawing: the layer ops of frozen and trained kernels, and the trained ones' update nodes."""
    nodes = [n for p in kernels for n in q.layer_weights(p, graph_ops.KERNEL_OPS)]
    nodes += [u for p in kernels if p not in frozen for u in q.updated.get(p, [])]
    return list(dict.fromkeys(nodes))
