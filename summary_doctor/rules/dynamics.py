"""Training dynamics of the loss: NaN/Inf, divergence, oscillation, plateau; train/eval drift.

All measures are scale-free (see ``_series``): a loss of 0.01 and of 1000, a
run of 100 steps and of 100,000 are judged alike. They read the loss the one
way ``_series.Curve`` does: the points before any NaN/Inf, on the level
``ln(loss + 5% of the start)``, so a converged loss wobbling at 0.1% of its
start is not read as a drama of ratios between tiny numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules import _measures as measures
from summary_doctor.rules import _series as series
from summary_doctor.rules._eval import accuracy_gap, eval_improves_after, eval_turn
from summary_doctor.rules._series import fmt
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register
from summary_doctor.rules.tags import find_tag, lineage_final_loss, missing_tag


@register
@dataclass
class LossNanInf(Rule):
    """Loss becomes NaN or Inf.

    What it detects
        Any non-finite value of the training loss curve (or of the final loss
        in lineage), and the first step where it appears.
    Why it matters
        Once the loss is NaN the weights are usually NaN too: every step after
        it is wasted, and the final model is unusable.
    Typical causes
        A learning rate far too large; a division by zero or log(0) in the
        network or loss (Div where DivNoNan was meant); exploding gradients;
        float16 overflow without loss scaling; NaN in the input data.
    How to fix
        Lower the learning rate by 10x or add warm-up; clip gradients; use
        DivNoNan or add an epsilon; check the data for NaN/Inf; with mixed
        precision use a dynamic loss scale (MindSpore accuracy checklist).
    Thresholds
        None: a single non-finite value is enough (AUTOTRAINER, MindInsight's
        overflow watchpoint and TensorBoard's Inf/NaN alert all use any).
    """

    ids = ("loss.nan-inf",)
    hint: ClassVar[str] = (
        "Lower the learning rate by 10x and add warm-up; clip gradients; replace Div by DivNoNan where a "
        "divisor can be 0; check the input data for NaN/Inf; with float16 use a dynamic loss scale."
    )

    def requirements(self, run: Run, context: Context) -> Missing | None:
        if find_tag(run, "loss", context) is None and lineage_final_loss(run) is None:
            return missing_tag("loss", context)
        return None

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        tag = find_tag(run, "loss", context)
        values = run.scalar_series(tag) if tag else None
        if values is not None and len(values) and not np.isfinite(values.to_numpy()).all():
            bad = values[~np.isfinite(values.to_numpy())]
            first = int(bad.index[0])
            finite_before = values[(values.index < first) & np.isfinite(values.to_numpy())]
            last_good = float(finite_before.iloc[-1]) if len(finite_before) else None
            yield make_finding(
                self,
                run,
                Severity.ERROR,
                f"loss is {fmt(bad.iloc[0])} from step {first} ({len(bad)} of {len(values)} values non-finite)",
                f"The loss '{tag}' is {fmt(bad.iloc[0])} at step {first}; {len(bad)} of its {len(values)} "
                f"recorded values are NaN or Inf"
                + (f" (last finite value {fmt(last_good)})." if last_good is not None else "."),
                step=first,
                tags=(tag,),
                evidence={"first_step": first, "nonfinite": len(bad), "points": len(values), "last_finite": last_good},
            )
            return
        final = lineage_final_loss(run)
        if final is not None and not math.isfinite(final):
            yield make_finding(
                self,
                run,
                Severity.ERROR,
                f"final loss in lineage is {fmt(final)}",
                f"The training loss that SummaryCollector wrote to lineage at the end is {fmt(final)}.",
                evidence={"lineage_loss": str(final)},
            )


@register
@dataclass
class LossDiverging(Rule):
    """Loss grows: the end of the run is well above the best the loss reached.

    What it detects
        The median loss over the last half epoch (or last 15% of the run) is
        ``rise_factor`` times or more above the minimum of the running median
        (a third of an epoch wide) reached earlier.
    Why it matters
        Training is undoing its own progress: the final weights are worse than
        weights the run already had.
    Typical causes
        Learning rate too large (or a schedule that raises it); missing
        warm-up; exploding gradients; loss-scale overflow.
    How to fix
        Lower the learning rate by 10x (a learning-rate range test finds the
        largest stable one); add warm-up and gradient clipping; keep the
        checkpoint of the best step (MindSpore accuracy checklist, hp.01).
    Thresholds
        rise_factor = 2.0: end-of-run median / best running median (both
        over half an epoch), on the level scale ln(loss + 5% of the start):
        a loss that went 2.3 -> 0.004 and ends at 0.013 has risen by 0.4% of
        its start, a wobble of a converged run, not a 3x divergence; far
        above that floor it is the plain ratio. Healthy step-level losses of
        the fixtures end at 0.7-1.3x their best. min_t = 3.0: the rise must
        also be three standard errors of the two medians under the curve's
        own step noise, so a loss that only swings (loss.oscillating) is not
        called diverging. Only the points before a NaN/Inf count (after it
        the weights are corrupt: loss.nan-inf). AUTOTRAINER calls a loss >=
        1e3 "exploded" (absolute, so not used here); this relative form works
        at any scale.
    """

    ids = ("loss.diverging",)
    hint: ClassVar[str] = (
        "Lower the learning rate by 10x (find the largest stable one with a learning-rate range test), add "
        "warm-up and gradient clipping, and keep the checkpoint of the best step."
    )
    rise_factor: float = 2.0
    min_t: float = 3.0
    min_points: int = 4

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return series.missing_loss(run, context, self.min_points)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        c = series.loss_curve(run, context)
        assert c is not None
        d = measures.divergence(c, math.log(self.rise_factor))
        if not d.exceeds(self.rise_factor, self.min_t):
            return
        ratio_of_shown = d.final_value / d.min_value if d.min_value > 0 else math.nan
        factor = ratio_of_shown if math.isfinite(ratio_of_shown) else series.as_factor(d.rise)
        yield make_finding(
            self,
            run,
            Severity.ERROR if d.above_start else Severity.WARNING,
            f"loss ends {fmt(factor)}x above its best ({fmt(d.final_value)} vs {fmt(d.min_value)} "
            f"at step {d.min_step})",
            f"The loss reached {fmt(d.min_value)} around step {d.min_step}, then rose: the last part of the run "
            f"sits at {fmt(d.final_value)}, {fmt(factor)}x the best"
            + (", above where training started." if d.above_start else "."),
            step=d.first_step,
            tags=(find_tag(run, "loss", context) or "",),
            evidence={
                "rise_factor": factor,
                "best": d.min_value,
                "best_step": d.min_step,
                "final": d.final_value,
                "threshold": self.rise_factor,
            },
        )


@register
@dataclass
class LossOscillating(Rule):
    """Loss swings without settling: late swings as large as all the progress made.

    What it detects
        After the first 30% of the run, the spread between the 10% and 90%
        quantiles of the loss around its own straight-line trend is at least
        ``min_swing`` (as a factor) and at least as large as the net drop from
        the start to that late part. A loss that diverged (loss.diverging)
        by more than it swings is not also called swinging: its swings are
        part of the blow-up.
    Why it matters
        The optimiser keeps jumping across the valley instead of descending;
        the final weights depend on where the last step happened to land.
    Typical causes
        Learning rate too large; batch too small for the learning rate;
        unshuffled data (each batch from one class); a bad momentum setting.
    How to fix
        Lower the learning rate by 10x or decay it; raise the batch size
        (32 is a secure value, 64/128/256 worth trying); shuffle the dataset
        (MindSpore checklist hp.01, hp.03, dp.03; AUTOTRAINER repairs
        oscillation by dividing the learning rate by 10).
    Thresholds
        min_swing = 2.0: q90/q10 of the late block medians after removing
        their Theil-Sen trend (a loss still falling steadily through a decade
        in its late part is descending, not swinging), on the level scale
        ln(loss + 5% of the start), so swings far below the start (2.6e-05 to
        8.9e-04 after a start near 1) are not a factor of 30.
        swing_vs_progress = 1.0: swing (log) / net drop (log). AUTOTRAINER
        judges from 30% of the run on (judgment_point) and flags swings >=
        zeta = 0.03 in accuracy on >= eta = 20% of the points; quantiles over
        10% tails play that role for losses of any scale. Healthy step-level
        losses swing by about 0.5-0.65 of their progress.
    """

    ids = ("loss.oscillating",)
    hint: ClassVar[str] = (
        "Lower the learning rate by 10x or decay it; use a larger batch (32 is a secure value, try "
        "64/128/256); make sure the dataset is shuffled."
    )
    min_swing: float = 2.0
    swing_vs_progress: float = 1.0
    min_points: int = series.MIN_POINTS

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return series.missing_loss(run, context, self.min_points)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        c = series.loss_curve(run, context)
        assert c is not None
        o = measures.oscillation(c)
        progress = max(o.progress, 0.0)
        if o.amplitude < math.log(self.min_swing) or o.amplitude < self.swing_vs_progress * progress:
            return
        if blown_up(c, o):
            return
        swing = series.as_factor(o.amplitude)
        yield make_finding(
            self,
            run,
            Severity.WARNING,
            f"loss swings {fmt(swing)}x around its trend (between {fmt(o.low)} and {fmt(o.high)}) without settling",
            f"From step {o.start_step} on, the loss moves between {fmt(o.low)} and {fmt(o.high)} (10%/90% "
            f"quantiles); around its trend it swings by a factor {fmt(swing)}, while it is only "
            f"{fmt(series.as_factor(progress))}x lower than at the start.",
            step=o.start_step,
            tags=(find_tag(run, "loss", context) or "",),
            evidence={
                "swing_factor": swing,
                "progress_factor": series.as_factor(progress),
                "q10": o.low,
                "q90": o.high,
                "threshold": self.min_swing,
            },
        )


def diverges(c: series.Curve) -> bool:
    """``loss.diverging`` by its default thresholds."""
    if len(c) < LossDiverging.min_points:
        return False
    d = measures.divergence(c, math.log(LossDiverging.rise_factor))
    return d.exceeds(LossDiverging.rise_factor, LossDiverging.min_t)


def blown_up(c: series.Curve, o: measures.Oscillation) -> bool:
    """The loss diverged by more than it swings: its swings are part of the blow-up, not an oscillation."""
    d = measures.divergence(c, math.log(LossDiverging.rise_factor))
    return diverges(c) and d.rise > o.amplitude


def oscillates(c: series.Curve) -> bool:
    """``loss.oscillating`` by its default thresholds."""
    if len(c) < LossOscillating.min_points:
        return False
    o = measures.oscillation(c)
    swings = o.amplitude >= max(math.log(LossOscillating.min_swing), LossOscillating.swing_vs_progress * o.progress)
    return swings and not blown_up(c, o)


@register
@dataclass
class LossPlateau(Rule):
    """Loss stops improving early, far above where a converged run ends.

    What it detects
        The running median of the loss never again beats its best by more
        than ``min_gain`` (or three standard errors of the step noise) after a
        point in the first ``1 - min_stalled_fraction`` of the run, while the
        end level is still above ``converged_ratio`` of the start level and
        the loss is neither diverging nor swinging (those are
        ``loss.diverging`` and ``loss.oscillating``: a stall means flat).
        The start is the higher of the first record and the first window,
        so a fast drop in the first steps still counts as progress; and when
        an eval curve keeps improving (by a fifth of ``min_gain``) after the
        stall, the run is near its floor (fine-tuning, the task's noise
        level), not stalled. A loss that turns NaN/Inf is not judged: a curve
        of overflows is not a plateau (loss.nan-inf reports it).
    Why it matters
        The remaining steps cost time without improving the model.
    Typical causes
        Learning rate too small or decayed too early; dead ReLUs or saturated
        activations; vanishing gradients; wrong loss for the labels; labels
        that carry no signal.
    How to fix
        Run a learning-rate range test and raise the rate; check gradients and
        activations (--explain gradient.vanishing, activation.dead);
        normalise the inputs; check the loss function against the labels.
    Thresholds
        min_gain = 0.05 (5% lower loss counts as progress);
        min_stalled_fraction = 0.5 ("most of the run");
        converged_ratio = 0.5: a loss that ends below half its start (on the
        level scale ln(loss + 5% of the start)) has converged, the same bar
        every rule uses for "converged" (AUTOTRAINER gates slow convergence
        on a bad outcome). A hard task stops at a modest loss (four
        overlapping classes: 2.2 -> 0.66, 30% of the start); the stalls of
        random labels, dead units or vanishing gradients keep 60-100% of it.
    """

    ids = ("loss.plateau",)
    hint: ClassVar[str] = (
        "Raise the learning rate (learning-rate range test) or delay its decay; check gradients and "
        "activations for vanishing or dead units; normalise inputs; check the loss against the labels."
    )
    min_gain: float = 0.05
    min_stalled_fraction: float = 0.5
    converged_ratio: float = series.CONVERGED_RATIO
    min_points: int = series.MIN_POINTS

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return series.missing_finite_end(run, context, self.min_points)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        c = series.loss_curve(run, context)
        assert c is not None
        s = measures.stall(c, math.log(1 + self.min_gain))
        remaining = series.as_factor(s.remaining)
        if s.stalled_fraction < self.min_stalled_fraction or remaining <= self.converged_ratio:
            return
        if diverges(c) or oscillates(c):
            return
        if eval_improves_after(run, context, s.stall_step, min_gain=self.min_gain / 5):
            return
        yield make_finding(
            self,
            run,
            Severity.WARNING,
            f"loss stalls at {fmt(s.final_value)} from step {s.stall_step} ({fmt(100 * s.stalled_fraction)}% "
            "of the run)",
            f"After step {s.stall_step} the loss never improves by more than {fmt(100 * self.min_gain)}% "
            f"again; it ends at {fmt(s.final_value)}, {fmt(remaining)}x its start ({fmt(s.start_value)}).",
            step=s.stall_step,
            tags=(find_tag(run, "loss", context) or "",),
            evidence={
                "stall_step": s.stall_step,
                "stalled_fraction": s.stalled_fraction,
                "final_over_start": remaining,
                "start": s.start_value,
                "final": s.final_value,
            },
        )


@register
@dataclass
class MetricOverfitting(Rule):
    """Train and eval metrics drift apart: eval loss rising while train loss falls, or a wide accuracy gap.

    What it detects
        Either (a) over at least ``min_evals`` evaluations after its best, the
        eval loss rises by more than ``epsilon`` (relative) per evaluation
        and ends ``min_rise`` above its best while the train loss keeps
        falling; or (b) the final train accuracy exceeds the eval accuracy
        by ``gap`` (``gap_high`` when train accuracy > 0.9).
    Why it matters
        The model memorises the training set; accuracy on new data drops.
    Typical causes
        Too many epochs; a model too large for the data; too few samples;
        no regularisation or augmentation; train/eval preprocessing mismatch.
    How to fix
        Keep the checkpoint of the epoch with the lowest validation loss;
        add weight decay, dropout or augmentation; collect more data
        (MindSpore checklist hp.02 and ds.03).
    Thresholds
        epsilon = 0.01 and min_evals = 2: AUTOTRAINER's test_turn_bad (a run
        of epochs with train loss down by > 0.01 and val loss up by > 0.01),
        made relative; min_rise = 0.05. gap = 0.10 / gap_high = 0.07:
        AUTOTRAINER's test_not_well accuracy gap.
    """

    ids = ("metric.overfitting",)
    hint: ClassVar[str] = (
        "Keep the checkpoint of the epoch with the lowest validation loss; add weight decay, dropout or data "
        "augmentation; use more training data."
    )
    epsilon: float = 0.01
    min_evals: int = 2
    min_rise: float = 0.05
    gap: float = 0.10
    gap_high: float = 0.07

    def requirements(self, run: Run, context: Context) -> Missing | None:
        has_eval = any(find_tag(run, k, context) for k in ("eval_loss", "eval_accuracy"))
        if not has_eval:
            return Missing(
                "no eval loss or eval accuracy curve recorded",
                "record evaluation after each epoch, e.g. in a Callback's epoch_end: "
                "summary_record.add_value('scalar', 'eval_loss', Tensor(loss)); summary_record.record(step)",
            )
        return None

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        turn = eval_turn(run, context, epsilon=self.epsilon)
        if turn is not None and turn.rising_evals >= self.min_evals and turn.rise >= self.min_rise:
            yield make_finding(
                self,
                run,
                Severity.WARNING,
                f"eval loss up {fmt(100 * turn.rise)}% since step {turn.best_step} while train loss fell "
                f"{fmt(100 * turn.train_drop)}%",
                f"The eval loss '{turn.tag}' was lowest ({fmt(turn.best)}) at step {turn.best_step} and rose over "
                f"{turn.rising_evals} evaluations to {fmt(turn.final)}, while the train loss kept falling.",
                step=turn.first_rise_step,
                tags=(turn.tag,),
                evidence=turn.evidence(),
            )
            return
        gap = accuracy_gap(run, context)
        if gap is not None and gap.gap >= (self.gap_high if gap.train > 0.9 else self.gap):
            yield make_finding(
                self,
                run,
                Severity.WARNING,
                f"train accuracy {fmt(gap.train)} vs eval {fmt(gap.eval)} (gap {fmt(gap.gap)})",
                f"At the end of training the train accuracy is {fmt(gap.train)} and the eval accuracy "
                f"{fmt(gap.eval)}: a gap of {fmt(gap.gap)}.",
                step=gap.step,
                tags=gap.tags,
                evidence={"train_accuracy": gap.train, "eval_accuracy": gap.eval, "gap": gap.gap},
            )
