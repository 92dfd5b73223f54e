"""``python -m summary_doctor``: the same as the ``summary-doctor`` command."""

from __future__ import annotations

import sys

from summary_doctor.cli import main

if __name__ == "__main__":
    sys.exit(main())
