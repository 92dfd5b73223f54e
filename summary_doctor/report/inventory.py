"""What was read from a run, as plain text: files, steps, tags, graph, lineage, problems."""

from __future__ import annotations

import pandas as pd

from summary_doctor.reader.run import Run

_KINDS = ("scalars", "histograms", "tensors", "images", "landscapes")
_MAX_TAGS = 8


def _tags_line(run: Run, kind: str) -> str | None:
    frame = getattr(run, kind)
    if frame.empty:
        return None
    tags = list(dict.fromkeys(frame["tag"]))
    shown = ", ".join(tags[:_MAX_TAGS]) + (f", ... ({len(tags) - _MAX_TAGS} more)" if len(tags) > _MAX_TAGS else "")
    return f"  {kind}: {len(tags)} tag(s), {len(frame)} value(s): {shown}"


def _short(value: object) -> str:
    """Lineage floats are float32: print 0.002, not 0.0020000000949949026."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def inventory_lines(run: Run) -> list[str]:
    """Lines describing what ``run`` holds, for the terminal."""
    lines = [f"run {run.name}"]
    for row in run.files.itertuples():
        steps = "" if pd.isna(row.first_step) else f", steps {row.first_step}..{row.last_step}"
        lines.append(f"  file {row.file} ({row.kind}, {row.bytes:,} bytes, {row.records} records{steps})")
    lines.extend(line for kind in _KINDS if (line := _tags_line(run, kind)))
    graph = run.graph
    if graph is not None:
        lines.append(
            f"  graph: {len(graph.nodes)} nodes, {len(graph.parameters)} parameters, {len(graph.constants)} constants"
        )
    else:
        lines.append("  graph: none recorded")
    hyper = run.lineage.hyperparameters
    if hyper:
        lines.append("  lineage: " + ", ".join(f"{k}={_short(v)}" for k, v in hyper.items()))
    if run.lineage.metrics:
        lines.append("  metrics: " + ", ".join(f"{k}={_short(v)}" for k, v in run.lineage.metrics.items()))
    if not run.lineage.dataset_ops.empty:
        ops = [op for op in run.lineage.dataset_ops["op_type"] if op]
        lines.append("  dataset pipeline: " + " <- ".join(ops))
    return lines
