"""A folder of past experiments made of real fixture runs, for the audit's tests.

```
experiments/2026-01-10/run_1/        healthy_mlp
experiments/2026-01-10/run_2/        lr_too_large
experiments/2026-02-03/job/rank_0/   ranks/rank_0
experiments/2026-02-03/job/rank_1/   ranks/rank_1
experiments/2026-02-03/corrupt/      one summary file of garbage: nothing can be read
experiments/2026-02-03/empty/        an empty directory: not a run
live/                                oscillating, its summary file cut mid-record, no lineage yet
```
``finish_live`` appends the rest of the live run's file and its lineage, as the
training job would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import FIXTURES

COPIES = {
    "experiments/2026-01-10/run_1": "healthy_mlp",
    "experiments/2026-01-10/run_2": "lr_too_large",
    "experiments/2026-02-03/job/rank_0": "ranks/rank_0",
    "experiments/2026-02-03/job/rank_1": "ranks/rank_1",
}
CORRUPT = "experiments/2026-02-03/corrupt"
EMPTY = "experiments/2026-02-03/empty"
LIVE, LIVE_SOURCE = "live", "oscillating"
RUNS = sorted([*COPIES, CORRUPT, LIVE])


def _summary_file(run: Path) -> Path:
    return next(p for p in run.iterdir() if p.name.endswith("_MS"))


def build_tree(root: Path) -> Path:
    """Write the tree under ``root`` and return ``root``."""
    for target, source in COPIES.items():
        shutil.copytree(FIXTURES / source, root / target)
    corrupt = root / CORRUPT
    corrupt.mkdir(parents=True)
    (corrupt / "events.out.events.summary.1795850000.0.vm_MS").write_bytes(bytes(range(256)) * 12)
    (root / EMPTY).mkdir(parents=True)
    live = root / LIVE
    live.mkdir()
    source = _summary_file(FIXTURES / LIVE_SOURCE)
    data = source.read_bytes()
    (live / source.name).write_bytes(data[: len(data) // 2 + 7])  # cut inside a record
    return root


def finish_live(root: Path) -> None:
    """The live run's job ends: the rest of its summary file, then its lineage file."""
    source = _summary_file(FIXTURES / LIVE_SOURCE)
    target = root / LIVE / source.name
    data = source.read_bytes()
    with open(target, "ab") as stream:
        stream.write(data[target.stat().st_size :])
    lineage = next(p for p in (FIXTURES / LIVE_SOURCE).iterdir() if p.name.endswith("_lineage"))
    shutil.copy(lineage, root / LIVE / lineage.name)
