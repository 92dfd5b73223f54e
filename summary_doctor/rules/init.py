"""Weight initialisation: weights that start all zero (or constant).

SummaryCollector records its first histogram after one update (step 1), so a
zero-initialised layer rarely shows exact zeros: it shows a spread orders of
magnitude below its fan-in scale and below the other weight matrices.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules._histograms import ENABLE_WEIGHTS, TagKind, base_name, has_kind, stats_of_kind
from summary_doctor.rules.base import Context, Missing, Rule, register

HINT = (
    "Initialise weight matrices randomly (MindSpore's default HeUniform, or XavierUniform/HeNormal via "
    "weight_init=...), never 'zeros' or a constant: identical units stay identical. Biases may start at zero "
    "(checklist wi.01)."
)


def first_weights(run: Run) -> pd.DataFrame:
    """Each weight matrix at its first recorded step, with its spread; biases and BatchNorm left out."""
    return stats_of_kind(run, TagKind.WEIGHT, first_only=True)


def _fan_in_scale(first: pd.DataFrame) -> pd.Series:
    """sqrt(1/fan_in) per row (the LeCun/Xavier scale), NaN where the graph gave no shape."""
    return first["fan_in"].map(lambda f: math.sqrt(1 / f) if f and f == f else math.nan).astype(float)


@register
@dataclass
class InitAllZero(Rule):
    """Weight matrices initialised to zero (or one constant value).

    What it detects: at the first recorded step, a weight matrix (not a bias,
    not BatchNorm beta/gamma/moving statistics, which start at 0 or 1 by
    design) that is all zero or constant (error), or whose spread is
    orders of magnitude below both its fan-in scale sqrt(1/fan_in) and the
    spread of the other weight matrices (warning: the first record follows
    one update, so a zero-initialised layer is no longer exactly zero).
    Why it matters: units with identical weights get identical gradients and
    stay identical (no symmetry breaking); a zero layer also blocks the
    gradient to the layers before it.
    Typical causes: ``weight_init='zeros'``, a custom init that forgot the
    weights, loading a checkpoint that lacks the layer.
    How to fix: use a random initialiser (HeUniform, XavierUniform); biases may
    stay zero.
    Thresholds: all zero / constant (MindInsight watchpoint
    weight_initialization, zero_percentage_ge = 100); spread: variance below
    ``max_variance`` = 1e-5 (DeepDiagnosis "poor weight"), and std below
    ``fan_in_factor`` = 1e-2 of sqrt(1/fan_in) (two orders of magnitude below
    the LeCun/Xavier scale; He is sqrt(2) larger), and below ``peer_factor`` =
    1e-2 of the median of the other weight matrices (each measured against its
    own fan-in scale when the graph gives shapes). Equal magnitudes: with at
    least ``min_values`` values, mean|w| at least ``equal_magnitude`` = 0.9 of
    max|w| (a normal init gives about 0.25, a uniform one 0.5) and a spread
    below ``equal_magnitude_fan_in_factor`` = 0.1 of sqrt(1/fan_in) (of the
    other weight matrices' median spread without a graph): what a
    zero layer looks like after one Adam step, where each element moves by
    about the learning rate.
    """

    ids = ("init.all-zero",)
    max_variance: float = 1e-5
    fan_in_factor: float = 1e-2
    peer_factor: float = 1e-2
    equal_magnitude: float = 0.9
    equal_magnitude_fan_in_factor: float = 0.1
    min_values: int = 100

    def requirements(self, run: Run, context: Context) -> Missing | None:
        if has_kind(run, TagKind.WEIGHT):
            return None
        return Missing("no weight-matrix histograms or tensors recorded", ENABLE_WEIGHTS)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        first = first_weights(run)
        first = first[first["nonfinite"] < first["count"]]
        constant = (first["min"] == first["max"]) & np.isfinite(first["min"])
        if constant.any():
            for row in first[constant].itertuples():
                yield self._constant(run, row)
        reported = set()
        for finding in self._small_spread(run, first[~constant]):
            reported.update(finding.tags)
            yield finding
        rest = first[~constant & ~first["tag"].isin(reported)]
        yield from self._equal_magnitudes(run, rest)

    def _equal_magnitudes(self, run: Run, first: pd.DataFrame) -> Iterator[Finding]:
        """Every element at (almost) the same magnitude, well below the fan-in scale.

        One Adam-family step from a constant moves each element by about the
        learning rate, with the sign of its gradient: a zero layer then reads
        as two spikes at +-lr, whose spread can be only ~50x below the fan-in
        scale. No random initialiser puts nearly all values at the extremes.
        """
        extreme = np.maximum(first["min"].abs(), first["max"].abs())
        share = first["abs_mean"] / extreme.where(extreme > 0)
        scale = _fan_in_scale(first)
        unscaled = first.index[scale.isna()]  # only these need the other weight matrices' median
        peers = pd.Series(
            [first["std"].drop(index=i).median() if len(first) > 1 else math.nan for i in unscaled],
            index=unscaled,
            dtype=float,
        )
        reference = scale.fillna(peers)  # without shapes in a graph, the other weight matrices
        hits = (
            (first["count"] >= self.min_values)
            & (share >= self.equal_magnitude)
            & (first["std"] < self.equal_magnitude_fan_in_factor * reference)
        )
        for position in np.nonzero(hits.to_numpy())[0]:
            row = first.iloc[position]
            name = base_name(row["tag"])
            below = float(reference.iloc[position] / row["std"])
            yield Finding(
                id="init.all-zero",
                severity=Severity.WARNING,
                title=f"{name}: every value near +-{extreme.iloc[position]:.2g} at step {row['step']}, "
                f"{below:,.0f}x below its reference scale",
                message=(
                    f"At its first recorded step {row['step']}, {name} has mean|w| = {row['abs_mean']:.3g}, "
                    f"{share.iloc[position]:.0%} of its largest magnitude {extreme.iloc[position]:.3g}: nearly "
                    "every element has the same size, the trace of one sign-based (Adam-family) update from a "
                    f"constant initial value; its spread is {below:,.0f}x below sqrt(1/fan_in) (or, without a "
                    "graph, the other weight matrices)."
                ),
                hint=HINT,
                run=run.name,
                tags=(row["tag"],),
                step=int(row["step"]),
                evidence={
                    "abs_mean_over_max": float(share.iloc[position]),
                    "std": float(row["std"]),
                    "reference_std": float(reference.iloc[position]),
                    "min": float(row["min"]),
                    "max": float(row["max"]),
                },
            )

    def _constant(self, run: Run, row) -> Finding:
        what = "all zero" if row.min == 0 else f"constant {row.min:.4g}"
        return Finding(
            id="init.all-zero",
            severity=Severity.ERROR,
            title=f"{base_name(row.tag)} is {what} at step {row.step}",
            message=(
                f"Every one of the {row.count} values of {base_name(row.tag)} equals {row.min:.4g} at its first "
                f"recorded step {row.step}: the layer was initialised to a constant and its units cannot "
                "differentiate."
            ),
            hint=HINT,
            run=run.name,
            tags=(row.tag,),
            step=int(row.step),
            evidence={"value": float(row.min), "count": int(row.count), "zero_fraction": float(row.min == 0)},
        )

    def _small_spread(self, run: Run, first: pd.DataFrame) -> Iterator[Finding]:
        # only a spread under max_variance can be a hit (the first test of _verdict): the others are not looked at
        small = np.flatnonzero(first["std"].to_numpy(dtype=float) ** 2 < self.max_variance)
        if not len(small):
            return
        scale = _fan_in_scale(first)
        relative = (first["std"] / scale).where(scale.notna(), first["std"])
        for position, row in zip(small, first.iloc[small].itertuples(), strict=True):
            peers = relative.drop(index=relative.index[position]).dropna()
            verdict = self._verdict(row.std, scale.iloc[position], relative.iloc[position], peers)
            if verdict is not None:
                yield self._finding(run, row, scale.iloc[position], verdict)

    def _verdict(self, std: float, scale: float, relative: float, peers: pd.Series) -> dict | None:
        """The numbers behind a hit, or None: every available reference must agree."""
        if not std**2 < self.max_variance:
            return None
        below_fan_in = None if math.isnan(scale) else std / scale
        below_peers = relative / peers.median() if len(peers) else None
        if below_fan_in is None and below_peers is None:
            return None
        if below_fan_in is not None and below_fan_in >= self.fan_in_factor:
            return None
        if below_peers is not None and below_peers >= self.peer_factor:
            return None
        return {"below_fan_in": below_fan_in, "below_peers": below_peers}

    def _finding(self, run: Run, row, scale: float, verdict: dict) -> Finding:
        name = base_name(row.tag)
        factor = verdict["below_fan_in"] if verdict["below_fan_in"] is not None else verdict["below_peers"]
        reference = "its fan-in scale" if verdict["below_fan_in"] is not None else "the other weights"
        parts = [f"spread (std) {row.std:.2g} at its first recorded step {row.step}"]
        if verdict["below_fan_in"] is not None:
            parts.append(
                f"{1 / verdict['below_fan_in']:.0f}x below sqrt(1/fan_in) = {scale:.3g} (fan-in {row.fan_in:g})"
            )
        if verdict["below_peers"] is not None:
            parts.append(f"{1 / verdict['below_peers']:.0f}x below the median of the other weight matrices")
        return Finding(
            id="init.all-zero",
            severity=Severity.WARNING,
            title=f"{name} spread {row.std:.2g} at step {row.step}, {1 / factor:,.0f}x below {reference}",
            message=(
                f"{name}: " + "; ".join(parts) + ". A layer initialised to zero shows exactly this after the "
                "first updates (SummaryCollector records after step 1)."
            ),
            hint=HINT,
            run=run.name,
            tags=(row.tag,),
            step=int(row.step),
            evidence={
                "std": float(row.std),
                "fan_in": None if row.fan_in != row.fan_in or row.fan_in is None else int(row.fan_in),
                "fan_in_scale": None if math.isnan(scale) else float(scale),
                "below_fan_in": verdict["below_fan_in"],
                "below_peers": verdict["below_peers"],
                "min": float(row.min),
                "max": float(row.max),
            },
        )
