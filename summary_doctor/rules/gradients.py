"""Gradients: vanishing (near zero at the input side) and exploding (huge or NaN).

Only checkable when gradients were recorded (histograms or tensors named like
``grad/fc1.weight`` or ``fc1.weight.grad``). Per-layer L2 norms come from
tensors exactly or from histogram buckets, ``sqrt(sum count*centre²)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules._histograms import (
    ENABLE_GRADIENTS,
    Outcome,
    TagKind,
    base_name,
    classify_tag,
    has_kind,
    judgment_steps,
    loss_outcome,
    names,
    stats_of_kind,
)
from summary_doctor.rules.base import Context, Missing, Rule, register


def weight_gradients(run: Run) -> pd.DataFrame:
    """Gradient rows of weight matrices (not biases or BatchNorm), in layer order, with norms."""
    rows = stats_of_kind(run, TagKind.GRADIENT)
    if rows.empty:
        return rows
    is_weight = rows["parameter"].map(lambda p: classify_tag(str(p)) in (TagKind.WEIGHT, TagKind.OTHER))
    return rows[is_weight]


def norm_ratios(grads: pd.DataFrame) -> pd.DataFrame:
    """Per step: L2 norm of the first (input-side) and last layer's gradient, and their ratio.

    AUTOTRAINER's ``gra_rate = ||g_first|| / ||g_last||``: small when the
    gradient dies on its way back to the input, large when it grows.
    """
    layers = grads.drop_duplicates("tag").sort_values("order", kind="stable")["tag"].tolist()
    if len(layers) < 2:
        return pd.DataFrame(columns=["step", "first", "last", "ratio"])
    table = grads.pivot_table(index="step", columns="tag", values="l2", aggfunc="last")
    table = table[[layers[0], layers[-1]]].dropna()
    out = pd.DataFrame(
        {"step": table.index, "first": table[layers[0]].to_numpy(), "last": table[layers[-1]].to_numpy()}
    )
    out["ratio"] = out["first"] / out["last"].where(out["last"] > 0)
    out.attrs["layers"] = (layers[0], layers[-1])
    return out


def _gated(outcome: Outcome) -> bool:
    return bool(outcome.bad)


@register
@dataclass
class GradientVanishing(Rule):
    """Gradients that vanish before reaching the first layers.

    What it detects: from AUTOTRAINER's judgment point (30% of the run) on,
    the median of ||g_first|| / ||g_last|| below ``ratio`` and the median
    ||g_first|| below ``first_norm``; or (backstop) a layer whose median mean
    |g| is below ``abs_mean``. Reported only when the loss is not converging,
    and not when gradients hold NaN/Inf (that is gradient.exploding).
    Why it matters: layers near the input stop learning; the loss plateaus.
    Typical causes: deep stacks of sigmoid/tanh, poor initialisation, dead
    ReLUs, missing normalisation.
    How to fix: ReLU-family activations, BatchNorm, He/Xavier initialisation,
    residual connections (AUTOTRAINER repairs S1, S2, S4).
    Thresholds: ``ratio`` = 1e-3 and ``first_norm`` = 1e-4 (AUTOTRAINER VG,
    tuned on its benchmark); ``abs_mean`` = 1e-7 (DeepDiagnosis; MindInsight's
    gradient_vanishing uses 1e-9); ``min_drop`` = 0.5: the loss did not halve
    (the AUTOTRAINER not-converged gate).
    """

    ids = ("gradient.vanishing",)
    ratio: float = 1e-3
    first_norm: float = 1e-4
    abs_mean: float = 1e-7
    min_drop: float = 0.5

    def requirements(self, run: Run, context: Context) -> Missing | None:
        if has_kind(run, TagKind.GRADIENT):
            return None
        return Missing("no gradient histograms or tensors recorded", ENABLE_GRADIENTS)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        outcome = loss_outcome(run, context, min_drop=self.min_drop)
        if not _gated(outcome):
            return
        grads = weight_gradients(run)
        if (grads["nonfinite"] > 0).any():
            return  # exploded: gradient.exploding reports it (AUTOTRAINER checks EG before VG)
        window = grads[grads["step"].isin(set(judgment_steps(grads["step"])))]
        ratios = norm_ratios(window)
        vanished = not ratios.empty and ratios["ratio"].median() < self.ratio
        if vanished and ratios["first"].median() < self.first_norm:
            yield self._ratio_finding(run, ratios, outcome)
            return
        small = window.groupby("tag", sort=False)["abs_mean"].median()
        small = small[small < self.abs_mean]
        if not small.empty:
            yield self._abs_finding(run, window, small, outcome)

    def _ratio_finding(self, run: Run, ratios: pd.DataFrame, outcome: Outcome) -> Finding:
        first, last = ratios.attrs["layers"]
        hits = ratios[(ratios["ratio"] < self.ratio) & (ratios["first"] < self.first_norm)]
        step = int(hits["step"].iloc[0]) if not hits.empty else int(ratios["step"].iloc[0])
        median = float(ratios["ratio"].median())
        return Finding(
            id="gradient.vanishing",
            severity=Severity.WARNING,
            title=f"gradient at {base_name(first)} is {median:.1e} of that at {base_name(last)}",
            message=(
                f"From step {int(ratios['step'].iloc[0])} the median gradient norm of {base_name(first)} is "
                f"{ratios['first'].median():.2e} (< {self.first_norm:g}), {median:.1e} of {base_name(last)}'s "
                f"(< {self.ratio:g}); first seen at step {step}; {outcome.reason}."
            ),
            hint=(
                "Use ReLU-family activations instead of deep sigmoid/tanh, add BatchNorm, use He/Xavier "
                "initialisation or residual connections."
            ),
            run=run.name,
            tags=(first, last),
            step=step,
            evidence={
                "median_ratio": median,
                "median_first_norm": float(ratios["first"].median()),
                "ratio_threshold": self.ratio,
                "first_norm_threshold": self.first_norm,
                "steps": [int(s) for s in ratios["step"]],
                "ratios": [float(r) for r in ratios["ratio"]],
                "loss": outcome.reason,
            },
        )

    def _abs_finding(self, run: Run, window: pd.DataFrame, small: pd.Series, outcome: Outcome) -> Finding:
        tags = list(small.index)
        step = int(window.loc[window["tag"].isin(tags) & (window["abs_mean"] < self.abs_mean), "step"].min())
        return Finding(
            id="gradient.vanishing",
            severity=Severity.WARNING,
            title=f"{base_name(tags[0])} gradient mean |g| {small.iloc[0]:.1e} (< {self.abs_mean:g})",
            message=(
                "Median mean |g| from the judgment point on: "
                + ", ".join(f"{base_name(t)} {v:.1e}" for t, v in small.items())
                + f"; first below {self.abs_mean:g} at step {step}; {outcome.reason}."
            ),
            hint="Check that gradients reach these layers (stop_gradient, dead ReLUs), the activations and the init.",
            run=run.name,
            tags=tuple(tags),
            step=step,
            evidence={"median_abs_mean": {str(t): float(v) for t, v in small.items()}, "threshold": self.abs_mean},
        )


@register
@dataclass
class GradientExploding(Rule):
    """Gradients that explode: NaN/Inf, or much larger at the input side, or growing by orders of magnitude.

    What it detects: NaN or Inf in any gradient (always); else, with the loss
    not converging, the median of ||g_first|| / ||g_last|| from the judgment
    point on above ``ratio``, or a layer whose gradient norm grew by more than
    ``growth`` between its first and last record.
    Why it matters: huge updates throw the weights around and end in NaN.
    Typical causes: learning rate too large, large initialisation, deep nets
    without normalisation, no gradient clipping in RNNs.
    How to fix: clip gradients (``ops.clip_by_global_norm``, AUTOTRAINER S3),
    lower the learning rate, smaller initialisation, BatchNorm.
    Thresholds: any NaN/Inf (MindInsight gradient_exploding; AUTOTRAINER EG);
    ``ratio`` = 70 (AUTOTRAINER β3, 100% P/R for 40-100 on its benchmark);
    ``growth`` = 100 (two orders of magnitude; ours, gated on the outcome);
    ``min_drop`` = 0.5 for the gate.
    """

    ids = ("gradient.exploding",)
    ratio: float = 70.0
    growth: float = 100.0
    min_drop: float = 0.5

    def requirements(self, run: Run, context: Context) -> Missing | None:
        if has_kind(run, TagKind.GRADIENT):
            return None
        return Missing("no gradient histograms or tensors recorded", ENABLE_GRADIENTS)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        grads = stats_of_kind(run, TagKind.GRADIENT)
        bad = grads[grads["nonfinite"] > 0]
        if not bad.empty:
            yield self._nonfinite(run, bad.sort_values("step", kind="stable"))
            return
        outcome = loss_outcome(run, context, min_drop=self.min_drop)
        if not _gated(outcome):
            return
        weights = weight_gradients(run)
        ratios = norm_ratios(weights[weights["step"].isin(set(judgment_steps(weights["step"])))])
        if not ratios.empty and ratios["ratio"].median() > self.ratio:
            yield self._ratio_finding(run, ratios, outcome)
            return
        growth = _growth(grads)
        growth = growth[growth["growth"] > self.growth]
        if not growth.empty:
            yield self._growth_finding(run, growth, outcome)

    def _nonfinite(self, run: Run, bad: pd.DataFrame) -> Finding:
        step = int(bad["step"].iloc[0])
        at_first = bad[bad["step"] == step]
        tags = list(dict.fromkeys(bad["tag"]))
        return Finding(
            id="gradient.exploding",
            severity=Severity.ERROR,
            title=f"NaN/Inf gradients in {', '.join(names(at_first['tag'])[:3])} from step {step}",
            message=(
                f"At step {step}, {int(at_first['nonfinite'].sum())} gradient values of "
                f"{', '.join(names(at_first['tag']))} are NaN or Inf; {len(tags)} gradient tag(s) affected."
            ),
            hint="Clip gradients (ops.clip_by_global_norm), lower the learning rate, use loss scaling with float16.",
            run=run.name,
            tags=tuple(tags),
            step=step,
            evidence={"first_step": step, "nonfinite_at_first_step": int(at_first["nonfinite"].sum()), "tags": tags},
        )

    def _ratio_finding(self, run: Run, ratios: pd.DataFrame, outcome: Outcome) -> Finding:
        first, last = ratios.attrs["layers"]
        median = float(ratios["ratio"].median())
        hits = ratios[ratios["ratio"] > self.ratio]
        step = int(hits["step"].iloc[0])
        return Finding(
            id="gradient.exploding",
            severity=Severity.WARNING,
            title=f"gradient at {base_name(first)} is {median:.0f}x that at {base_name(last)}",
            message=(
                f"Median ||g_first||/||g_last|| = {median:.3g} (> {self.ratio:g}) from step "
                f"{int(ratios['step'].iloc[0])}; first above at step {step}; {outcome.reason}."
            ),
            hint="Clip gradients, lower the learning rate or the initial weight scale, add BatchNorm.",
            run=run.name,
            tags=(first, last),
            step=step,
            evidence={"median_ratio": median, "threshold": self.ratio, "loss": outcome.reason},
        )

    def _growth_finding(self, run: Run, growth: pd.DataFrame, outcome: Outcome) -> Finding:
        top = growth.sort_values("growth", ascending=False).iloc[0]
        return Finding(
            id="gradient.exploding",
            severity=Severity.WARNING,
            title=f"{base_name(top['tag'])} gradient norm grew {top['growth']:.0f}x",
            message=(
                "Gradient norm growth between the first and last record: "
                + ", ".join(f"{base_name(r.tag)} {r.growth:.3g}x" for r in growth.itertuples())
                + f" (> {self.growth:g}); {outcome.reason}."
            ),
            hint="Clip gradients, lower the learning rate, check the initial weight scale.",
            run=run.name,
            tags=tuple(growth["tag"]),
            step=int(top["last_step"]),
            evidence={"growth": {str(r.tag): float(r.growth) for r in growth.itertuples()}, "threshold": self.growth},
        )


def _growth(grads: pd.DataFrame) -> pd.DataFrame:
    """Per gradient tag: last-record norm over first-record norm."""
    ordered = grads.sort_values("step", kind="stable").groupby("tag", sort=False)
    first, last = ordered["l2"].first(), ordered["l2"].last()
    out = pd.DataFrame({"growth": last / first.where(first > 0), "last_step": ordered["step"].last()})
    return out.dropna().reset_index()
