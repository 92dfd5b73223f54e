"""The training dataset pipeline that SummaryCollector writes to the lineage, read for the data rules.

What MindSpore 2.10 records (``mindspore.dataset.serialize`` of the train
dataset): a chain of dataset ops from ``Batch`` down to the source; ``Map``
ops carry their operations (``Rescale``, ``Normalize``, ``TypeCast`` ...);
mappable sources (``ImageFolderDataset``, ``MnistDataset`` ...) carry their
sampler (``RandomSampler`` when shuffling, ``SequentialSampler`` when not,
``DistributedSampler`` with ``shuffle_mode``); file sources (``CSVDataset``,
``TFRecordDataset`` ...) an integer ``shuffle`` (0 = off). A
``GeneratorDataset``, which is also what ``NumpySlicesDataset`` becomes,
records neither: whether it shuffles is not in the logs. An explicit
``.shuffle()`` is a ``Shuffle`` op with its ``buffer_size``. Only the train
pipeline is recorded, never the evaluation one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from summary_doctor.reader.derived import per_run
from summary_doctor.reader.run import Run

NORMALIZING_OPS = ("Rescale", "Normalize", "NormalizePad", "ToTensor")
SHUFFLING_SAMPLERS = ("RandomSampler", "WeightedRandomSampler", "SubsetRandomSampler", "PKSampler")
ShuffleState = Literal["shuffled", "not shuffled", "unknown"]


@dataclass(frozen=True)
class Step:
    """One dataset op of the chain, source first: its type, map operations and parameters."""

    op_type: str
    operations: tuple[str, ...]
    params: dict[str, Any]
    sampler: str | None = None


@per_run
def chain(run: Run) -> list[Step]:
    """The recorded pipeline from the source to the last op (empty without a dataset graph)."""
    ops = run.lineage.dataset_ops
    by_depth: dict[int, list[tuple[str, str, Any]]] = defaultdict(list)  # plain lists: a few ops, read once
    columns = (ops[c].tolist() for c in ("depth", "role", "op_type", "params"))
    for depth, role, op_type, params in zip(*columns, strict=True):
        if depth == depth:  # not NaN
            by_depth[depth].append((role, op_type, params))
    steps = []
    for depth in sorted(by_depth, reverse=True):
        rows = by_depth[depth]
        datasets = [(op_type, params) for role, op_type, params in rows if role == "dataset"]
        if not datasets:
            continue
        samplers = [op_type for role, op_type, _ in rows if role == "sampler"]
        steps.append(
            Step(
                op_type=str(datasets[0][0]),
                operations=tuple(str(op_type) for role, op_type, _ in rows if role == "operation"),
                params=dict(datasets[0][1] or {}),
                sampler=str(samplers[0]) if samplers else None,
            )
        )
    return steps


def _sampler_params(run: Run) -> dict[str, Any]:
    ops = run.lineage.dataset_ops
    rows = ops[ops["role"] == "sampler"]
    return dict(rows["params"].iloc[-1] or {}) if not rows.empty else {}


def normalizing_ops(run: Run) -> list[str]:
    """Map operations that bring pixel-like values to a unit scale."""
    return [op for step in chain(run) for op in step.operations if op in NORMALIZING_OPS]


@dataclass(frozen=True)
class Shuffle:
    """Whether the recorded pipeline shuffles, and the evidence for it."""

    state: ShuffleState
    reason: str
    buffer_size: int | None = None


def shuffle_state(run: Run) -> Shuffle | None:
    """Shuffled, not shuffled or unknown from the dataset graph; None when no graph was recorded."""
    steps = chain(run)
    if not steps:
        return None
    shuffles = [s for s in steps if s.op_type == "Shuffle"]
    if shuffles:
        size = shuffles[0].params.get("buffer_size")
        return Shuffle("shuffled", f"a Shuffle op (buffer_size {size})", int(size) if size is not None else None)
    source = steps[0]
    if source.sampler is not None:
        return _sampler_verdict(source.sampler, _sampler_params(run))
    flag = source.params.get("shuffle")
    if flag is not None and not isinstance(flag, str):
        on = bool(flag)
        return Shuffle("shuffled" if on else "not shuffled", f"{source.op_type}(shuffle={flag!r})")
    return Shuffle(
        "unknown", f"{source.op_type} records no shuffle setting (NumpySlicesDataset is recorded the same way)"
    )


def _sampler_verdict(sampler: str, params: dict[str, Any]) -> Shuffle:
    if sampler in SHUFFLING_SAMPLERS:
        return Shuffle("shuffled", f"the source's {sampler}")
    if sampler == "SequentialSampler":
        return Shuffle("not shuffled", "the source's SequentialSampler (shuffle=False)")
    mode = params.get("shuffle_mode", params.get("shuffle"))
    if mode is not None and not isinstance(mode, str):
        return Shuffle("shuffled" if mode else "not shuffled", f"the source's {sampler}(shuffle_mode={mode})")
    return Shuffle("unknown", f"the source's {sampler} records no shuffle setting")


def batch_size(run: Run) -> int | None:
    """The batch size: the Batch op's, else the train lineage's."""
    for step in reversed(chain(run)):
        if step.op_type == "Batch" and isinstance(step.params.get("batch_size"), (int, float)):
            return int(step.params["batch_size"])
    value = run.lineage.hyperparameters.get("batch_size")
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


ENABLE_PIPELINE = (
    "SummaryCollector records the train dataset graph by default (collect_specified_data="
    "{'collect_dataset_graph': True}); train with Model.train(..., callbacks=[SummaryCollector(...)])"
)
