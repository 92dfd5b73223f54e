"""Learning rate too large or too small: a bad loss outcome corroborated by the size of the weight updates.

A rate is never judged from its value alone (0.1 is a fine rate for SGD and a
bad one for Adam): each rule needs a bad outcome in the loss curve and, where
the run holds weight histograms, corroboration from MindInsight's update
ratio (AUTOTRAINER's outcome gate).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules import _measures as measures
from summary_doctor.rules import _series as series
from summary_doctor.rules._eval import eval_still_improving
from summary_doctor.rules._measures import end_slope
from summary_doctor.rules._series import fmt
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register
from summary_doctor.rules.dynamics import LossDiverging, LossPlateau, diverges, oscillates
from summary_doctor.rules.tags import find_tag, lineage_learning_rate
from summary_doctor.rules.weights import WeightUpdateRatio, near_zero_intervals, update_ratios

_NO_HISTOGRAMS = "no weight histograms, so the size of the updates could not confirm it"


def _first_nonfinite_step(run: Run, context: Context) -> int | None:
    tag = find_tag(run, "loss", context)
    if tag is None:
        return None
    values = run.scalar_series(tag)
    bad = values.index[~np.isfinite(values.to_numpy())]
    return int(bad[0]) if len(bad) else None


def _per_step_ratio(run: Run, ratios: pd.DataFrame, until: int | None) -> pd.Series:
    """Median update ratio across weight tags per step, up to ``until`` (the first NaN loss).

    Intervals starting from a weight still near zero are left out, as
    weight.update-ratio leaves them out: any update is large relative to
    zero, and a zero-initialised layer is init.all-zero's to report.
    """
    ratios = ratios[~near_zero_intervals(run, ratios, WeightUpdateRatio.near_zero)]
    if until is not None:
        ratios = ratios[ratios["step"] <= until]
    ratios = ratios[np.isfinite(ratios["ratio"])]
    return ratios.groupby("step")["ratio"].median()


@register
@dataclass
class LrTooLarge(Rule):
    """Learning rate too large: the loss turns NaN, diverges or oscillates, and updates are large.

    What it detects
        A bad outcome in the loss (NaN/Inf, ``loss.diverging`` or
        ``loss.oscillating`` by their default thresholds, or a ``loss.plateau``
        stall, as when a too-large step kills the ReLUs and the loss sits at
        chance level) together with, when
        weight histograms or tensors were recorded, a weight update ratio
        mean|dw| / mean|w| per step of ``max_update_ratio`` or more (median
        over the weight matrices, highest step before any NaN loss). Without
        weight histograms the loss outcome alone is reported, and says so;
        a stall alone is not (it has many causes: loss.plateau reports it).
    Why it matters
        Steps overshoot the minimum: the loss bounces, climbs or overflows,
        and the model does not reach the accuracy it could.
    Typical causes
        A learning rate copied from another optimizer or batch size; no
        warm-up; a batch size reduced without scaling the rate down.
    How to fix
        Divide the learning rate by 10 (AUTOTRAINER's repair for oscillating
        loss); run a learning-rate range test (Smith 2017, MindSpore checklist
        hp.01); add warm-up and gradient clipping.
    Thresholds
        max_update_ratio = 0.1: MindInsight's "weight change above threshold"
        watchpoint (UI default 0.1; its recommender uses 1). The ratio from
        histograms is a lower bound (see weights.update_ratios); intervals
        from weights still near zero are left out (weight.update-ratio's
        near_zero: any step is large relative to zero). The loss
        outcomes are those of loss.diverging, loss.oscillating and
        loss.plateau, on the same level scale: a converged loss wobbling near
        zero is no divergence, so it no longer reads as a rate too large, and
        a loss made noisy by something else (a wrong Dropout rate) must swing
        around its trend, not merely be noisy, before the rate is blamed.
    """

    ids = ("hparam.lr-too-large",)
    hint: ClassVar[str] = (
        "Divide the learning rate by 10, or find the largest stable rate with a learning-rate range test; "
        "add warm-up and gradient clipping."
    )
    max_update_ratio: float = 0.1

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return series.missing_loss(run, context, LossDiverging.min_points)

    def _outcome(self, run: Run, context: Context) -> tuple[str, int | None] | None:
        nan_step = _first_nonfinite_step(run, context)
        if nan_step is not None:
            return f"the loss turns non-finite at step {nan_step}", nan_step
        return self._swinging_outcome(run, context) or self._stalled_outcome(run, context)

    @staticmethod
    def _stalled_outcome(run: Run, context: Context) -> tuple[str, int | None] | None:
        """A loss stuck far above convergence (``loss.plateau``): only with large updates, see ``check``."""
        stall = next((f for f in LossPlateau().check(run, context) if f.severity.rank >= 1), None)
        if stall is None:
            return None
        return f"the loss stalls at {fmt(stall.evidence['final'])} from step {stall.step}", stall.step

    @staticmethod
    def _swinging_outcome(run: Run, context: Context) -> tuple[str, int | None] | None:
        c = series.loss_curve(run, context)
        assert c is not None
        d = measures.divergence(c, math.log(LossDiverging.rise_factor))
        if d.exceeds(LossDiverging.rise_factor, LossDiverging.min_t):
            return f"the loss ends {fmt(series.as_factor(d.rise))}x above its best", d.first_step
        if oscillates(c):
            o = measures.oscillation(c)
            return f"the loss swings {fmt(series.as_factor(o.amplitude))}x without settling", o.start_step
        return None

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        outcome = self._outcome(run, context)
        if outcome is None:
            return
        what, step = outcome
        per_step = _per_step_ratio(run, update_ratios(run), _first_nonfinite_step(run, context))
        if per_step.empty and what.startswith("the loss stalls"):
            return  # a stall alone has many causes: without update ratios it is loss.plateau's to report
        lr = lineage_learning_rate(run)
        lr_text = f" (learning rate {fmt(lr)})" if lr is not None else ""
        evidence = {"outcome": what, "learning_rate": lr, "threshold": self.max_update_ratio}
        if per_step.empty:
            yield make_finding(
                self,
                run,
                Severity.WARNING,
                f"learning rate may be too large{lr_text}: {what}",
                f"{what[0].upper()}{what[1:]}; {_NO_HISTOGRAMS}.",
                step=step,
                evidence=evidence,
            )
            return
        peak_step, peak = int(per_step.idxmax()), float(per_step.max())
        if peak < self.max_update_ratio:
            return
        first_large = int(per_step.index[per_step.to_numpy() >= self.max_update_ratio][0])
        nan = _first_nonfinite_step(run, context) is not None
        yield make_finding(
            self,
            run,
            Severity.ERROR if nan else Severity.WARNING,
            f"learning rate too large{lr_text}: updates reach {fmt(peak)} of the weights per step",
            f"{what[0].upper()}{what[1:]}, and the weights change by {fmt(peak)} of their size per step at step "
            f"{peak_step} (median over weight matrices; above {self.max_update_ratio} is too large).",
            step=step,
            evidence={
                **evidence,
                "update_ratio": peak,
                "update_ratio_step": peak_step,
                "first_large_update_step": first_large,
            },
        )


@register
@dataclass
class LrTooSmall(Rule):
    """Learning rate too small: the loss barely moves and every layer's updates are tiny.

    What it detects
        The loss does not halve over the run (it keeps more than
        ``1 - min_improvement`` of its start, on the level scale every loss
        rule uses), and the update ratio mean|dw| / mean|w| per step is small
        for every weight matrix (median over its steps; frozen, never-changing
        weights are left to graph.weight-freezing): below ``min_update_ratio``
        from exact tensors; from histograms, whose ratios are lower bounds,
        below ``min_update_ratio`` x ``lower_bound_margin``, or below
        ``min_update_ratio`` itself when the loss is still descending when
        training stops (the eval loss better at each of its last 3
        evaluations, or without an eval curve a downward trend of the train
        loss over its last epoch at t >= ``min_trend_t``): slow steady
        progress with small steps is what a too-small rate looks like, while
        a flat loss with small updates can have other causes. Without weight
        histograms: a lineage learning rate below ``min_learning_rate``. Not
        judged when the loss turns NaN/Inf or diverges (after an explosion the
        weights are so large that any update looks small).
    Why it matters
        Training spends its budget without learning; it looks like a model
        that cannot learn the task.
    Typical causes
        A rate meant for fine-tuning used from scratch; a schedule decayed to
        almost zero; a rate scaled down for a batch size that was not used;
        plain SGD (no momentum) at a rate tuned for Momentum or Adam.
    How to fix
        Multiply the learning rate by 10 (AUTOTRAINER's repair for slow
        convergence) or run a learning-rate range test (MindSpore checklist hp.01).
    Thresholds
        min_update_ratio = 1e-4: MindInsight's "weight change below threshold"
        watchpoint. Requiring it of every layer keeps vanishing gradients
        (tiny updates in the first layers only) out. lower_bound_margin = 0.1:
        histogram-estimated ratios are lower bounds and alone must fall below
        min_update_ratio x 0.1 (exact tensor ratios need not). min_improvement
        = 0.5: the loss did not halve, the one bar for "converged" shared by
        every rule (AUTOTRAINER's slow-convergence gate); it was 0.25, which
        missed plain SGD at 1/100 of its rate on a regression (the loss fell
        35% in 800 steps while the eval loss crept down 1.4% per epoch).
        min_trend_t = 2: a trend two standard errors above the step noise.
        min_learning_rate = 1e-7: UMLAUT's "LR low".
    """

    ids = ("hparam.lr-too-small",)
    hint: ClassVar[str] = (
        "Multiply the learning rate by 10, or find a good one with a learning-rate range test; "
        "check that the schedule does not decay it to almost zero."
    )
    min_update_ratio: float = 1e-4
    lower_bound_margin: float = 0.1
    min_improvement: float = 1 - series.CONVERGED_RATIO
    min_trend_t: float = 2.0
    min_learning_rate: float = 1e-7

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return series.missing_finite_end(run, context, series.MIN_POINTS)

    def _still_descending(self, run: Run, context: Context, c: series.Curve) -> bool:
        """The loss is still going down when training stops: eval curve first, else the train trend."""
        improving = eval_still_improving(run, context)
        if improving is not None:
            return improving
        e = end_slope(c, epochs=1.0, fraction=0.25)
        return e.drop_per_epoch > 0 and e.t_value >= self.min_trend_t

    def _limit(self, run: Run, context: Context, c: series.Curve, exact: bool) -> tuple[float, str]:
        """The largest per-layer ratio that counts as too small, and why."""
        if exact:
            return self.min_update_ratio, "exact ratios from weight tensors"
        if self._still_descending(run, context, c):
            return self.min_update_ratio, "lower bounds from histograms, with the loss still descending slowly"
        return self.min_update_ratio * self.lower_bound_margin, "lower bounds from histograms"

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        c = series.loss_curve(run, context)
        assert c is not None
        improvement = 1 - series.remaining(c)
        if improvement >= self.min_improvement or diverges(c):
            return  # a loss that blew up is loss.diverging's (and lr-too-large's), whatever the update sizes
        ratios = update_ratios(run)
        ratios = ratios[np.isfinite(ratios["ratio"]) & (ratios["ratio"] > 0)]
        lr = lineage_learning_rate(run)
        evidence = {"loss_improvement": improvement, "learning_rate": lr, "threshold": self.min_update_ratio}
        if ratios.empty:
            if lr is not None and lr < self.min_learning_rate:
                yield make_finding(
                    self,
                    run,
                    Severity.WARNING,
                    f"learning rate {fmt(lr)} is tiny and the loss fell only {fmt(100 * improvement)}%",
                    f"The loss improved by {fmt(100 * improvement)}% over the run "
                    f"with a learning rate of {fmt(lr)}; {_NO_HISTOGRAMS}.",
                    evidence=evidence,
                )
            return
        per_tag = ratios.groupby("tag")["ratio"].median()
        limit, basis = self._limit(run, context, c, bool(ratios["exact"].all()))
        if per_tag.max() >= limit:
            return
        lr_text = f" (learning rate {fmt(lr)})" if lr is not None else ""
        yield make_finding(
            self,
            run,
            Severity.WARNING,
            f"learning rate too small{lr_text}: updates are {fmt(per_tag.median())} of the weights per step",
            f"The loss improved by only {fmt(100 * improvement)}% over the run, and every weight matrix changes "
            f"by less than {fmt(limit)} of its size per step (largest {fmt(per_tag.max())}, "
            f"in {per_tag.idxmax()}; {basis}).",
            step=int(c.steps[0]),
            tags=tuple(per_tag.index),
            evidence={
                **evidence,
                "update_ratio_median": float(per_tag.median()),
                "update_ratio_max": float(per_tag.max()),
                "limit": limit,
            },
        )
