"""API use seen in the graph: a Dropout keeping too little, a division that can hit zero.

Both are MindSpore API traps. ``nn.Dropout(keep_prob=...)`` (1.x) took the
probability to keep, ``nn.Dropout(p=...)`` and ``ops.dropout(x, p)`` (2.x)
take the probability to drop; code moved between them, or written with
another framework's habits, drops what it meant to keep. ``ops.Div`` returns
NaN/Inf for a zero divisor where ``ops.DivNoNan`` returns 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules import _graph
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register
from summary_doctor.rules.tags import curve

#: Where each Dropout op keeps its keep probability: an attribute (1.x ``Dropout``, ``Dropout2D/3D``) or a
#: constant input (2.x ``Dropout``: input 1; 1.x ``DropoutGenMask``: input 1, ``DropoutDoMask``: input 2).
KEEP_INPUT = {"Dropout": 1, "DropoutGenMask": 1, "DropoutDoMask": 2}
DROPOUT_OPS = ("Dropout", "Dropout2D", "Dropout3D", "DropoutGenMask", "DropoutDoMask")
#: Divisions that return NaN/Inf for a zero divisor, with the divisor's input position (DivNoNan is the safe one).
DIVISOR_INPUT = {"Div": 1, "RealDiv": 1, "FloorDiv": 1, "TruncateDiv": 1, "DivMod": 1, "Reciprocal": 0}
#: A divisor made by one of these ops with a positive constant cannot reach zero (``norm + 1e-6``).
_GUARDS = frozenset({"Add", "AddExt", "Maximum", "ClipByValue", "Clip", "Adds"})


def keep_probability(q: _graph.GraphQuery, node: str) -> float | None:
    """The keep probability of a Dropout node (attribute in 1.x, constant input in 2.x), None if unknown."""
    attributes = q.graph.node(node)["attributes"]
    value = attributes.get("keep_prob")
    if value is None and q.op(node) in KEEP_INPUT:
        value = q.constant_input(node, KEEP_INPUT[q.op(node)])
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@register
@dataclass
class DropoutKeepProb(Rule):
    """A Dropout whose keep probability is low: a drop rate where a keep probability was meant, or the reverse.

    What it detects: Dropout nodes (``Dropout``, ``Dropout2D/3D``, 1.x
    ``DropoutGenMask``/``DoMask``) in any recorded graph whose keep probability
    is below ``min_keep``. MindSpore 2.x writes the keep probability (1 - p) as
    a constant input of the Dropout node, 1.x as its ``keep_prob`` attribute;
    both are read. Each finding names the layer by scope.
    Why it matters: keeping 10% of the units (``nn.Dropout(p=0.9)`` written for
    "keep 0.9") starves the next layer of signal; training is noisy and slow
    or stalls.
    Typical causes: ``nn.Dropout(0.9)`` or ``ops.dropout(x, 0.9)`` ported from
    MindSpore 1.x code, where the number was the probability to keep; a
    framework habit the other way round.
    How to fix: MindSpore 2.x takes the probability to drop: ``nn.Dropout(p=0.1)``
    keeps 90%.
    Thresholds: ``min_keep`` = 0.5. Keep 0.5 is classic dropout for hidden
    units (Srivastava et al. 2014, JMLR 15: "p = 0.5 ... close to optimal for a
    wide range of networks and tasks"; their error is flat for keep
    probabilities 0.4-0.8 and rises below) and is not a fault; below 0.5 more
    is dropped than kept, which UMLAUT (Schoop et al., CHI 2021) flags as
    HighDropout (drop rate > 0.5) and which is almost always a p/keep_prob
    mix-up.
    """

    ids = ("api.dropout-keep-prob",)
    min_keep: float = 0.5

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return _graph.missing_graph(run, training=False)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        low: dict[str, tuple[_graph.GraphQuery, str, float]] = {}
        for q in _graph.graphs(run):
            for node in q.nodes(*DROPOUT_OPS, part="forward"):
                keep = keep_probability(q, node)
                if keep is not None and keep < self.min_keep:
                    low.setdefault(q.scope(node) or node, (q, node, keep))
        for q, node, keep in low.values():
            drop = 1 - keep
            yield make_finding(
                self,
                run,
                Severity.WARNING,
                f"Dropout keeps only {keep:.0%} in {_graph.layer_name(q.scope(node))}",
                f"{_graph.where(q, node)} keeps {keep:.2g} of its inputs and drops {drop:.2g} at every training "
                f"step (keep probability {keep:.2g} < {self.min_keep}). MindSpore 2.x's nn.Dropout(p=...) and "
                "ops.dropout(x, p) take the probability to drop; 1.x's nn.Dropout(keep_prob=...) took the "
                f"probability to keep. If {drop:.2g} was meant as the share to keep, write p={keep:.2g}.",
                hint=f"For keep {drop:.2g}, use nn.Dropout(p={keep:.2g}); classic dropout is p=0.5 or less.",
                evidence={"scope": q.scope(node), "op": q.op(node), "keep_prob": keep, "graph_nodes": [node]},
            )


def divisions(q: _graph.GraphQuery) -> list[str]:
    """Forward divisions whose divisor is computed (not a constant, not ``x + positive constant``)."""
    found = []
    for node in q.nodes(*DIVISOR_INPUT, part="forward"):
        divisor = q.input_source(node, DIVISOR_INPUT[q.op(node)])
        if divisor is not None and not q.graph.is_constant(divisor) and not _guarded(q, divisor):
            found.append(node)
    return found


def _guarded(q: _graph.GraphQuery, divisor: str) -> bool:
    if q.op(divisor) not in _GUARDS:
        return False
    values = [q.graph.constant(s) for s in map(q.source, q.value_inputs(divisor)) if q.graph.is_constant(s)]
    return any(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values)


def first_nonfinite(run: Run, context: Context) -> int | None:
    """The first step at which the loss, a histogram or a tensor holds NaN or Inf."""
    steps = []
    loss = curve(run, "loss", context)
    if loss is not None:
        bad = loss[~np.isfinite(loss.to_numpy(dtype=float))]
        steps += [int(bad.index[0])] if not bad.empty else []
    hist = run.current("histograms")
    bad_hist = hist[(hist["nan_count"] + hist["pos_inf_count"] + hist["neg_inf_count"]) > 0]
    tensors = run.current("tensors")
    bad_tensors = tensors[tensors["nonfinite"] > 0]
    steps += [int(f["step"].min()) for f in (bad_hist, bad_tensors) if not f.empty]
    return min(steps) if steps else None


@register
@dataclass
class DivNoNan(Rule):
    """Divisions whose divisor can reach zero, in a run where NaN/Inf appeared out of a normal loss.

    What it detects: forward Div/RealDiv (FloorDiv, Reciprocal...) nodes whose
    divisor is computed, not a constant and not guarded by adding a positive
    constant, in a run whose loss, histograms or tensors turn NaN/Inf, when the
    loss did not blow up before (so the NaN came from finite values, as 0/0
    and x/0 do). Names the division nodes by scope.
    Why it matters: one zero divisor (an empty class in a batch, a constant
    feature's zero standard deviation, a zero count) makes a NaN that the next
    update writes into every weight; training is lost from that step on.
    Typical causes: a hand-written mean, normalisation or standardisation that
    divides by a count, a norm or a standard deviation computed from the batch.
    How to fix: ``ops.div_no_nan`` (0 where the divisor is 0), or add a small
    epsilon to the divisor (``x / (std + 1e-6)``), or guard the count.
    Thresholds: the loss "blew up" when its largest magnitude before the first
    NaN/Inf record is at least ``blowup`` = 1e3 times its typical start (the
    scale-free form of AUTOTRAINER's "loss >= 1e3 explodes"); then the
    overflow is a divergence (see loss.diverging, hparam.lr-too-large), not a
    division. A Div in a run whose loss stays finite is fine, and so are
    divisions by constants (means over a fixed batch) and by ``x + eps``.
    """

    ids = ("api.div-no-nan",)
    blowup: float = 1e3

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return _graph.missing_graph(run, training=False)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        first = first_nonfinite(run, context)
        q = _graph.training_query(run) or _graph.query(run.graphs[-1])
        nodes = divisions(q)
        if first is None or not nodes:
            return
        before = _finite_before(run, context, first)
        start = float(np.median(np.abs(before[:3]))) if before.size else math.nan
        peak = float(np.abs(before).max()) if before.size else math.nan
        if before.size and peak >= self.blowup * max(start, 1e-12):
            return
        where = _graph.uses_text(q, nodes)
        known = (
            f"the loss was still at a normal level (largest |loss| {peak:.4g} before, {start:.4g} at the start)"
            if before.size
            else "no finite loss was recorded before it, so a blow-up cannot be ruled out"
        )
        yield make_finding(
            self,
            run,
            Severity.ERROR if before.size else Severity.WARNING,
            f"NaN/Inf from step {first} with {len(nodes)} division{'s' * (len(nodes) > 1)} in the graph",
            f"NaN/Inf appears at step {first}, and {known}: values went non-finite out of finite ones, as a "
            f"division by zero does. Divisions by a computed divisor: {where}.",
            step=first,
            hint="Use ops.div_no_nan, or add a small epsilon to the divisor (x / (d + 1e-6)), or guard it.",
            evidence={
                "first_nonfinite_step": first,
                "divisions": [{"op": q.op(n), "scope": q.scope(n)} for n in nodes],
                "loss_start": start,
                "loss_peak_before": peak,
                "graph_nodes": [*[s for n in nodes for s in map(q.source, q.value_inputs(n)) if q.op(s)], *nodes],
                "graph_focus": nodes,
            },
        )


def _finite_before(run: Run, context: Context, step: int) -> np.ndarray:
    loss = curve(run, "loss", context)
    if loss is None:
        return np.empty(0)
    values = loss[loss.index < step].to_numpy(dtype=float)
    return values[np.isfinite(values)]
