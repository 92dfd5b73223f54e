"""Inside MindSpore training: record what summary-doctor's checks need, and diagnose when training ends.

Two lines in a ``Model.train`` script::

    from summary_doctor.mindspore import DiagnoseOnEnd, Recorder
    model.train(epochs, train_ds, callbacks=[Recorder("./summary", eval_dataset=eval_ds), DiagnoseOnEnd()])

A hand-written loop (``ms.value_and_grad``) uses :class:`LoopRecorder`.

Importing ``summary_doctor`` or its reader never imports MindSpore; the names
below do, on first use (this package's own ``child`` and ``diagnosis``
modules do not, so the diagnosis can run in a process without it).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Recorder": "summary_doctor.mindspore.recorder",
    "LoopRecorder": "summary_doctor.mindspore.loop",
    "DiagnoseOnEnd": "summary_doctor.mindspore.callback",
    "Verdict": "summary_doctor.mindspore.diagnosis",
    "diagnose_summary": "summary_doctor.mindspore.diagnosis",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'summary_doctor.mindspore' has no attribute {name!r}")
