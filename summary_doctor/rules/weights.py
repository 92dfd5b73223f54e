"""Weights: NaN/Inf in weights, and updates too large or too small relative to the weights.

``update_ratios`` is shared with the learning-rate rules: it turns consecutive
weight histograms (or tensors) into MindInsight's update ratio
``mean|w_t - w_prev| / (mean|w_prev| + 1e-9)``, per training step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.derived import per_run
from summary_doctor.reader.run import Run
from summary_doctor.rules._histograms import (
    ENABLE_WEIGHTS,
    TagKind,
    base_name,
    has_kind,
    loss_outcome,
    names,
    rows_of_kind,
    tag_table,
)
from summary_doctor.rules._pair_measures import pair_measures
from summary_doctor.rules._series import loss_curve
from summary_doctor.rules.base import Context, Missing, Rule, register
from summary_doctor.rules.dynamics import diverges

EPSILON = 1e-9  # MindInsight's epsilon in the update-ratio denominator
PARAMETER_KINDS = (TagKind.WEIGHT, TagKind.OFFSET, TagKind.SCALE)
RATIO_COLUMNS = ["tag", "step", "ratio", "prev_step", "gap", "exact", "prev_abs_mean"]


@per_run  # several rules and the report ask: computed once per run
def update_ratios(run: Run) -> pd.DataFrame:
    """Per-step update ratio of every weight matrix between consecutive recorded steps.

    Columns: ``tag``, ``step`` (the later step), ``ratio``, ``prev_step``,
    ``gap`` (steps between the two records), ``exact``, ``prev_abs_mean``
    (mean|w| at the earlier step, the ratio's denominator).

    ``ratio`` is mean|Δw| / (mean|w_prev| + 1e-9) divided by ``gap``
    (SummaryCollector records every ``collect_freq`` steps, MindInsight's
    watchpoints compare consecutive steps). Dividing by the gap assumes the
    updates of the gap add up in one direction; for noisy updates the true
    per-step ratio is larger (up to sqrt(gap) times). From tensors mean|Δw| is
    exact (``exact=True``). From histograms the element-wise change is not
    recorded: the Wasserstein distance between the two histograms is used, the
    smallest mean change consistent with them, so ``ratio`` is then a lower
    bound. A histogram identical byte for byte to the previous one gives 0.
    Only weight matrices/kernels are included (``TagKind.WEIGHT``).
    """
    tensor_rows = _tensor_ratios(run)
    covered = set(tensor_rows["tag"].map(base_name))
    hist_rows = _histogram_ratios(run, skip=covered)
    frames = [f for f in (hist_rows, tensor_rows) if not f.empty]
    if not frames:
        return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in zip(RATIO_COLUMNS, _RATIO_DTYPES, strict=True)})
    return pd.concat(frames, ignore_index=True).sort_values(["tag", "step"], kind="stable", ignore_index=True)


_RATIO_DTYPES = [object, "int64", "float64", "int64", "int64", bool, "float64"]


def _histogram_ratios(run: Run, *, skip: set[str]) -> pd.DataFrame:
    """Ratios between consecutive histograms of each weight tag, all tags at once.

    Identical bytes mean identical histograms (ratio 0) and a NaN/Inf at
    either end gives NaN, both without decoding; the other pairs are decoded
    in chunks and measured with the vectorised CDF distance.
    """
    rows = rows_of_kind(run, TagKind.WEIGHT)
    rows = rows[~rows["name"].isin(skip)]
    tag, step = rows["tag"].to_numpy(), rows["step"].to_numpy()
    gap = step[1:] - step[:-1]
    pair = np.flatnonzero((tag[1:] == tag[:-1]) & (gap > 0))
    nonfinite = ((rows["nan_count"] + rows["pos_inf_count"] + rows["neg_inf_count"]) > 0).to_numpy()
    encoded = rows["encoded"].to_numpy()
    broken = nonfinite[pair] | nonfinite[pair + 1]
    same = (encoded[pair] == encoded[pair + 1]).astype(bool) & ~broken
    ratio = np.where(broken, np.nan, 0.0)
    scale = np.full(len(pair), np.nan)
    measure = np.flatnonzero(~broken & ~same)
    ratio[measure], scale[measure] = _measured(run, rows, pair[measure], gap[pair[measure]])
    return pd.DataFrame(
        {
            "tag": tag[pair + 1],
            "step": step[pair + 1],
            "ratio": ratio,
            "prev_step": step[pair],
            "gap": gap[pair],
            "exact": np.zeros(len(pair), dtype=bool),
            "prev_abs_mean": scale,
        },
        columns=RATIO_COLUMNS,
    )


def _measured(run: Run, rows: pd.DataFrame, first: np.ndarray, gap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ratio and mean|w| of the earlier histogram for pairs (first, first + 1) of ``rows``."""
    distance, scale = pair_measures(run, rows, first)
    return distance / (scale + EPSILON) / gap, scale


def _tensor_ratios(run: Run) -> pd.DataFrame:
    rows = rows_of_kind(run, TagKind.WEIGHT, frame="tensors")
    records = []
    for tag, group in rows.groupby("tag", sort=False):
        values, steps = list(group["value"]), group["step"].to_numpy()
        for k in range(1, len(values)):
            gap = int(steps[k] - steps[k - 1])
            prev, cur = np.asarray(values[k - 1], float), np.asarray(values[k], float)
            if gap <= 0 or prev.shape != cur.shape:
                continue
            scale = float(np.mean(np.abs(prev)))
            ratio = np.mean(np.abs(cur - prev)) / (scale + EPSILON) / gap
            records.append((tag, int(steps[k]), float(ratio), int(steps[k - 1]), gap, True, scale))
    return pd.DataFrame(records, columns=RATIO_COLUMNS)


# --- weight.overflow -------------------------------------------------------------------------


def _nonfinite_rows(run: Run, kinds: tuple[TagKind, ...]) -> pd.DataFrame:
    """Histogram and tensor rows of ``kinds`` holding NaN or Inf: tag, step, nan, inf."""
    hist = rows_of_kind(run, *kinds)
    hist = pd.DataFrame(
        {
            "tag": hist["tag"],
            "step": hist["step"],
            "nan": hist["nan_count"],
            "inf": hist["pos_inf_count"] + hist["neg_inf_count"],
            "count": hist["count"],
        }
    )
    tensors = rows_of_kind(run, *kinds, frame="tensors")
    tensors = pd.DataFrame(
        {
            "tag": tensors["tag"],
            "step": tensors["step"],
            "nan": tensors["nonfinite"],
            "inf": 0,
            "count": tensors["size"],
        }
    )
    rows = pd.concat([hist, tensors], ignore_index=True)
    return rows[(rows["nan"] + rows["inf"]) > 0].sort_values("step", kind="stable")


def overflow_summary(rows: pd.DataFrame) -> dict:
    """First step, tags in order of first appearance and counts at that step: JSON-safe evidence."""
    first_step = int(rows["step"].iloc[0])
    at_first = rows[rows["step"] == first_step]
    return {
        "first_step": first_step,
        "tags": list(dict.fromkeys(rows["tag"])),
        "first_tags": list(at_first["tag"]),
        "nan_at_first_step": int(at_first["nan"].sum()),
        "inf_at_first_step": int(at_first["inf"].sum()),
        "values_at_first_step": int(at_first["count"].sum()),
        "records_affected": len(rows),
    }


@register
@dataclass
class WeightOverflow(Rule):
    """NaN or Inf values in the weights.

    What it detects: weight histograms or tensors with NaN or ±Inf counts
    greater than zero, the first step where they appear and in which tags.
    Why it matters: once a weight is NaN every output and gradient after it is
    NaN; training cannot recover.
    Typical causes: learning rate too large, exploding gradients, a division
    or log of zero upstream, float16 overflow without loss scaling.
    How to fix: lower the learning rate; clip gradients
    (``ops.clip_by_global_norm``); use a loss scale manager with mixed
    precision; find the first NaN operator with the debugger's overflow
    watchpoint.
    Thresholds: any NaN/Inf (MindInsight watchpoint weight_overflow, WO:
    nan_count + inf_count > 0).
    """

    ids = ("weight.overflow",)

    def requirements(self, run: Run, context: Context) -> Missing | None:
        if has_kind(run, *PARAMETER_KINDS):
            return None
        return Missing("no weight histograms or tensors recorded", ENABLE_WEIGHTS)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        rows = _nonfinite_rows(run, PARAMETER_KINDS)
        if rows.empty:
            return
        evidence = overflow_summary(rows)
        shown = names(evidence["first_tags"])
        yield Finding(
            id="weight.overflow",
            severity=Severity.ERROR,
            title=f"NaN/Inf in {', '.join(shown[:3])} from step {evidence['first_step']}",
            message=(
                f"At step {evidence['first_step']}, {', '.join(shown)} hold {evidence['nan_at_first_step']} NaN and "
                f"{evidence['inf_at_first_step']} Inf values of {evidence['values_at_first_step']}; "
                f"{len(evidence['tags'])} weight tag(s) in {evidence['records_affected']} records are affected."
            ),
            hint=(
                "Check whether the learning rate is too high, the gradient too large or the optimizer wrong "
                "(MindInsight advice); clip gradients and use loss scaling with float16."
            ),
            run=run.name,
            tags=tuple(evidence["tags"]),
            step=evidence["first_step"],
            evidence=evidence,
        )


# --- weight.update-ratio ---------------------------------------------------------------------


@register
@dataclass
class WeightUpdateRatio(Rule):
    """Weight updates too large or too small relative to the weights.

    What it detects: the per-step update ratio mean|Δw| / mean|w| of each
    weight matrix between consecutive recorded steps (see ``update_ratios``).
    Too large: some interval above ``too_large``. Too small: the median over
    the run below ``too_small`` while the loss is not converging.
    Why it matters: updates larger than the weights themselves throw training
    around (loss oscillates or diverges); tiny updates mean it barely moves.
    Typical causes: learning rate too large or too small for the optimizer and
    batch size; gradients exploding or vanishing.
    How to fix: adjust the learning rate (an LR range test, checklist hp.01),
    check the gradient scale and the optimizer.
    Thresholds: ``too_large`` = 1 (MindInsight recommended watchpoint
    weight_change_too_large; its UI default is 0.1), ``too_small`` = 1e-4
    (MindInsight weight_change_too_small). From histograms the ratio is a lower
    bound, which makes "too large" safe and "too small" only a hint: that is
    why a histogram estimate must fall below ``too_small`` times
    ``lower_bound_margin`` = 0.1 (elements that move within the same buckets
    leave the histogram unchanged, so the bound can sit an order of magnitude
    under the truth; exact tensor ratios use ``too_small`` itself), and why it
    is gated on the loss not converging (``min_drop``: the loss did not halve;
    AUTOTRAINER's "not converged" gate). Parameters that never change
    are left to graph.weight-freezing, and intervals starting from weights
    still near zero (mean|w| below ``near_zero`` = 1e-2 of sqrt(1/fan_in), the
    init.all-zero scale) to init.all-zero: any update is large relative to
    zero. "Too small" is not judged when the loss diverged (loss.diverging):
    weights blown up by orders of magnitude make every update look tiny, and
    "raise the learning rate" would be the wrong advice.
    """

    ids = ("weight.update-ratio",)
    too_large: float = 1.0
    too_small: float = 1e-4
    lower_bound_margin: float = 0.1
    min_drop: float = 0.5
    near_zero: float = 1e-2

    def requirements(self, run: Run, context: Context) -> Missing | None:
        if update_ratios(run).empty:
            return Missing("no weight recorded at two steps or more", ENABLE_WEIGHTS)
        return None

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        ratios = update_ratios(run)
        ratios = ratios[np.isfinite(ratios["ratio"])]
        yield from self._too_large(run, ratios)
        yield from self._too_small(run, context, ratios)

    def _too_large(self, run: Run, ratios: pd.DataFrame) -> Iterator[Finding]:
        over = ratios["ratio"] > self.too_large
        if not over.any():  # the usual case: nothing to weigh against near-zero starts
            return
        large = ratios[over & ~near_zero_intervals(run, ratios, self.near_zero)]
        large = large.sort_values("step", kind="stable")
        if large.empty:
            return
        first = large.iloc[0]
        tags = list(dict.fromkeys(large["tag"]))
        yield Finding(
            id="weight.update-ratio",
            severity=Severity.WARNING,
            title=f"{base_name(first['tag'])} changes {first['ratio']:.3g}x its size per step at step {first['step']}",
            message=(
                f"Between steps {first['prev_step']} and {first['step']} the mean change of {base_name(first['tag'])} "
                f"was {first['ratio']:.3g} of its mean magnitude per step (> {self.too_large:g}); "
                f"{len(large)} interval(s) in {', '.join(names(tags))} exceed it. " + _assumption(bool(first["exact"]))
            ),
            hint="Lower the learning rate or clip gradients; check the optimizer (MindInsight tuning advice).",
            run=run.name,
            tags=tuple(tags),
            step=int(first["step"]),
            evidence={
                "direction": "too-large",
                "threshold": self.too_large,
                "max_ratio": float(large["ratio"].max()),
                "intervals": [[str(r.tag), int(r.prev_step), int(r.step), float(r.ratio)] for r in large.itertuples()],
            },
        )

    def _too_small(self, run: Run, context: Context, ratios: pd.DataFrame) -> Iterator[Finding]:
        moving = ratios[ratios["tag"].isin(ratios.loc[ratios["ratio"] > 0, "tag"].unique())]
        medians = moving.groupby("tag", sort=False)["ratio"].median()
        exact_tags = moving.groupby("tag", sort=False)["exact"].all()
        limits = np.where(
            exact_tags.reindex(medians.index).to_numpy(), self.too_small, self.too_small * self.lower_bound_margin
        )
        small = medians[medians.to_numpy() < limits]
        if small.empty:
            return
        outcome = loss_outcome(run, context, min_drop=self.min_drop)
        if not outcome.bad or _blew_up(run, context):
            return
        tags = list(small.index)
        exact = bool(moving.loc[moving["tag"].isin(tags), "exact"].all())
        yield Finding(
            id="weight.update-ratio",
            severity=Severity.WARNING,
            title=f"{base_name(tags[0])} updates only {small.iloc[0]:.2g} of its size per step (median)",
            message=(
                f"Median per-step update ratio below {self.too_small:g}: "
                + ", ".join(f"{base_name(t)} {v:.2g}" for t, v in small.items())
                + f"; {outcome.reason}. "
                + _assumption(exact)
            ),
            hint=(
                "Raise the learning rate (try x10, checklist hp.01); check that gradients reach these layers "
                "and the optimizer is the intended one (MindInsight tuning advice)."
            ),
            run=run.name,
            tags=tuple(tags),
            step=int(moving["step"].min()),
            evidence={
                "direction": "too-small",
                "threshold": self.too_small,
                "median_ratio": {str(t): float(v) for t, v in small.items()},
                "loss": outcome.reason,
            },
        )


def _blew_up(run: Run, context: Context) -> bool:
    """The loss diverged (loss.diverging): weights grown by orders of magnitude make every update look tiny."""
    c = loss_curve(run, context)
    return c is not None and diverges(c)


def near_zero_intervals(run: Run, ratios: pd.DataFrame, factor: float) -> pd.Series:
    """Intervals that start from a weight still near zero, measured against its fan-in scale."""
    fan_in = tag_table(run).set_index("tag")["fan_in"].astype(float)
    scale = np.sqrt(1 / ratios["tag"].map(fan_in).astype(float))
    return (ratios["prev_abs_mean"] < factor * scale).fillna(False)


def _assumption(exact: bool) -> str:
    if exact:
        return "Computed exactly from tensors, divided by the steps between records."
    return (
        "Estimated from histograms (a lower bound: the smallest change consistent with them), divided by the "
        "steps between records, assuming the updates of a gap add up."
    )
