"""Evaluate a network on a held-out dataset: loss, accuracy, and a sample of its inputs and labels.

What ``metric.overfitting`` and the epoch checks read (``eval_loss``,
``eval_acc``), and what the train/eval preprocessing comparison reads
(``eval/input``, ``eval/label``). The sample takes a few rows from every
batch rather than whole first batches, so an evaluation set sorted by class
is still sampled across its classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from mindspore import nn

from summary_doctor.mindspore.writing import as_array, rows_per_batch

#: About how many samples of the evaluation inputs and labels one evaluation records.
SAMPLE_ROWS = 1024


@dataclass(frozen=True)
class Evaluation:
    """One pass over the evaluation set."""

    loss: float | None
    accuracy: float | None
    inputs: np.ndarray | None
    labels: np.ndarray | None
    samples: int


def _accuracy_hits(logits: np.ndarray, labels: np.ndarray) -> int | None:
    """Correct predictions of a classifier's batch, or None when the output is not class scores."""
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0] or logits.shape[1] < 2:
        return None
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        return int((logits.argmax(1) == labels).sum())
    if labels.shape == logits.shape:  # one-hot or soft labels
        return int((logits.argmax(1) == labels.argmax(1)).sum())
    return None


class _Totals:
    """Running sums over the batches of one evaluation."""

    def __init__(self, per_batch: int, with_loss: bool) -> None:
        self.per_batch = per_batch
        self.with_loss = with_loss
        self.loss = 0.0
        self.hits: int | None = 0
        self.samples = 0
        self.inputs: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []

    def add(self, x: np.ndarray, y: np.ndarray, logits: np.ndarray, loss: float | None) -> None:
        rows = x.shape[0] if x.ndim else 1
        self.samples += rows
        self.loss += (loss or 0.0) * rows
        hits = _accuracy_hits(logits, y)
        self.hits = None if hits is None or self.hits is None else self.hits + hits
        self.inputs.append(x[: self.per_batch] if x.ndim else x.reshape(1))
        self.labels.append(y[: self.per_batch] if y.ndim else y.reshape(1))

    def result(self) -> Evaluation:
        n = max(self.samples, 1)
        return Evaluation(
            loss=self.loss / n if self.with_loss else None,
            accuracy=None if self.hits is None else self.hits / n,
            inputs=np.concatenate(self.inputs) if self.inputs else None,
            labels=np.concatenate(self.labels) if self.labels else None,
            samples=self.samples,
        )


def evaluate(
    network: nn.Cell,
    loss_fn: nn.Cell | None,
    dataset: Any,
    *,
    input_index: int = 0,
    label_index: int = -1,
    sample_rows: int = SAMPLE_ROWS,
) -> Evaluation:
    """Run ``network`` in eval mode over ``dataset`` (columns: input ... label) and put its mode back."""
    batches = dataset.get_dataset_size() if hasattr(dataset, "get_dataset_size") else 1
    totals = _Totals(rows_per_batch(sample_rows, batches), with_loss=loss_fn is not None)
    was_training = network.training
    network.set_train(False)
    try:
        for element in dataset.create_tuple_iterator(num_epochs=1):
            x, y = element[input_index], element[label_index]
            logits = network(x)
            loss = None if loss_fn is None else float(np.mean(as_array(loss_fn(logits, y))))
            totals.add(as_array(x), as_array(y), as_array(logits), loss)
    finally:
        network.set_train(was_training)
    return totals.result()
