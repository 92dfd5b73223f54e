"""Dataset: missing values (NaN/Inf) and gross outliers in what the network was fed.

Both read the input (and label) tags that the user recorded with
``ops.HistogramSummary`` / ``ops.TensorSummary`` (see ``_inputs``). A
histogram's NaN/Inf counts, min and max are exact, so missing values and the
size of the largest value of each batch are known exactly; the bulk's
quartiles are estimated from the buckets.
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
from summary_doctor.rules._histograms import TagKind, rows_of_kind
from summary_doctor.rules._inputs import DataTag, find_data_tag, missing_data_tag, records
from summary_doctor.rules._series import fmt
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register
from summary_doctor.rules.tags import find_tag


def first_nonfinite_loss(run: Run, context: Context) -> int | None:
    """The first step where the training loss is NaN or Inf, or None."""
    tag = find_tag(run, "loss", context)
    if tag is None:
        return None
    values = run.scalar_series(tag)
    bad = values[~np.isfinite(values.to_numpy(dtype=float))]
    return int(bad.index[0]) if len(bad) else None


def first_nonfinite_weights(run: Run) -> int | None:
    """The first step where a recorded parameter histogram holds NaN or Inf, or None."""
    rows = rows_of_kind(run, TagKind.WEIGHT, TagKind.OFFSET, TagKind.SCALE)
    bad = rows[(rows["nan_count"] + rows["pos_inf_count"] + rows["neg_inf_count"]) > 0]
    return int(bad["step"].min()) if len(bad) else None


def data_tags(run: Run, context: Context) -> list[DataTag]:
    """Every input and label tag found (train first, then eval)."""
    found = [find_data_tag(run, role, context) for role in ("input", "label", "eval_input", "eval_label")]
    return [tag for tag in found if tag is not None]


@register
@dataclass
class MissingValues(Rule):
    """NaN or Inf in the network input or the labels.

    What it detects
        Recorded input or label batches (histograms or tensors) holding NaN,
        +Inf or -Inf: the first step, how many recorded batches and values
        are affected, and whether the loss or the weights turn non-finite at
        the same step.
    Why it matters
        One NaN reaching the network makes that step's loss and gradients
        NaN, and the update spreads it to every weight: the run is lost
        (checklist ds.01, "too many missing values"). On CPU, ReLU turns NaN
        into 0, so the loss can stay finite while the weights are NaN.
    Typical causes
        Empty cells read as NaN from CSV/pandas, a division by a zero
        standard deviation while standardising, log of 0 in a feature,
        sensor dropouts.
    How to fix
        Impute or drop the missing values before training (``fillna``, a
        ``Map`` op that replaces NaN), and assert ``np.isfinite`` on the data.
    Thresholds
        None: one non-finite value is enough (DeepLocalize's "NaN loss
        together with NaN in the input", MindInsight's tensor-overflow
        watchpoint). When the loss (or a weight) first turns non-finite at
        the step of the first non-finite input, the data is named as the
        likely cause rather than the learning rate.
    """

    ids = ("dataset.missing-values",)
    hint: ClassVar[str] = (
        "Impute or drop missing values before training (pandas fillna/dropna, or a Map op replacing NaN), "
        "guard divisions when standardising, and assert np.isfinite on the data (checklist ds.01)."
    )

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return None if data_tags(run, context) else missing_data_tag("input", context)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        for data in data_tags(run, context):
            rows = records(run, data)
            bad = rows[rows["nonfinite"] > 0]
            if not bad.empty:
                yield self._finding(run, context, data, rows, bad)

    def _finding(self, run: Run, context: Context, data: DataTag, rows: pd.DataFrame, bad: pd.DataFrame) -> Finding:
        first = int(bad["step"].iloc[0])
        loss_step, weight_step = first_nonfinite_loss(run, context), first_nonfinite_weights(run)
        kinds = [
            f"{int(bad[k].sum())} {name}" for k, name in (("nan", "NaN"), ("pos_inf", "+Inf"), ("neg_inf", "-Inf"))
        ]
        values = int(bad["nonfinite"].sum())
        total = int(rows["count"].sum())
        consequence = _consequence(first, loss_step, weight_step)
        severity = Severity.ERROR if consequence[1] else Severity.WARNING
        return make_finding(
            self,
            run,
            severity,
            f"{data.tag} holds NaN/Inf from step {first} ({len(bad)} of {len(rows)} recorded batches)",
            f"'{data.tag}' holds {', '.join(k for k in kinds if not k.startswith('0 '))} "
            f"({values:,} of {total:,} recorded values, {fmt(100 * values / total)}%) in {len(bad)} of its "
            f"{len(rows)} recorded batches, first at step {first}. {consequence[0]}",
            step=first,
            tags=(data.tag,),
            evidence={
                "first_step": first,
                "records_affected": len(bad),
                "records": len(rows),
                "values_nonfinite": values,
                "values": total,
                "nan": int(bad["nan"].sum()),
                "inf": int(bad["pos_inf"].sum() + bad["neg_inf"].sum()),
                "steps": [int(s) for s in bad["step"].iloc[:10]],
                "loss_first_nonfinite_step": loss_step,
                "weights_first_nonfinite_step": weight_step,
            },
        )


def _consequence(first: int, loss_step: int | None, weight_step: int | None) -> tuple[str, bool]:
    """What happened to the loss and weights, and whether the data explains it."""
    broken = [(name, step) for name, step in (("loss", loss_step), ("weights", weight_step)) if step is not None]
    if not broken:
        return "The loss and the recorded weights stay finite (so far).", False
    name, step = min(broken, key=lambda item: item[1])
    if step == first:
        return (
            f"The {name} turn{'s' if name == 'loss' else ''} non-finite at the same step {step}: the data is the "
            "likely cause, not the learning rate.",
            True,
        )
    if step > first:
        return f"The {name} turn{'s' if name == 'loss' else ''} non-finite later, at step {step}.", True
    return (
        f"The {name} {'was' if name == 'loss' else 'were'} already non-finite at step {step}, before the first "
        "recorded non-finite input (batches between records are not seen).",
        False,
    )


@register
@dataclass
class Outliers(Rule):
    """A few input values far outside the spread of the rest, more often than the data's own tail allows.

    What it detects
        Recorded input batches whose largest (or smallest) value lies many
        interquartile ranges (IQR) beyond the bulk's quartiles, so far that
        the other batches' extremes make it implausible as the data's own
        tail. The bulk's quartiles are the median over the recorded batches
        (a batch with a spike cannot move them).
    Why it matters
        A value of 1e4 in standardised data dominates its batch's gradient:
        the loss spikes or turns Inf at that step and the weights jump
        (checklist: outliers / abnormal values).
    Typical causes
        Sensor glitches, unit errors (mm vs m), placeholder values such as
        -999 or 65535 for "missing", corrupt images.
    How to fix
        Find the samples (the steps named here are batches that hold them),
        then drop, clip or winsorise them, or map placeholders to NaN and
        impute; standardise with robust statistics (median/IQR).
    Thresholds
        Each batch's exceedance e = (max - Q3, Q1 - min) / IQR. The typical
        batch extreme is the median e over the recorded batches, never less
        than Tukey's fence of 1.5 IQR. For data that can be standardised
        (finite variance: tail index above 2) batch maxima are no more spread
        than a Frechet(2) law, where P(e > t x median) is about
        ln 2 / t^2; with a false-alarm rate of ``alpha`` = 0.01 over N
        batches, t = sqrt(ln 2 * N / alpha) (t = 59 for 50 batches). A batch
        is an outlier batch above t x the typical extreme. So the heavy tails
        of real standardised data (a |z| of 10-20 in Student-t or log-normal
        features) pass, and a spike of 1e4 does not. At least ``min_records``
        = 5 batches; if more than half of them exceed, the "outliers" are
        the data's own tail and nothing is reported.
    """

    ids = ("dataset.outliers",)
    hint: ClassVar[str] = (
        "Find the samples behind the named steps; drop, clip or winsorise them, or map placeholder values "
        "(-999, 65535) to NaN and impute; standardise with robust statistics (median and IQR)."
    )
    alpha: float = 0.01
    min_fence: float = 1.5
    min_records: int = 5

    def requirements(self, run: Run, context: Context) -> Missing | None:
        data = find_data_tag(run, "input", context)
        if data is None:
            return missing_data_tag("input", context)
        finite = records(run, data)
        if (finite["count"] > finite["nonfinite"]).sum() < self.min_records:
            return Missing(f"fewer than {self.min_records} recorded input batches", "record the input at more steps")
        return None

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        data = find_data_tag(run, "input", context)
        assert data is not None
        rows = records(run, data)
        rows = rows[rows["count"] > rows["nonfinite"]]
        measure = exceedances(rows, self.min_fence)
        if measure is None:
            return
        exceed, q1, q3, iqr, typical = measure
        factor = math.sqrt(math.log(2) * len(rows) / self.alpha)
        hits = rows[exceed > factor * typical]
        if hits.empty or len(hits) > len(rows) / 2:
            return
        yield self._finding(run, context, data, rows, hits, exceed, (q1, q3, iqr, typical, factor))

    def _finding(self, run, context, data, rows, hits, exceed, numbers) -> Finding:
        q1, q3, iqr, typical, factor = numbers
        worst = hits.loc[exceed[hits.index].idxmax()]
        extreme = worst["max"] if worst["max"] - q3 >= q1 - worst["min"] else worst["min"]
        steps = [int(s) for s in hits["step"]]
        loss_note = _loss_at(run, context, steps)
        return make_finding(
            self,
            run,
            Severity.WARNING,
            f"{data.tag}: value {fmt(extreme)} at step {int(worst['step'])}, {fmt(exceed[worst.name])} IQR beyond "
            f"the quartiles ({len(hits)} of {len(rows)} batches)",
            f"The bulk of '{data.tag}' lies in [{fmt(q1)}, {fmt(q3)}] (quartiles, IQR {fmt(iqr)}); a typical "
            f"batch's extreme lies {fmt(typical)} IQR beyond them. {len(hits)} recorded batches (steps "
            f"{', '.join(map(str, steps[:8]))}{'...' if len(steps) > 8 else ''}) reach more than {fmt(factor)}x "
            f"that, up to {fmt(extreme)}: far beyond what the data's own tail produces.{loss_note}",
            step=steps[0],
            tags=(data.tag,),
            evidence={
                "steps": steps[:20],
                "extreme": float(extreme),
                "exceedance_iqr": float(exceed[worst.name]),
                "q1": q1,
                "q3": q3,
                "iqr": iqr,
                "typical_exceedance_iqr": typical,
                "threshold_factor": factor,
                "records": len(rows),
            },
        )


def exceedances(rows: pd.DataFrame, min_fence: float) -> tuple[pd.Series, float, float, float, float] | None:
    """Per record, how far its extremes lie beyond the bulk's quartiles in IQR; None for constant data.

    Returns the exceedances, Q1, Q3, the IQR (or an IQR-equivalent spread
    when half the values are equal) and the typical exceedance (median, at
    least ``min_fence``).
    """
    q1, q3 = float(rows["q1"].median()), float(rows["q3"].median())
    iqr = q3 - q1
    if not iqr > 0:
        iqr = 1.349 * float(rows["std"].median())  # the IQR of a normal law with this spread
    if not iqr > 0 or not math.isfinite(iqr):
        return None
    exceed = np.maximum(np.maximum(rows["max"] - q3, q1 - rows["min"]), 0.0) / iqr
    return exceed, q1, q3, iqr, max(float(exceed.median()), min_fence)


def _loss_at(run: Run, context: Context, steps: list[int]) -> str:
    """A sentence on the loss at the outlier steps, when it spiked or turned non-finite there."""
    tag = find_tag(run, "loss", context)
    if tag is None:
        return ""
    loss = run.scalar_series(tag)
    at = loss[loss.index.isin(steps)]
    rest = loss[~loss.index.isin(steps)]
    finite_rest = rest[np.isfinite(rest.to_numpy(dtype=float))]
    if at.empty or finite_rest.empty:
        return ""
    nonfinite = at[~np.isfinite(at.to_numpy(dtype=float))]
    if len(nonfinite):
        return f" The loss is {fmt(float(nonfinite.iloc[0]))} at {len(nonfinite)} of these steps."
    ratio = float(at.median() / finite_rest.median()) if finite_rest.median() > 0 else math.nan
    return f" The loss at these steps is {fmt(ratio)}x its median elsewhere." if ratio >= 2 else ""
