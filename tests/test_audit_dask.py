"""Runs sent to a Dask cluster (a LocalCluster of two worker processes) come back as the same table."""

from __future__ import annotations

import json
import logging

import pytest
from audit_tree import RUNS, build_tree
from test_audit import same
from test_cli import run_cli

from summary_doctor.audit import audit_runs
from summary_doctor.report.json import plain
from summary_doctor.table import rows

distributed = pytest.importorskip("distributed", reason="dask.distributed is an optional extra")


def test_a_dask_cluster_gives_the_same_table_and_fills_the_same_cache(tmp_path, capsys):
    lab, cache = build_tree(tmp_path / "lab"), tmp_path / "cache.sqlite"
    local = audit_runs(lab, jobs=1, cache=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        address = cluster.scheduler_address
        remote = audit_runs(lab, cache=cache, scheduler=address)
        status, out, _ = run_cli(capsys, "audit", str(lab), "--no-cache", "--scheduler", address, "--format", "json")
    assert remote.stats.diagnosed == len(RUNS) and same(rows(remote), rows(local))
    assert json.loads(out)["table"] == plain(rows(local)) and status == 1
    assert audit_runs(lab, jobs=1, cache=cache).stats.cached == len(RUNS)
