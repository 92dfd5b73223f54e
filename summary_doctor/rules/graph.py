"""Computation graph: parameters that never change (frozen) while the others train.

This part reads histograms only; the graph side (a parameter that no
optimizer update node consumes) comes with the graph rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run
from summary_doctor.rules._histograms import ENABLE_WEIGHTS, TagKind, base_name, names, rows_of_kind
from summary_doctor.rules.base import Context, Missing, Rule, register

TRAINED_KINDS = (TagKind.WEIGHT, TagKind.OFFSET, TagKind.SCALE)
_RUNNING_STATS = re.compile(r"(?:moving|running)_(?:mean|var|variance)$", re.IGNORECASE)


def unchanged_tags(run: Run, *, rtol: float = 1e-5, atol: float = 1e-8, min_steps: int = 3) -> pd.DataFrame:
    """Per trainable-parameter tag with ``min_steps`` records or more: whether it never changed.

    Columns: tag, steps (records), first_step, last_step, unchanged. A tag is
    unchanged when min, max and sum at every recorded step are allclose to the
    first record (MindInsight's weight_not_changed test) and so are the bucket
    counts. Comparing with the first record, not the previous one, keeps a
    slowly moving weight (tiny learning rate) from looking frozen.
    BatchNorm running statistics are left out: they are not trained. So are
    parameters whose recorded gradient is not zero: they are not frozen, their
    gradient is too small to move them (gradient.vanishing says so).
    """
    rows = rows_of_kind(run, *TRAINED_KINDS)
    running = {name for name in rows["name"].unique() if _RUNNING_STATS.search(name)}  # per tag, not per row
    rows = rows[~rows["name"].isin(running | _receiving_gradient(run))]
    close = _stats_close(rows, rtol, atol)
    records = []
    for tag, group in rows.groupby("tag", sort=False):
        if len(group) < min_steps:
            continue
        same = close[tag] and _buckets_same(run, group)
        records.append((tag, len(group), int(group["step"].min()), int(group["step"].max()), same))
    return pd.DataFrame(records, columns=["tag", "steps", "first_step", "last_step", "unchanged"])


def _receiving_gradient(run: Run) -> set[str]:
    """Parameters with a recorded gradient that is not all zero."""
    grads = pd.concat([rows_of_kind(run, TagKind.GRADIENT), rows_of_kind(run, TagKind.GRADIENT, frame="tensors")])
    moving = grads[(grads["max"].abs() > 0) | (grads["min"].abs() > 0)]
    return set(moving["parameter"].dropna())


def _stats_close(rows: pd.DataFrame, rtol: float, atol: float) -> dict[str, bool]:
    """Per tag: min, max and sum finite and allclose to the tag's first record at every record (all tags at once)."""
    values = rows[["min", "max", "sum"]].to_numpy(dtype=float)
    codes, tags = pd.factorize(rows["tag"])
    first = values[np.unique(codes, return_index=True)[1]][codes]
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values).all(axis=1) & (np.abs(values - first) <= atol + rtol * np.abs(first)).all(axis=1)
    failures = np.bincount(codes, weights=~ok, minlength=len(tags))
    return dict(zip(tags, failures == 0, strict=True))


def _buckets_same(run: Run, group: pd.DataFrame) -> bool:
    """Whether every record has the first one's bucket counts: equal bytes first, decoding only the others."""
    encoded = group["encoded"].to_numpy()
    differ = [label for label, data in zip(group.index[1:], encoded[1:], strict=True) if data != encoded[0]]
    if not differ:
        return True
    table = run.bucket_table(np.array([group.index[0], *differ]))
    first = table.row(0)[2]
    return all(np.array_equal(first, table.row(i)[2]) for i in range(1, len(table)))


@register
@dataclass
class WeightFreezing(Rule):
    """A parameter whose histogram never changes while the other parameters train.

    What it detects: a weight or bias whose histogram statistics (min, max,
    sum) and bucket counts are the same at every recorded step, while at least
    one other recorded parameter changes.
    Why it matters: a layer that should train but is frozen caps the accuracy
    (checklist cg.02). It may be intentional (fine-tuning a pretrained
    backbone), hence a warning.
    Typical causes: ``requires_grad=False`` on the parameter, ``stop_gradient``
    / ``ops.stop_gradient`` on its path, the parameter left out of the
    optimizer's ``params`` list, a learning rate of 0 for its group.
    How to fix: if the layer should train, check ``requires_grad``,
    ``stop_gradient`` and the optimizer's params list.
    Thresholds: allclose with ``rtol`` = 1e-5, ``atol`` = 1e-8 at every
    recorded step (MindInsight watchpoint weight_not_changed, WNC), over at
    least ``min_steps`` = 3 records.
    """

    ids = ("graph.weight-freezing",)
    rtol: float = 1e-5
    atol: float = 1e-8
    min_steps: int = 3

    def requirements(self, run: Run, context: Context) -> Missing | None:
        counts = rows_of_kind(run, *TRAINED_KINDS).groupby("tag").size()
        if (counts >= self.min_steps).any():
            return None
        return Missing(f"no parameter histogram recorded at {self.min_steps} steps or more", ENABLE_WEIGHTS)

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        table = unchanged_tags(run, rtol=self.rtol, atol=self.atol, min_steps=self.min_steps)
        frozen, moving = table[table["unchanged"]], table[~table["unchanged"]]
        if frozen.empty or moving.empty:
            return
        tags = list(frozen["tag"])
        shown = names(tags)
        first, last = int(frozen["first_step"].min()), int(frozen["last_step"].max())
        yield Finding(
            id="graph.weight-freezing",
            severity=Severity.WARNING,
            title=f"{', '.join(shown[:3])} unchanged over {int(frozen['steps'].min())} records",
            message=(
                f"The histograms of {', '.join(shown)} are identical at every recorded step from {first} to {last} "
                f"while {', '.join(names(moving['tag']))} change: these parameters are not trained. "
                "This is right only if they were frozen on purpose (fine-tuning)."
            ),
            hint=(
                "If they should train: check requires_grad, stop_gradient on their path, and that they are in the "
                "optimizer's params list (checklist cg.02)."
            ),
            run=run.name,
            tags=tuple(tags),
            step=first,
            evidence={
                "frozen": [base_name(t) for t in tags],
                "changing": [base_name(t) for t in moving["tag"]],
                "records": {base_name(r.tag): int(r.steps) for r in frozen.itertuples()},
                "rtol": self.rtol,
                "atol": self.atol,
            },
        )
