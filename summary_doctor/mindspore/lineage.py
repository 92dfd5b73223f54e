"""The lineage of a hand-written loop, in the messages ``SummaryCollector`` writes for ``Model``.

The rules read the learning rate, batch size, epochs and dataset size from
the train lineage (``hparam.batch-too-large`` is not checkable without a
batch size), and the shuffle and normalisation from the dataset graph.
"""

from __future__ import annotations

import json
import logging
from itertools import takewhile
from typing import Any

import mindspore
import numpy as np
from mindspore.train import lineage_pb2

log = logging.getLogger(__name__)


def release(version: str) -> tuple[int, ...]:
    """``"2.10.0rc1"`` -> ``(2, 10, 0)``."""
    return tuple(int("".join(takewhile(str.isdigit, part)) or 0) for part in version.split(".")[:3])


def writes_dataset_graph() -> bool:
    """Whether this MindSpore can write its dataset graph beside protobuf 7 (which the reader requires).

    Before 2.10 it packs the graph with protobuf 3 semantics and fails under
    protobuf 7 (``RepeatedCompositeFieldContainer object does not support
    item assignment``; seen with 2.7.2 and 2.9.0).
    """
    return release(mindspore.__version__) >= (2, 10)


def dataset_graph(dataset: Any) -> Any | None:
    """The dataset pipeline as ``SummaryCollector`` packs it (its own packer), or None when it cannot."""
    if not writes_dataset_graph():
        return None
    try:
        from mindspore.train.callback._dataset_graph import DatasetGraph

        return DatasetGraph().package_dataset_graph(dataset)
    except Exception as error:  # a private MindSpore helper: never let it stop the training
        log.warning("summary-doctor: the dataset graph is not recorded (%s: %s)", type(error).__name__, error)
        return None


def learning_rate(optimizer: Any) -> float | None:
    """The optimizer's (first) learning rate; None for a schedule it cannot show as one number."""
    lr = getattr(optimizer, "learning_rate", None)
    if lr is None:
        return None
    try:
        values = np.atleast_1d(lr.asnumpy() if hasattr(lr, "asnumpy") else np.asarray(lr, dtype=float))
    except (TypeError, ValueError, RuntimeError):
        return None
    return float(values.ravel()[0]) if values.size else None


def train_lineage(
    *,
    network: Any,
    optimizer: Any,
    loss_fn: Any,
    epochs: int,
    batch_size: int | None,
    dataset: Any = None,
    steps_per_epoch: int | None = None,
    final_loss: float | None = None,
) -> lineage_pb2.TrainLineage:
    """A ``TrainLineage`` message; the dataset size (samples) from ``dataset`` or the first epoch's steps."""
    message = lineage_pb2.TrainLineage()
    message.algorithm.network = type(network).__name__
    if final_loss is not None:
        message.algorithm.loss = final_loss
    hyper = message.hyper_parameters
    lr = learning_rate(optimizer) if optimizer is not None else None
    if lr is not None:
        hyper.learning_rate = lr
    if optimizer is not None:
        hyper.optimizer = type(optimizer).__name__
    if loss_fn is not None:
        hyper.loss_function = type(loss_fn).__name__
    hyper.epoch = int(epochs)
    hyper.device_num = 1
    hyper.parallel_mode = "stand_alone"
    if dataset is not None and hasattr(dataset, "get_dataset_size"):
        batch_size = batch_size or int(dataset.get_batch_size())
        steps_per_epoch = int(dataset.get_dataset_size())
    if batch_size:
        hyper.batch_size = int(batch_size)
        if steps_per_epoch:
            message.train_dataset.train_dataset_size = int(steps_per_epoch * batch_size)
    message.model.path = json.dumps({"ckpt": None})
    message.model.size = 0
    return message
