"""Hyperparameters: too many or too few epochs, batch too large (the learning rate is in ``learning_rate``).

A hyperparameter is never judged from its value alone (0.1 is a fine rate for
SGD and a bad one for Adam): each rule needs a bad outcome in the curves and,
where the run holds weight histograms, corroboration from the size of the
weight updates (MindInsight's update ratio, AUTOTRAINER's outcome gate).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules import _series as series
from summary_doctor.rules._eval import eval_turn
from summary_doctor.rules._measures import end_slope
from summary_doctor.rules._series import fmt
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register
from summary_doctor.rules.tags import curve, find_tag, missing_tag, steps_per_epoch


def _epoch_text(step: int, per_epoch: float | None) -> str:
    return f"step {step}" + (f" (epoch {fmt(step / per_epoch)})" if per_epoch else "")


@register
@dataclass
class TooManyEpochs(Rule):
    """Too many epochs: the eval loss (or eval error) rises for several evaluations while train loss falls.

    What it detects
        After its best evaluation, the eval loss (or 1 - eval accuracy when
        no eval loss is recorded) exceeds its best by more than ``epsilon``
        on at least ``min_evals`` evaluations and ends ``min_rise`` above it,
        while the train loss is still falling (or is not recorded).
    Why it matters
        Every epoch after the best one makes the model worse on new data.
    Typical causes
        A fixed epoch budget copied from a larger dataset; no early stopping.
    How to fix
        Keep the checkpoint of the epoch with the minimum validation loss
        (MindSpore checklist hp.02) and stop there; or regularise.
    Thresholds
        epsilon = 0.01, min_evals = 2: AUTOTRAINER's test_turn_bad (a run of
        epochs with val loss up by > 0.01 while train loss drops by > 0.01),
        relative here; a run of evaluations, not UMLAUT's single epoch, which
        is too noisy. min_rise = 0.05.
    """

    ids = ("hparam.too-many-epochs",)
    hint: ClassVar[str] = (
        "Keep the checkpoint of the epoch with the lowest validation loss (early stopping), or train fewer "
        "epochs; add regularisation if the best epoch comes very early."
    )
    epsilon: float = 0.01
    min_evals: int = 2
    min_rise: float = 0.05

    def requirements(self, run: Run, context: Context) -> Missing | None:
        if find_tag(run, "eval_loss", context) is None and find_tag(run, "eval_accuracy", context) is None:
            return missing_tag("eval_loss", context)
        return None

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        turn = eval_turn(run, context, epsilon=self.epsilon)
        if turn is None or turn.rising_evals < self.min_evals or turn.rise < self.min_rise:
            return
        if turn.train_drop is not None and turn.train_drop <= self.epsilon:
            return
        best = _epoch_text(turn.best_step, steps_per_epoch(run))
        what = "eval error" if turn.is_error_rate else "eval loss"
        yield make_finding(
            self,
            run,
            Severity.WARNING,
            f"{what} best at {best}, then {fmt(100 * turn.rise)}% worse by the end",
            f"The {what} ('{turn.tag}') was lowest ({fmt(turn.best)}) at {best} and was worse on "
            f"{turn.rising_evals} later evaluations, ending at {fmt(turn.final)}. Stop at {best}.",
            step=turn.first_rise_step,
            tags=(turn.tag,),
            evidence=turn.evidence(),
        )


@register
@dataclass
class TooFewEpochs(Rule):
    """Too few epochs: the loss is still falling steeply and significantly when training ends.

    What it detects
        Over the last epoch (or last 25% of the run), a robust (Theil-Sen)
        fit of log-loss falls by ``min_drop_per_epoch`` or more per epoch,
        with a fitted drop ``min_t`` times its standard error under the
        curve's own step noise; and the eval loss, when recorded, still
        improved at its last evaluation. The log-loss is the level every loss
        rule uses, ln(loss + 5% of the start): a loss that halves every epoch
        at 0.1% of where it started has finished its work (the remaining
        gain is a thousandth of the start), it is not "still falling 50% per
        epoch". A loss that turns NaN/Inf is not judged: a run that ends in
        overflow is not still falling (loss.nan-inf reports it).
    Why it matters
        The model stops before it reaches the accuracy it could.
    Typical causes
        An epoch budget too small for the learning rate; a very small
        learning rate; a large batch giving few steps.
    How to fix
        Train for more epochs and keep the epoch with the minimum validation
        loss (MindSpore checklist hp.02); or raise the learning rate.
    Thresholds
        min_drop_per_epoch = 0.1 (10% lower loss per epoch, on the level
        scale); min_t = 4 (a trend, not noise: healthy noisy step losses
        reach t of about 2.5); derived from checklist hp.02 ("validation loss
        still improving"). Converged runs of 50 steps at batch 512 and of
        4,000 steps at batch 8, still "falling 90%/40% per epoch" at 0.1-0.2%
        of their start, drew this warning before the level had its floor.
    """

    ids = ("hparam.too-few-epochs",)
    hint: ClassVar[str] = (
        "Train for more epochs (the loss was still falling), then keep the epoch with the lowest validation loss."
    )
    min_drop_per_epoch: float = 0.1
    min_t: float = 4.0
    epsilon: float = 0.01

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return series.missing_finite_end(run, context, series.MIN_POINTS)

    def _eval_stopped(self, run: Run, context: Context) -> bool:
        data = curve(run, "eval_loss", context)
        values = data.to_numpy()[np.isfinite(data.to_numpy())] if data is not None else np.array([])
        return len(values) >= 2 and values[-1] > values[-2] * (1 - self.epsilon)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        c = series.loss_curve(run, context)
        assert c is not None
        e = end_slope(c, epochs=1.0, fraction=0.25)
        per_epoch = 1 - math.exp(-e.drop_per_epoch)
        if per_epoch < self.min_drop_per_epoch or e.t_value < self.min_t or self._eval_stopped(run, context):
            return
        unit = "per epoch" if c.per_epoch else "over the last quarter of the run"
        yield make_finding(
            self,
            run,
            Severity.WARNING,
            f"loss still falling {fmt(100 * per_epoch)}% {unit} at the end of training",
            f"From step {e.start_step} to the end the loss falls by {fmt(100 * per_epoch)}% {unit} "
            f"(trend {fmt(e.t_value)}x its noise): training stopped before converging.",
            step=e.start_step,
            tags=(find_tag(run, "loss", context) or "",),
            evidence={"drop_per_epoch": per_epoch, "t_value": e.t_value, "threshold": self.min_drop_per_epoch},
        )


@register
@dataclass
class BatchTooLarge(Rule):
    """Batch size too large: very few steps per epoch (or a batch above 256), with poor convergence.

    What it detects
        Lineage says an epoch has ``max_steps_per_epoch`` steps or fewer
        (train_dataset_size / batch_size) and the loss ends above
        ``converged_ratio`` of its start, on the level scale every loss rule
        uses (warning). A batch above
        ``max_batch_size`` with enough steps per epoch and the same poor
        outcome is only reported as info: large batches are normal with
        scaled learning rates, and a fine-tuning loss starts near its end.
    Why it matters
        Few, large steps: the model sees many samples but takes few updates,
        and large batches generalise worse unless the rate is scaled.
    Typical causes
        A batch size sized for a bigger dataset or many devices.
    How to fix
        Use a smaller batch: "32 is a secure value; 64/128/256 worth trying";
        when keeping a large batch, scale the learning rate with it and add
        warm-up (MindSpore checklist hp.03; AUTOTRAINER repairs with batch 32).
    Thresholds
        max_steps_per_epoch = 4; max_batch_size = 256 (checklist hp.03);
        converged_ratio = 0.5: the loss did not halve, the one bar for
        "converged" every rule uses (AUTOTRAINER-style outcome gate). Not
        judged when the loss turns NaN/Inf.
    """

    ids = ("hparam.batch-too-large",)
    hint: ClassVar[str] = (
        "Use a smaller batch (32 is a secure value; 64/128/256 are worth trying); if the batch must stay large, "
        "scale the learning rate with it and add warm-up."
    )
    max_steps_per_epoch: float = 4.0
    max_batch_size: int = 256
    converged_ratio: float = series.CONVERGED_RATIO

    def requirements(self, run: Run, context: Context) -> Missing | None:
        if not run.lineage.hyperparameters.get("batch_size"):
            return Missing(
                "no batch size in lineage",
                "let SummaryCollector write lineage (its default: collect_train_lineage=True)",
            )
        return series.missing_finite_end(run, context, 4)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        batch = float(run.lineage.hyperparameters["batch_size"])
        per_epoch = steps_per_epoch(run)
        few_steps = per_epoch is not None and per_epoch <= self.max_steps_per_epoch
        if not few_steps and batch <= self.max_batch_size:
            return
        c = series.loss_curve(run, context)
        assert c is not None
        remaining = series.remaining(c)
        if remaining < self.converged_ratio:
            return
        epoch_text = f", {fmt(per_epoch)} steps per epoch" if per_epoch else ""
        # A big batch with enough updates per epoch is a suggestion, not a fault: a fine-tuning
        # run starts near its final loss, so "loss far from zero" alone says little.
        severity = Severity.WARNING if few_steps else Severity.INFO
        yield make_finding(
            self,
            run,
            severity,
            f"batch size {int(batch)}{epoch_text}: loss still at {fmt(100 * remaining)}% of its start",
            f"With a batch of {int(batch)}{epoch_text}, the run takes {int(c.steps[-1])} steps in all and the "
            f"loss ends at {fmt(100 * remaining)}% of where it started.",
            evidence={"batch_size": int(batch), "steps_per_epoch": per_epoch, "final_over_start": remaining},
        )
