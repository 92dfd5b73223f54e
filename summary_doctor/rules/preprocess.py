"""Data processing: inputs not normalised, and train and evaluation inputs preprocessed differently.

Both compare what the network was fed (the recorded input tags, see
``_inputs``) with the recorded dataset pipeline (``_pipeline``). The
shuffling check lives in ``shuffle.py``.
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
from summary_doctor.rules import _distribution as dist
from summary_doctor.rules._inputs import DataTag, find_data_tag, missing_data_tag, record_buckets, records
from summary_doctor.rules._pipeline import chain, normalizing_ops
from summary_doctor.rules._series import fmt
from summary_doctor.rules.base import Context, Missing, Rule, make_finding, register


def finite_records(run: Run, data: DataTag) -> pd.DataFrame:
    """Records with at least one finite value."""
    rows = records(run, data)
    return rows[rows["count"] > rows["nonfinite"]]


@register
@dataclass
class NotNormalized(Rule):
    """Network input far from a normalised scale, with no Normalize/Rescale doing the job.

    What it detects
        The typical magnitude of the recorded input, mean |x| (median over
        the recorded batches, so a few spikes do not count), of
        ``max_abs_mean`` or more, while the recorded dataset pipeline has no
        Rescale / Normalize / NormalizePad / ToTensor op, or has one that
        evidently does not bring the values to a unit scale. Integer inputs
        that the graph receives as an integer tensor (token or category ids
        for an embedding) are not judged.
        Values scaled to [0, 1] or standardised (about -3..3) are normalised.
    Why it matters
        Large inputs make the first layer's pre-activations and gradients
        huge: the loss overflows, ReLUs die, and the learning rate that
        suits the other layers is far too large for the first (checklist
        dp.01: inputs should be roughly in [-1, 1] with mean 0).
    Typical causes
        Raw 0..255 pixels cast to float32 without ``Rescale(1/255)``;
        tabular features in their own units (prices, counts in the
        thousands); a Normalize whose mean/std are for [0, 1] data applied
        to 0..255 data.
    How to fix
        Add ``vision.Rescale(1.0 / 255.0, 0.0)`` and ``vision.Normalize(mean,
        std)`` to the Map of the image column, or standardise tabular
        features with the training set's mean and std.
    Thresholds
        max_abs_mean = 10: AUTOTRAINER's "abnormal data" line (mean |layer
        output| >= omega1 = 10), an order of magnitude above the unit scale
        of a standardised input. When only the pipeline was recorded, a
        Rescale or Normalize op counts as normalised; without one and
        without recorded inputs nothing can be said (the data may have been
        scaled before the pipeline).
    """

    ids = ("preprocess.not-normalized",)
    hint: ClassVar[str] = (
        "Scale the input: vision.Rescale(1.0 / 255.0, 0.0) then vision.Normalize(mean, std) in the image column's "
        "Map, or standardise features with the training set's mean and std (checklist dp.01)."
    )
    max_abs_mean: float = 10.0

    def requirements(self, run: Run, context: Context) -> Missing | None:
        if find_data_tag(run, "input", context) is not None or normalizing_ops(run):
            return None
        missing = missing_data_tag("input", context)
        reason = "the recorded pipeline has no Normalize/Rescale op, " if chain(run) else ""
        return Missing(f"{reason}{missing.reason} (the data may be scaled before the pipeline)", missing.enable)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        data = find_data_tag(run, "input", context)
        if data is None:
            return  # the pipeline normalises and nothing contradicts it
        rows = finite_records(run, data)
        if rows.empty or fed_as_ids(run, rows):
            return
        scale = float(rows["abs_mean"].median())
        if scale < self.max_abs_mean:
            return
        ops = normalizing_ops(run)
        recorded = bool(chain(run))
        missing_op = " and no Normalize/Rescale in the pipeline" if recorded and not ops else ""
        yield make_finding(
            self,
            run,
            Severity.WARNING,
            f"{data.tag}: mean |x| {fmt(scale)}, values {fmt(float(rows['min'].min()))}.."
            f"{fmt(float(rows['max'].max()))}{missing_op}",
            f"The network input '{data.tag}' has a typical magnitude mean |x| = {fmt(scale)} (median over "
            f"{len(rows)} recorded batches; quartiles {fmt(float(rows['q1'].median()))}.."
            f"{fmt(float(rows['q3'].median()))}), {fmt(scale / self.max_abs_mean)}x the line of "
            f"{fmt(self.max_abs_mean)} above which inputs are not on a normalised scale. "
            + _pipeline_sentence(run, ops, recorded),
            step=int(rows["step"].iloc[0]),
            tags=(data.tag,),
            evidence={
                "abs_mean": scale,
                "min": float(rows["min"].min()),
                "max": float(rows["max"].max()),
                "q1": float(rows["q1"].median()),
                "q3": float(rows["q3"].median()),
                "normalizing_ops": ops,
                "pipeline": " -> ".join(s.op_type for s in chain(run)) or None,
                "threshold": self.max_abs_mean,
            },
        )


def fed_as_ids(run: Run, rows: pd.DataFrame) -> bool:
    """Whole-number inputs that the graph receives as an integer tensor: token or category ids.

    Raw pixels cast to float32 are whole numbers too, so the values alone
    cannot tell; the graph input of the same size says int32 or float32.
    """
    if not rows["integer"].all() or run.graph is None:
        return False
    params = run.graph.parameters
    inputs = params[params["name"].str.match(r"inputs\d+$") & params["dtype"].str.match(r"DT_U?INT")]
    return bool(inputs["size"].isin(rows["count"].unique()).any())


def _pipeline_sentence(run: Run, ops: list[str], recorded: bool) -> str:
    if not recorded:
        return "The dataset pipeline was not recorded, so where the scaling is missing cannot be shown."
    if not ops:
        maps = [op for step in chain(run) for op in step.operations]
        return (
            f"The recorded pipeline has no Rescale or Normalize op (its map operations: {', '.join(maps) or 'none'})."
        )
    return (
        f"The pipeline has {', '.join(ops)}, but the values the network receives are still far from a unit scale: "
        "their parameters do not fit the data (e.g. Normalize for [0, 1] data applied to 0..255 pixels)."
    )


@register
@dataclass
class TrainEvalMismatch(Rule):
    """Evaluation inputs distributed differently from training inputs: preprocessing that differs.

    What it detects
        The recorded evaluation input (``eval/input`` ...) against the
        training input (``input`` ...), each pooled over its recorded
        batches: Deepchecks' numeric drift score (earth mover's distance on
        the central 95% of the two, divided by its width) of ``max_drift``
        or more, and larger than the distance of any single training batch
        from the other training batches (sampling noise). The mean shift in
        units of the training spread and the ratio of spreads are reported.
    Why it matters
        A model evaluated (or served) on inputs scaled differently from its
        training inputs sees data it never learned from: accuracy drops for
        no fault of the model (checklist dp.02: the two pipelines should
        match except for random augmentation).
    Typical causes
        Normalize or Rescale missing from (or duplicated in) the evaluation
        transforms; a different mean/std; RGB vs BGR; resizing differently.
    How to fix
        Build the evaluation pipeline from the same transform list as the
        training one, minus the random augmentations.
    Thresholds
        max_drift = 0.1: Deepchecks' TrainTestFeatureDrift condition for
        numeric features (earth mover's distance < 0.1, with its 2.5%
        margin filter). The noise bar (the largest distance of one training
        batch from the rest) keeps small evaluation sets and heavy tails
        from looking shifted. At most 200 records of each tag, spread
        evenly over the run, are pooled.
    """

    ids = ("preprocess.train-eval-mismatch",)
    hint: ClassVar[str] = (
        "Use the training transform list for evaluation (same Rescale/Normalize parameters and order), minus "
        "the random augmentations (checklist dp.02)."
    )
    max_drift: float = 0.1

    def requirements(self, run: Run, context: Context) -> Missing | None:
        for role in ("input", "eval_input"):
            data = find_data_tag(run, role, context)
            if data is None or finite_records(run, data).empty:
                return missing_data_tag(role, context)  # type: ignore[arg-type]
        return None

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        train, evaluation = find_data_tag(run, "input", context), find_data_tag(run, "eval_input", context)
        assert train is not None and evaluation is not None
        measure = compare(run, train, evaluation)
        if measure["drift"] < self.max_drift or measure["drift"] <= measure["noise"]:
            return
        yield make_finding(
            self,
            run,
            Severity.WARNING,
            f"{evaluation.tag} vs {train.tag}: drift {fmt(measure['drift'])}, mean shifted "
            f"{fmt(measure['mean_shift'])} train SD, spread x{fmt(measure['scale_ratio'])}",
            f"The evaluation input '{evaluation.tag}' (mean {fmt(measure['eval_mean'])}, SD "
            f"{fmt(measure['eval_std'])}) is distributed differently from the training input '{train.tag}' "
            f"(mean {fmt(measure['train_mean'])}, SD {fmt(measure['train_std'])}): a drift score of "
            f"{fmt(measure['drift'])} (0 = equal, 1 = disjoint; above {fmt(self.max_drift)} is a shift), while no "
            f"training batch is further than {fmt(measure['noise'])} from the others. The two were not "
            "preprocessed the same way.",
            step=measure["eval_step"],
            tags=(train.tag, evaluation.tag),
            evidence={**measure, "threshold": self.max_drift},
        )


def _moments(rows: pd.DataFrame) -> tuple[float, float]:
    """Pooled mean and SD of several records from their means, SDs and counts."""
    n = (rows["count"] - rows["nonfinite"]).to_numpy(dtype=float)
    means, stds = rows["mean"].to_numpy(dtype=float), rows["std"].to_numpy(dtype=float)
    mean = float((n * means).sum() / n.sum())
    second = float((n * (stds**2 + means**2)).sum() / n.sum())
    return mean, math.sqrt(max(second - mean**2, 0.0))


def _batch_noise(pool: dist.Pool, grid: np.ndarray, low: float, high: float) -> float:
    """The largest drift score of one training batch from all the others: the sampling noise."""
    if len(pool.cdfs) < 2:
        return 0.0
    return max(dist.drift(pool.cdfs[i], pool.cdf(exclude=i), grid, low, high) for i in range(len(pool.cdfs)))


def compare(run: Run, train: DataTag, evaluation: DataTag) -> dict:
    """Drift score, noise bar, means, spreads and shift of the evaluation input against the training input."""
    train_rows, eval_rows = finite_records(run, train), finite_records(run, evaluation)
    train_rows = train_rows.iloc[dist.thinned(len(train_rows))]
    eval_rows = eval_rows.iloc[dist.thinned(len(eval_rows))]
    train_buckets = [record_buckets(run, train, r) for _, r in train_rows.iterrows()]
    eval_buckets = [record_buckets(run, evaluation, r) for _, r in eval_rows.iterrows()]
    grid = dist.grid_of([train_buckets, eval_buckets])
    train_pool, eval_pool = dist.pool(train_buckets, grid), dist.pool(eval_buckets, grid)
    a, b = train_pool.cdf(), eval_pool.cdf()
    low, high = dist.central_range(a, b, grid)
    noise = _batch_noise(train_pool, grid, low, high)
    (train_mean, train_std), (eval_mean, eval_std) = _moments(train_rows), _moments(eval_rows)
    return {
        "drift": dist.drift(a, b, grid, low, high),
        "noise": noise,
        "train_mean": train_mean,
        "train_std": train_std,
        "eval_mean": eval_mean,
        "eval_std": eval_std,
        "mean_shift": (eval_mean - train_mean) / train_std if train_std > 0 else math.inf,
        "scale_ratio": eval_std / train_std if train_std > 0 else math.inf,
        "train_records": len(train_rows),
        "eval_records": len(eval_rows),
        "eval_step": int(eval_rows["step"].iloc[0]),
        "range": [low, high],
    }
