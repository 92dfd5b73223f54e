"""Activations: dead ReLU layers and saturated sigmoid/tanh layers.

Only checkable when activations were recorded (``ops.HistogramSummary`` in
``construct``). Histograms show values, not units: the share of values at or
below zero stands in for the share of dead units.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules._histograms import (
    ENABLE_ACTIVATIONS,
    Outcome,
    TagKind,
    activation_function,
    base_name,
    has_kind,
    judgment_steps,
    loss_outcome,
    stats_of_kind,
)
from summary_doctor.rules.base import Context, Missing, Rule, register

#: Saturation plateaus of MindInsight's recommended activation_range watchpoints.
PLATEAU = {"tanh": math.tanh(8.8), "sigmoid": 1 / (1 + math.exp(16.2))}
_GRAPH_OPS = {"relu": ("relu", "relu6", "reluv2", "leakyrelu"), "sigmoid": ("sigmoid",), "tanh": ("tanh",)}


def graph_activation(run: Run) -> str | None:
    """The activation family of the graph when it uses exactly one of ReLU, sigmoid, tanh."""
    if run.graph is None:
        return None
    ops = set(run.graph.nodes["op_type"].str.lower())
    found = [family for family, names in _GRAPH_OPS.items() if ops & set(names)]
    return found[0] if len(found) == 1 else None


def function_of(tag: str, low: float, high: float, graph_family: str | None) -> str | None:
    """Which activation a tag records: its name, else the graph's only family, else its value range."""
    named = activation_function(tag)
    if named is not None:
        return named
    if graph_family is not None:
        return graph_family
    if low >= 0:
        return "relu"
    if low >= -1 and high <= 1:
        return "tanh"
    return None


def saturated_share(run: Run, row: pd.Series, function: str) -> float:
    """Share of values on the saturation plateau; from histograms an upper bound (edge buckets counted whole)."""
    if row["exact"]:
        return math.nan
    buckets = run.bucket_arrays(row.name)
    counts = buckets.count.astype(float)
    left = buckets.left
    right = left + buckets.width
    if function == "tanh":
        edge = (right >= PLATEAU["tanh"]) | (left <= -PLATEAU["tanh"])
    else:
        edge = (right >= 1 - PLATEAU["sigmoid"]) | (left <= PLATEAU["sigmoid"])
    return float(counts[edge].sum() / counts.sum()) if counts.sum() else math.nan


def saturated_shares(run: Run, rows: pd.DataFrame, function: str) -> np.ndarray:
    """:func:`saturated_share` of many histogram rows, decoded together (counts add up exactly in any order)."""
    table = run.bucket_table(rows.index.to_numpy())
    counts, left = table.count.astype(float), table.left
    right = left + table.width
    if function == "tanh":
        edge = (right >= PLATEAU["tanh"]) | (left <= -PLATEAU["tanh"])
    else:
        edge = (right >= 1 - PLATEAU["sigmoid"]) | (left <= PLATEAU["sigmoid"])
    owner = np.repeat(np.arange(len(table)), table.sizes)
    total = np.bincount(owner, weights=counts, minlength=len(table))
    on_edge = np.bincount(owner, weights=np.where(edge, counts, 0.0), minlength=len(table))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total != 0, on_edge / total, math.nan)


def _exact_saturated(values: object, function: str) -> float:
    array = np.asarray(values, dtype=float).ravel()
    if function == "tanh":
        return float((np.abs(array) >= PLATEAU["tanh"]).mean())
    return float(((array <= PLATEAU["sigmoid"]) | (array >= 1 - PLATEAU["sigmoid"])).mean())


