"""``Recorder``: a ``SummaryCollector`` that also records what summary-doctor's checks need.

``SummaryCollector``'s defaults leave most of the accuracy checklist "not
checkable": its first histograms come after the first update, and it records
no gradient, activation, input, label or evaluation curve. ``Recorder`` takes
the same arguments and adds, at the same collect steps:

- every parameter's histogram (``<param>/auto``), also at step 0, before
  the first update;
- the gradients that are applied (``grad/<param>``), through a forward hook
  on the train network's ``grad_reducer`` (see :mod:`.hooks`);
- the outputs of the activation cells, or of the cells you name (``act/<cell>``);
- the batch's input and label (``input``, ``label``);
- after each epoch, given an evaluation set: ``eval_loss``, ``eval_acc`` and a
  sample of ``eval/input``, ``eval/label``; with ``Model.fit(valid_dataset=...)``
  the metrics MindSpore computes (``eval_<metric>``).

Loss landscape is off unless asked for: MindSpore 2.10 turns it on by
default, and it writes checkpoints into the summary directory.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import mindspore
from mindspore import context
from mindspore.train import SummaryCollector

from summary_doctor.mindspore import hooks
from summary_doctor.mindspore.evaluate import SAMPLE_ROWS, evaluate
from summary_doctor.mindspore.lineage import writes_dataset_graph
from summary_doctor.mindspore.tags import EVAL_ACC, EVAL_INPUT, EVAL_LABEL, EVAL_LOSS, eval_metric_tag
from summary_doctor.mindspore.writing import batch_histograms, is_collect_step, parameter_histograms, write_values

log = logging.getLogger(__name__)


class Recorder(SummaryCollector):
    """A drop-in ``SummaryCollector`` for ``Model.train`` / ``Model.fit`` that records what the checks need.

    ``parameters``, ``gradients``: which to record (``re.match`` on the
    parameter name; None for none). ``activations``: ``"auto"`` (every
    activation cell), a list of cell names, or None. ``eval_dataset``:
    evaluated every ``eval_every`` epochs with the model's network and loss
    function (or ``network`` / ``loss_fn``). Other keyword arguments go to
    ``SummaryCollector``.
    """

    def __init__(
        self,
        summary_dir: str,
        collect_freq: int = 10,
        *,
        parameters: str | None = ".*",
        gradients: str | None = ".*",
        activations: str | Sequence[str] | None = "auto",
        inputs: bool = True,
        eval_dataset: Any = None,
        eval_every: int = 1,
        network: Any = None,
        loss_fn: Any = None,
        input_index: int = 0,
        label_index: int = -1,
        collect_specified_data: Mapping[str, Any] | None = None,
        **collector_options: Any,
    ) -> None:
        specified = {"collect_landscape": None, "histogram_regular": parameters, **_version_defaults()}
        specified.update(collect_specified_data or {})
        super().__init__(summary_dir, collect_freq, collect_specified_data=specified, **collector_options)
        self.parameters_pattern = specified.get("histogram_regular")
        self.gradients_pattern = gradients
        self.activations = activations
        self.inputs = inputs
        self.eval_dataset = eval_dataset
        self.eval_every = max(1, int(eval_every))
        self.network, self.loss_fn = network, loss_fn
        self.input_index, self.label_index = input_index, label_index
        self._handles: list[Any] = []
        self._first_collect = True
        self._depth = 0  # Model.fit enters its callbacks again for each evaluation
        self._open = False
        self._opened_at = 0.0
        self._train_step = 0

    # ---- lifetime of the record -------------------------------------------------------------

    def __enter__(self) -> Recorder:
        self._depth += 1
        if self._depth == 1:
            super().__enter__()
            self._open, self._opened_at = True, time.time()
            yield_writer(self._record)
        return self

    def __exit__(self, *error: Any) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        hooks.remove(self._handles)
        self._handles = []
        if self._open:
            self._open = False
            super().__exit__(*error)

    def sync(self, run_context: Any) -> None:
        """Put everything recorded so far on disk: close this file and go on in a new one.

        ``SummaryRecord.flush`` only queues a flush for its writer process, so
        a reader started after it may miss the tail; closing waits for it.
        File names hold the second they were opened: wait for the next one so
        the new file never overwrites this one.
        """
        if not self._open:
            return
        self._record.close()
        while int(time.time()) == int(self._opened_at):
            time.sleep(0.05)
        SummaryCollector.__enter__(self)
        self._opened_at = time.time()
        yield_writer(self._record)
        SummaryCollector.begin(self, run_context)
        self._first_collect = True

    def finish(self, run_context: Any) -> None:
        """End of training (or of ``Model.eval``): write the lineage and close the file; once."""
        if not self._open:
            return
        super().end(run_context)
        self._open = False
        self._record.close()

    # ---- callback steps ---------------------------------------------------------------------
    # Only the on_* methods: Model.fit refuses user callbacks that define begin/step_end/...;
    # each calls SummaryCollector's own step through Callback's on_* default.

    def on_train_begin(self, run_context: Any) -> None:
        super().on_train_begin(run_context)
        params = run_context.original_args()
        self._first_collect = True
        if self._handles:
            return
        self._install_hooks(params)
        optimizer = self._get_optimizer(params)
        if optimizer is not None:
            initial = parameter_histograms(optimizer.parameters, self.parameters_pattern)
            write_values(self._record, params.cur_step_num, histograms=initial)

    def on_eval_begin(self, run_context: Any) -> None:
        if self._depth == 1:  # Model.eval on its own; within Model.fit the record stays in train mode
            super().on_eval_begin(run_context)

    def _install_hooks(self, params: Any) -> None:
        if self.gradients_pattern is not None:
            self._handles.append(hooks.hook_gradients(params.train_network, self.gradients_pattern))
        network = self.network if self.network is not None else params.network
        cells = hooks.activation_cells(network, self.activations)
        self._handles += hooks.hook_activations(cells)

    def on_train_step_end(self, run_context: Any) -> None:
        super().on_train_step_end(run_context)
        params = run_context.original_args()
        if context.get_context("mode") == context.PYNATIVE_MODE:
            hooks.compact_operator_cache()
        self._train_step = params.cur_step_num
        if is_collect_step(params.cur_step_num, self._collect_freq, self._first_collect):
            self._first_collect = False
            if self.inputs:
                element = params.train_dataset_element
                found = batch_histograms(element, self.input_index, self.label_index)
                write_values(self._record, params.cur_step_num, histograms=found)

    def on_train_epoch_end(self, run_context: Any) -> None:
        super().on_train_epoch_end(run_context)
        params = run_context.original_args()
        last = params.cur_epoch_num >= params.epoch_num
        if self.eval_dataset is not None and (params.cur_epoch_num % self.eval_every == 0 or last):
            self._evaluate(params)

    def on_train_end(self, run_context: Any) -> None:
        self.finish(run_context)

    def on_eval_end(self, run_context: Any) -> None:
        """Within ``Model.fit``: MindSpore's metrics as ``eval_<metric>`` scalars at the last training step.

        A ``Model.eval`` on its own writes the evaluation lineage, as ``SummaryCollector`` does.
        """
        if self._depth <= 1:
            self.finish(run_context)
            return
        results = run_context.original_args().get("eval_results") or {}  # params raise KeyError, not AttributeError
        scalars = {eval_metric_tag(str(k)): float(v) for k, v in results.items() if _is_number(v)}
        if scalars and self._open:
            write_values(self._record, self._train_step, scalars=scalars)

    def _evaluate(self, params: Any) -> None:
        network, loss_fn = _eval_pair(self.network or params.network, self.loss_fn or params.loss_fn)
        result = evaluate(
            network,
            loss_fn,
            self.eval_dataset,
            input_index=self.input_index,
            label_index=self.label_index,
            sample_rows=SAMPLE_ROWS,
        )
        histograms = {EVAL_INPUT: result.inputs, EVAL_LABEL: result.labels} if self.inputs else {}
        scalars = {EVAL_LOSS: result.loss, EVAL_ACC: result.accuracy}
        write_values(
            self._record,
            params.cur_step_num,
            histograms={k: v for k, v in histograms.items() if v is not None},
            scalars={k: v for k, v in scalars.items() if v is not None},
        )


def yield_writer(record: Any) -> None:
    """Let training threads go first: lowest CPU priority for the summary writer's process.

    MindSpore's writer process polls its queue without blocking
    (``mindspore/train/summary/_writer_pool.py``), so it keeps one core busy
    for the whole training; on a machine with few cores that slows every
    step. At the lowest priority it still runs whenever a core is idle.
    """
    process = getattr(getattr(record, "_event_writer", None), "pid", None)
    if process is None or not hasattr(os, "setpriority"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, process, 19)
    except OSError as error:
        log.debug("summary writer %s keeps its priority: %s", process, error)


def _version_defaults() -> dict[str, Any]:
    """Collector options this MindSpore version needs beside protobuf 7 (see :func:`.lineage.writes_dataset_graph`)."""
    if writes_dataset_graph():
        return {}
    log.warning(
        "summary-doctor: MindSpore %s cannot write its dataset graph beside protobuf 7; it is not recorded "
        "(MindSpore 2.10 can)",
        mindspore.__version__,
    )
    return {"collect_dataset_graph": False}


def _eval_pair(network: Any, loss_fn: Any) -> tuple[Any, Any]:
    """The backbone and loss of a ``WithLossCell`` passed to ``Model`` without a separate loss function."""
    if loss_fn is None and hasattr(network, "backbone_network") and hasattr(network, "_loss_fn"):
        return network.backbone_network, network._loss_fn
    return network, loss_fn


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
