"""Forward hooks that put gradients and activations into the summary.

MindSpore compiles a cell's forward hooks into the graph in GRAPH_MODE and
calls them in Python in PYNATIVE_MODE, so one hook that calls
``ops.HistogramSummary`` works in both. Its values reach the file at the
next ``SummaryRecord.record`` in train mode, i.e. at the collector's collect
steps.

Gradients: ``nn.TrainOneStepCell`` (which ``Model`` builds, and its loss-scale
and user subclasses) passes the gradients through its ``grad_reducer`` cell
(``nn.Identity`` on one device) just before the optimizer, so a forward hook
there sees the very gradients that are applied. A pre-hook on the optimizer
would be simpler, but MindSpore 2.10 fails to compile it ("Graph cycle
exists") when the hook holds a summary operator.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mindspore import nn, ops
from mindspore.ops.operations import debug_ops

from summary_doctor.mindspore.tags import activation_tag, gradient_tag

log = logging.getLogger(__name__)

_HISTOGRAM = ops.HistogramSummary()

#: Cells whose output is what the dead-unit and saturation checks read.
ACTIVATION_CELLS: tuple[type, ...] = tuple(
    getattr(nn, name)
    for name in (
        "ReLU",
        "ReLU6",
        "LeakyReLU",
        "PReLU",
        "RReLU",
        "ELU",
        "SeLU",
        "CELU",
        "GELU",
        "FastGelu",
        "SiLU",
        "Mish",
        "HSwish",
        "HSigmoid",
        "Sigmoid",
        "Tanh",
        "Hardtanh",
        "Softsign",
    )
    if hasattr(nn, name)
)


def _gradient_hook(tags: tuple[str, ...], wanted: tuple[bool, ...]) -> Callable[..., None]:
    def hook(cell: Any, args: Any, output: Any) -> None:
        for i in range(len(tags)):
            if wanted[i]:
                _HISTOGRAM(tags[i], output[i])

    return hook


def _activation_hook(tag: str) -> Callable[..., None]:
    def hook(cell: Any, args: Any, output: Any) -> None:
        _HISTOGRAM(tag, output)

    return hook


def hook_gradients(train_network: Any, pattern: str | None) -> Any | None:
    """Record ``grad/<param>`` for the parameters matching ``pattern`` (``re.match``); the hook's handle.

    None (and a warning) when ``train_network`` is not a ``TrainOneStepCell``-like
    cell with a ``grad_reducer``; record the gradients yourself then.
    """
    reducer = getattr(train_network, "grad_reducer", None)
    weights = getattr(train_network, "weights", None)
    if not isinstance(reducer, nn.Cell) or weights is None:
        log.warning(
            "summary-doctor: %s has no grad_reducer cell: gradients are not recorded "
            "(record them with ops.HistogramSummary()('grad/<param>', g))",
            type(train_network).__name__,
        )
        return None
    names = [p.name for p in weights]
    tags = tuple(gradient_tag(n) for n in names)
    wanted = tuple(pattern is not None and re.match(pattern, n) is not None for n in names)
    return reducer.register_forward_hook(_gradient_hook(tags, wanted))


def activation_cells(network: nn.Cell, which: str | Sequence[str] | None) -> list[tuple[str, nn.Cell]]:
    """The cells whose outputs to record: ``"auto"`` every activation cell, or the cells named in ``which``.

    Names are those of ``network.cells_and_names()`` (``fc1``, ``features.0``).
    A cell used several times in one step records its last use.
    """
    if not which:
        return []
    cells = [(name, cell) for name, cell in network.cells_and_names() if name]
    if which == "auto":
        return [(name, cell) for name, cell in cells if isinstance(cell, ACTIVATION_CELLS)]
    names = [which] if isinstance(which, str) else list(which)
    by_name = dict(cells)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"activations: no cell named {unknown} in the network (known: {sorted(by_name)[:20]})")
    return [(name, by_name[name]) for name in names]


def hook_activations(cells: Iterable[tuple[str, nn.Cell]]) -> list[Any]:
    """Record ``act/<name>`` for each cell's output; the hooks' handles."""
    return [cell.register_forward_hook(_activation_hook(activation_tag(name))) for name, cell in cells]


def remove(handles: Iterable[Any]) -> None:
    """Remove hooks (their handles), so a later compilation is not affected."""
    for handle in handles:
        if handle is not None:
            handle.remove()


def compact_operator_cache() -> None:
    """Keep only the newest value per summary operator and tag (PYNATIVE_MODE).

    In PYNATIVE_MODE each summary operator call appends its tensor to a list
    that is emptied only by ``SummaryRecord.record``, which then keeps the
    newest value per tag; between collect steps that list would hold every
    step's gradients. Keeping the newest entry per tag writes the same values
    and bounds the memory.
    """
    cache = debug_ops.SUMMARY_TENSOR_CACHE
    if len(cache) < 2:
        return
    newest: dict[tuple[str, str], list[Any]] = {}
    for entry in cache:
        newest.pop((entry[0], entry[1]), None)
        newest[(entry[0], entry[1])] = entry
    cache[:] = list(newest.values())
