"""``LoopRecorder``: the recording of :class:`.recorder.Recorder` for a hand-written training loop.

A loop built on ``ms.value_and_grad`` has no ``Model`` callbacks and no
``TrainOneStepCell``: it hands the loss, the gradients and the batch to
:meth:`LoopRecorder.step` after each optimizer step, and calls
:meth:`LoopRecorder.epoch_end` after each epoch. Activations are hooked as
with ``Model``. The tags are the same as with ``Model.train``
(``loss/auto``, ``<param>/auto``, ``grad/<param>``, ``act/<cell>``, ``input``,
``label``, ``eval_loss``, ``eval_acc``, ``eval/input``, ``eval/label``), and
a train lineage is written at the end (optimizer, learning rate, loss
function, epochs, batch size, dataset size), as ``SummaryCollector`` does.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from mindspore import Tensor, context
from mindspore.train.summary.summary_record import SummaryRecord

from summary_doctor.errors import SummaryDoctorError
from summary_doctor.mindspore import hooks
from summary_doctor.mindspore.diagnosis import REPORT_NAME, Verdict, diagnose_summary
from summary_doctor.mindspore.evaluate import evaluate
from summary_doctor.mindspore.lineage import dataset_graph, train_lineage
from summary_doctor.mindspore.tags import EVAL_ACC, EVAL_INPUT, EVAL_LABEL, EVAL_LOSS, LOSS, gradient_tag
from summary_doctor.mindspore.writing import (
    as_array,
    batch_histograms,
    is_collect_step,
    parameter_histograms,
    write_values,
)

log = logging.getLogger(__name__)


class LoopRecorder:
    """Record a hand-written training loop; optionally diagnose it when it ends.

    ``with LoopRecorder(dir, net, optimizer, loss_fn=loss_fn, eval_dataset=eval_ds) as recorder:``
    then ``recorder.step(loss, grads=grads, inputs=x, labels=y)`` after each
    step and ``recorder.epoch_end()`` after each epoch. ``train_dataset``
    (optional) adds its pipeline (shuffle, normalisation) and size to the lineage. ``diagnose=True``
    diagnoses the run when the ``with`` block ends and prints the verdict
    (kept in ``verdict``); ``report`` is the HTML report's path.
    """

    def __init__(
        self,
        summary_dir: str | os.PathLike[str],
        network: Any,
        optimizer: Any = None,
        *,
        loss_fn: Any = None,
        collect_freq: int = 10,
        parameters: str | None = ".*",
        gradients: str | None = ".*",
        activations: str | Sequence[str] | None = "auto",
        eval_dataset: Any = None,
        eval_every: int = 1,
        train_dataset: Any = None,
        input_index: int = 0,
        label_index: int = -1,
        diagnose: bool = False,
        report: str | os.PathLike[str] | None = REPORT_NAME,
    ) -> None:
        self.summary_dir = os.path.abspath(summary_dir)
        self.network, self.optimizer, self.loss_fn = network, optimizer, loss_fn
        self.collect_freq = collect_freq
        self.parameters_pattern, self.gradients_pattern = parameters, gradients
        self.activations = activations
        self.eval_dataset, self.eval_every = eval_dataset, max(1, int(eval_every))
        self.train_dataset = train_dataset
        self.input_index, self.label_index = input_index, label_index
        self.diagnose, self.report = diagnose, report
        self.verdict: Verdict | None = None
        self.step_num = 0
        self.epoch = 0
        self._record: SummaryRecord | None = None
        self._handles: list[Any] = []
        self._last_loss: Any = None
        self._batch_size: int | None = None
        self._steps_in_first_epoch: int | None = None

    @property
    def weights(self) -> list[Any]:
        """The trained parameters, in the order ``value_and_grad(..., optimizer.parameters)`` gives gradients."""
        source = self.optimizer.parameters if self.optimizer is not None else self.network.trainable_params()
        return list(source)

    def __enter__(self) -> LoopRecorder:
        self.begin()
        return self

    def __exit__(self, *error: Any) -> None:
        self.end(diagnose=self.diagnose and error[0] is None)

    def begin(self) -> None:
        """Open the summary file, hook the activations, write the parameters before the first update."""
        if self._record is not None:
            return
        os.makedirs(self.summary_dir, exist_ok=True)
        self._record = SummaryRecord(self.summary_dir, network=self.network if _graph_mode() else None)
        self._handles = hooks.hook_activations(hooks.activation_cells(self.network, self.activations))
        graph = dataset_graph(self.train_dataset) if self.train_dataset is not None else None
        if graph is not None:
            self._record.add_value("dataset_graph", "train_dataset", graph)
        write_values(self._record, 0, histograms=parameter_histograms(self.weights, self.parameters_pattern))

    def step(self, loss: Any, *, grads: Sequence[Any] | None = None, inputs: Any = None, labels: Any = None) -> None:
        """After an optimizer step: record at the collect steps (the first, then every ``collect_freq``)."""
        if self._record is None:
            self.begin()
        assert self._record is not None
        self.step_num += 1
        if context.get_context("mode") == context.PYNATIVE_MODE:
            hooks.compact_operator_cache()
        if inputs is not None and self._batch_size is None:
            self._first_batch(inputs)
        self._last_loss = loss  # read only at collect steps and at the end: no sync on every step
        if not is_collect_step(self.step_num, self.collect_freq, self.step_num == 1):
            return
        self._record.add_value("scalar", LOSS, _scalar(_mean(loss)))
        values = {**parameter_histograms(self.weights, self.parameters_pattern), **self._gradients(grads)}
        values.update(batch_histograms([inputs, labels] if labels is not None else [inputs], 0, -1))
        for tag, value in values.items():
            if value is not None:
                self._record.add_value("histogram", tag, _tensor(value))
        self._record.record(self.step_num)  # train mode: also writes the activation hooks' values

    def _first_batch(self, inputs: Any) -> None:
        """The batch size for the lineage; in GRAPH_MODE, compile the forward so its graph can be written."""
        shape = tuple(inputs.shape)
        self._batch_size = int(shape[0]) if shape else 1
        if not _graph_mode():
            return
        try:
            self.network.compile(inputs)
        except (TypeError, ValueError, RuntimeError) as error:
            log.warning("summary-doctor: the network's graph is not recorded (compiling its forward failed: %s)", error)

    def _gradients(self, grads: Sequence[Any] | None) -> dict[str, Any]:
        if grads is None or self.gradients_pattern is None:
            return {}
        weights = self.weights
        if len(grads) != len(weights):
            log.warning("summary-doctor: %d gradients for %d parameters: not recorded", len(grads), len(weights))
            return {}
        pattern = self.gradients_pattern
        return {gradient_tag(p.name): g for p, g in zip(weights, grads, strict=True) if _matches(pattern, p.name)}

    def epoch_end(self) -> None:
        """After an epoch: evaluate every ``eval_every`` epochs, and make the data readable."""
        assert self._record is not None, "call begin() (or use the with statement) first"
        self.epoch += 1
        if self._steps_in_first_epoch is None:
            self._steps_in_first_epoch = self.step_num
        if self.eval_dataset is not None and self.epoch % self.eval_every == 0:
            result = evaluate(
                self.network,
                self.loss_fn,
                self.eval_dataset,
                input_index=self.input_index,
                label_index=self.label_index,
            )
            histograms = {EVAL_INPUT: result.inputs, EVAL_LABEL: result.labels}
            scalars = {EVAL_LOSS: result.loss, EVAL_ACC: result.accuracy}
            write_values(
                self._record,
                self.step_num,
                histograms={k: v for k, v in histograms.items() if v is not None},
                scalars=scalars,
            )
        self._record.flush()

    def end(self, *, diagnose: bool | None = None) -> Verdict | None:
        """Write the lineage, close the file; diagnose if asked (default: the ``diagnose`` option)."""
        if self._record is None:
            return self.verdict
        lineage = train_lineage(
            network=self.network,
            optimizer=self.optimizer,
            loss_fn=self.loss_fn,
            epochs=self.epoch,
            batch_size=self._batch_size,
            dataset=self.train_dataset,
            steps_per_epoch=self._steps_in_first_epoch,
            final_loss=None if self._last_loss is None else _mean(self._last_loss),
        )
        self._record.add_value("train_lineage", "train_lineage", lineage)
        self._record.set_mode("eval")
        self._record.record(self.step_num)
        self._record.close()
        self._record = None
        hooks.remove(self._handles)
        self._handles = []
        if self.diagnose if diagnose is None else diagnose:
            try:
                self.verdict = diagnose_summary(self.summary_dir, report=self.report)
            except SummaryDoctorError as error:
                log.warning("summary-doctor: %s", error)
                return None
            print(self.verdict.text, end="")
            print(self.verdict.headline)
        return self.verdict


def _graph_mode() -> bool:
    return context.get_context("mode") == context.GRAPH_MODE


def _matches(pattern: str, name: str) -> bool:
    return re.match(pattern, name) is not None


def _tensor(value: Any) -> Tensor:
    array = as_array(value)
    return Tensor(array.reshape(1) if array.ndim == 0 else array)


def _mean(value: Any) -> float:
    return float(np.mean(as_array(value)))


def _scalar(value: float) -> Tensor:
    return Tensor(np.float32(value))
