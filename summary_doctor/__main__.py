"""``python -m summary_doctor``: the same as the ``summary-doctor`` command."""

from __future__ import annotations

from summary_doctor.cli import run

if __name__ == "__main__":
    run()