@register
@dataclass
class ActivationDead(Rule):
    """Dead ReLU layers and saturated sigmoid/tanh layers.

    What it detects: per activation tag, from AUTOTRAINER's judgment point
    (30% of the run) on, the median share of ReLU values at or below zero, or
    of sigmoid/tanh values on their saturation plateau.
    Why it matters: a dead or saturated unit passes no gradient; when most of a
    layer is dead the layers before it stop learning.
    Typical causes: a learning rate too large, a large negative bias, poor
    initialisation, unnormalised inputs driving sigmoid/tanh into saturation.
    How to fix: lower the learning rate, He initialisation, LeakyReLU,
    BatchNorm before the activation, normalise the inputs.
    Thresholds: ``dead`` = 0.999 (MindInsight ReLU activation_range: > 99.9%
    of outputs in [-1, 0]; reported unless the loss converged);
    ``dead_units`` = 0.7 (DeepDiagnosis dead node, and AUTOTRAINER's DR 0.7;
    per value, not per unit; only with the loss not converging);
    ``saturated`` = 0.999 (MindInsight tanh/sigmoid watchpoints, plateau at
    tanh(±8.8), sigmoid(±16.2); from histograms an upper bound, so only with
    the loss not converging). ``min_drop`` = 0.5 for the gate.
    """

    ids = ("activation.dead",)
    dead: float = 0.999
    dead_units: float = 0.7
    saturated: float = 0.999
    min_drop: float = 0.5

    def requirements(self, run: Run, context: Context) -> Missing | None:
        if has_kind(run, TagKind.ACTIVATION):
            return None
        return Missing("no activation histograms or tensors recorded", ENABLE_ACTIVATIONS)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        outcome = loss_outcome(run, context, min_drop=self.min_drop)
        if outcome.bad is False:
            return
        rows = stats_of_kind(run, TagKind.ACTIVATION)
        rows = rows[rows["step"].isin(set(judgment_steps(rows["step"])))]
        family = graph_activation(run)
        for tag, group in rows.groupby("tag", sort=False):
            function = function_of(str(tag), float(group["min"].min()), float(group["max"].max()), family)
            if function == "relu":
                yield from self._dead(run, str(tag), group, outcome)
            elif function in PLATEAU and outcome.bad:
                yield from self._saturated(run, str(tag), group, function, outcome)

    def _dead(self, run: Run, tag: str, group: pd.DataFrame, outcome: Outcome) -> Iterator[Finding]:
        share = float(group["nonpositive"].median())
        threshold = self.dead if not outcome.bad else min(self.dead, self.dead_units)
        if not share >= threshold:
            return
        step = int(group.loc[group["nonpositive"] >= threshold, "step"].min())
        bound = "" if group["exact"].all() else " (histogram estimate: the bucket holding 0 counted whole)"
        yield Finding(
            id="activation.dead",
            severity=Severity.WARNING,
            title=f"{base_name(tag)}: {share:.1%} of ReLU values <= 0",
            message=(
                f"Median share of values <= 0 in {base_name(tag)} from step {int(group['step'].min())} on is "
                f"{share:.2%}{bound} (threshold {threshold:.3g}); first at step {step}; {outcome.reason}."
            ),
            hint=(
                "Lower the learning rate, use He initialisation and non-negative biases, try LeakyReLU or "
                "BatchNorm before the ReLU (AUTOTRAINER repairs S1, S2)."
            ),
            run=run.name,
            tags=(tag,),
            step=step,
            evidence={
                "function": "relu",
                "judged_from": int(group["step"].min()),
                "median_share_nonpositive": share,
                "threshold": threshold,
                "loss": outcome.reason,
            },
        )

    def _saturated(self, run: Run, tag: str, group: pd.DataFrame, function: str, outcome: Outcome) -> Iterator[Finding]:
        values = np.full(len(group), np.nan)
        exact = group["exact"].to_numpy(dtype=bool)
        if (~exact).any():
            values[~exact] = saturated_shares(run, group[~exact], function)
        for k in np.flatnonzero(exact):
            values[k] = _exact_saturated(run.tensors.at[group.index[k], "value"], function)
        shares = pd.Series(values, index=group.index)
        share = float(shares.median())
        if not share >= self.saturated:
            return
        step = int(group.loc[shares >= self.saturated, "step"].min())
        yield Finding(
            id="activation.dead",
            severity=Severity.WARNING,
            title=f"{base_name(tag)}: {share:.1%} of {function} values saturated",
            message=(
                f"Median share of {base_name(tag)} values on the {function} plateau from step "
                f"{int(group['step'].min())} on: {share:.2%} (threshold {self.saturated:g}); first at step {step}; "
                f"{outcome.reason}."
            ),
            hint="Normalise the inputs, add BatchNorm before the activation, use a smaller init or ReLU.",
            run=run.name,
            tags=(tag,),
            step=step,
            evidence={
                "function": function,
                "judged_from": int(group["step"].min()),
                "median_share_saturated": share,
                "threshold": self.saturated,
            },
        )
