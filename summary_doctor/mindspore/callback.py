"""``DiagnoseOnEnd``: diagnose the run when training ends (or every N epochs) and print the verdict.

It works with the :class:`~summary_doctor.mindspore.recorder.Recorder` in the
same callback list, which it asks to put everything on disk first (the
summary writer runs in another process and flushes asynchronously). The
diagnosis runs in a child interpreter (:mod:`.diagnosis`), so a problem in it
never stops the training: it is logged as a warning.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from mindspore.train import Callback

from summary_doctor.errors import SummaryDoctorError
from summary_doctor.mindspore.diagnosis import REPORT_NAME, Verdict, diagnose_summary
from summary_doctor.mindspore.recorder import Recorder

log = logging.getLogger(__name__)


class DiagnoseOnEnd(Callback):
    """Diagnose the recorded run at the end of training, and every ``every_n_epochs`` epochs if given.

    ``report``: the HTML report, relative to the summary directory (None:
    none). ``stop_on_error``: stop training after an epoch whose diagnosis
    found an error (needs ``every_n_epochs``). ``echo``: print the terminal
    report (False: only the one-line verdict). ``recorder``: the
    :class:`Recorder` to diagnose (default: the one in the callback list).
    The verdicts are kept in ``verdicts``; the last in ``verdict``.
    """

    def __init__(
        self,
        recorder: Recorder | None = None,
        *,
        every_n_epochs: int | None = None,
        stop_on_error: bool = False,
        report: str | os.PathLike[str] | None = REPORT_NAME,
        echo: bool = True,
    ) -> None:
        super().__init__()
        self.recorder = recorder
        self.every_n_epochs = every_n_epochs
        self.stop_on_error = stop_on_error
        self.report = report
        self.echo = echo
        self.verdicts: list[Verdict] = []

    @property
    def verdict(self) -> Verdict | None:
        """The latest verdict (None before the first diagnosis, or when it failed)."""
        return self.verdicts[-1] if self.verdicts else None

    def on_train_begin(self, run_context: Any) -> None:
        if self.recorder is None:
            callbacks = run_context.original_args().list_callback
            self.recorder = next((cb for cb in callbacks if isinstance(cb, Recorder)), None)
        if self.recorder is None:
            raise ValueError(
                "DiagnoseOnEnd needs a summary_doctor.mindspore.Recorder in the same callback list "
                "(it records what the diagnosis reads, in place of a SummaryCollector)"
            )

    def on_train_epoch_end(self, run_context: Any) -> None:
        params = run_context.original_args()
        if not self.every_n_epochs or params.cur_epoch_num % self.every_n_epochs:
            return
        if params.cur_epoch_num >= params.epoch_num:
            return  # on_train_end diagnoses the finished run
        assert self.recorder is not None
        self.recorder.sync(run_context)
        verdict = self._diagnose(f"epoch {params.cur_epoch_num}")
        if verdict is not None and self.stop_on_error and verdict.errors:
            print(f"summary-doctor: stopping the training after epoch {params.cur_epoch_num}: {verdict.headline}")
            run_context.request_stop()

    def on_train_end(self, run_context: Any) -> None:
        assert self.recorder is not None
        self.recorder.finish(run_context)
        self._diagnose("end of training")

    def _diagnose(self, when: str) -> Verdict | None:
        assert self.recorder is not None
        directory = self.recorder._summary_dir  # SummaryCollector's own (made absolute) path
        try:
            verdict = diagnose_summary(directory, report=self.report)
        except SummaryDoctorError as error:
            log.warning("summary-doctor: %s: %s", when, error)
            return None
        self.verdicts.append(verdict)
        if self.echo:
            print(verdict.text, end="" if verdict.text.endswith("\n") else "\n")
        print(f"{verdict.headline} ({when})")
        return verdict
