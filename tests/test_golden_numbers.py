"""Every number the histogram analysis gives, on every fixture, against recorded values.

The histogram analysis is vectorised over whole tags for speed; these files,
recorded from the per-histogram implementation, keep it honest:

* ``golden/findings.json``: every finding of every fixture, evidence in full
  precision (JSON floats round-trip exactly);
* ``golden/histogram_numbers.json``: per fixture, ``update_ratios(run)`` in
  full, and digests (SHA-256 of the float64 bytes) of the bucket statistics
  of every histogram row, of ``stats_of_kind`` for every tag kind, of the
  saturation shares of every activation row, and of the report's plot data
  (heatmap grids, shares at or below zero, RMS per step).

Everything must be bit-identical. Regenerate with ``pytest --update-golden``
only after checking that a difference is intended.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, GOLDEN, read_fixture

from summary_doctor.engine import diagnose
from summary_doctor.reader.files import find_runs
from summary_doctor.report.plots import data
from summary_doctor.rules._histograms import TagKind, bucket_stats, stats_of_kind, with_bucket_stats
from summary_doctor.rules.activations import PLATEAU, saturated_share
from summary_doctor.rules.weights import update_ratios

STATS = ["std", "abs_mean", "l2", "zero_fraction", "nonpositive"]


def _fixture_names() -> list[str]:
    return [str(p.relative_to(FIXTURES)) for p in find_runs(FIXTURES)] if FIXTURES.exists() else []


def _digest(values: Any) -> str:
    array = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    return f"{array.shape}:{hashlib.sha256(array.tobytes()).hexdigest()[:32]}"


def _text_digest(values: Any) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:32]


def _findings(name: str) -> list[dict[str, Any]]:
    run = read_fixture(name)
    run.derived.clear()
    return [
        {k: v for k, v in f.to_json().items() if k not in ("hint",)} | {"run": f.run} for f in diagnose(run).findings
    ]


def _frame(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {c: [v.item() if hasattr(v, "item") else v for v in frame[c]] for c in frame.columns}


def _stats_digests(run: Any) -> dict[str, Any]:
    rows = run.histograms
    out = {"with_bucket_stats": {c: _digest(with_bucket_stats(run, rows)[c]) for c in STATS}}
    raw = pd.DataFrame([bucket_stats(run.bucket_arrays(i), m) for i, m in zip(rows.index, rows["mean"], strict=True)])
    out["bucket_stats"] = {c: _digest(raw[c]) if not raw.empty else "" for c in STATS}
    for kind in TagKind:
        try:
            frame = stats_of_kind(run, kind)
        except Exception as error:  # recorded as such: a failure is a result too
            out[f"stats_of_kind/{kind.value}"] = type(error).__name__
            continue
        if not frame.empty:
            out[f"stats_of_kind/{kind.value}"] = {
                "rows": _text_digest(list(zip(frame["tag"], frame["step"], strict=True))),
                **{c: _digest(frame[c]) for c in STATS},
            }
    return out


def _saturation_digests(run: Any) -> dict[str, str]:
    rows = stats_of_kind(run, TagKind.ACTIVATION)
    rows = rows[~rows["exact"].astype(bool)]
    return {f: _digest([saturated_share(run, r, f) for _, r in rows.iterrows()]) for f in PLATEAU}


def _plot_digests(run: Any) -> dict[str, dict[str, str]]:
    out = {}
    for tag in dict.fromkeys(run.current("histograms")["tag"]):
        entry = {}
        for bins in (data.GRID_BINS, 48):
            grid = data.histogram_grid(run, tag, bins=bins)
            entry[f"grid{bins}"] = _digest(np.concatenate([grid.steps, grid.edges, grid.density.ravel()]))
        entry["share_at_most_zero"] = _digest(np.concatenate(data.share_at_most_zero(run, tag)))
        entry["rms"] = _digest(np.concatenate(data.rms_series(run, tag)))
        out[tag] = entry
    return out


def _numbers(name: str) -> dict[str, Any]:
    run = read_fixture(name)
    run.derived.clear()
    return {
        "update_ratios": _frame(update_ratios(run)),
        "stats": _stats_digests(run),
        "saturation": _saturation_digests(run),
        "plots": _plot_digests(run),
    }


def _same(a: Any, b: Any) -> bool:
    """Exact equality, NaN equal to NaN, through nested lists and dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _dump(values: dict[str, Any]) -> str:
    """One line per fixture and key: readable diffs without one line per number."""
    lines = []
    for name in sorted(values):
        value = values[name]
        if isinstance(value, dict):
            items = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(value.items())]
            lines.append(f" {json.dumps(name)}: {{\n" + ",\n".join(items) + "\n }")
        else:
            lines.append(f" {json.dumps(name)}: {json.dumps(value, sort_keys=True)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _check(request, file_name: str, compute) -> None:
    path = GOLDEN / file_name
    names = _fixture_names()
    if not names:
        pytest.skip("no fixtures")
    current = {name: compute(name) for name in names}
    if request.config.getoption("--update-golden"):
        path.write_text(_dump(current), encoding="utf-8")
    recorded = json.loads(path.read_text(encoding="utf-8"))
    current = json.loads(json.dumps(current))  # the same round trip as the recorded values
    assert recorded.keys() == current.keys()
    for name in names:
        for key in recorded[name] if isinstance(recorded[name], dict) else [None]:
            expected = recorded[name] if key is None else recorded[name][key]
            got = current[name] if key is None else current[name][key]
            assert _same(expected, got), f"{file_name}: {name} {key or ''} differs from the recorded values"


def test_findings_match_the_recorded_ones(request):
    _check(request, "findings.json", _findings)


def test_histogram_numbers_match_the_recorded_ones(request):
    _check(request, "histogram_numbers.json", _numbers)
