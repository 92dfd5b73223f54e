"""``read_run``: one run directory (or file) into a :class:`Run`.

A run is a directory's summary files read in timestamp order and merged,
its lineage files, and its ``.pb`` graph files. Nothing is sampled or
dropped: repeated steps are kept and marked ``superseded``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from google.protobuf.message import DecodeError

from summary_doctor.errors import SummaryDoctorError
from summary_doctor.reader.buckets import BucketTable, decode_table
from summary_doctor.reader.derived import per_run
from summary_doctor.reader.events import EventColumns, parse_event
from summary_doctor.reader.files import FileKind, RunFile, classify, run_files
from summary_doctor.reader.frames import build_frame, empty_frame, mark_superseded
from summary_doctor.reader.graph import Graph, graph_from_proto
from summary_doctor.reader.lineage import Lineage, LineageBuilder
from summary_doctor.reader.proto import summary_doctor_pb2 as pb
from summary_doctor.reader.records import FramingReport, iter_records

log = logging.getLogger(__name__)

TAG_CACHE_BYTES = 64 * 2**20
"""Decoded tag tables kept per run (least recently used dropped first): memory stays bounded."""

ProgressCallback = Callable[[int], None]


class Buckets(NamedTuple):
    """One histogram's buckets: values in [left, left + width) counted in ``count``."""

    left: np.ndarray
    width: np.ndarray
    count: np.ndarray


@dataclass
class Run:
    """Everything read from one run, as long-format frames plus graph and lineage."""

    path: Path
    name: str
    files: pd.DataFrame = field(default_factory=lambda: empty_frame("files"))
    scalars: pd.DataFrame = field(default_factory=lambda: empty_frame("scalars"))
    histograms: pd.DataFrame = field(default_factory=lambda: empty_frame("histograms"))
    tensors: pd.DataFrame = field(default_factory=lambda: empty_frame("tensors"))
    images: pd.DataFrame = field(default_factory=lambda: empty_frame("images"))
    landscapes: pd.DataFrame = field(default_factory=lambda: empty_frame("landscapes"))
    graphs: list[Graph] = field(default_factory=list)
    lineage: Lineage = field(default_factory=Lineage)
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """Results computed from the frames once and shared (e.g. weight update ratios)."""

    @property
    def graph(self) -> Graph | None:
        """The training graph: the first graph of the newest summary file that has one."""
        if not self.graphs:
            return None
        newest = self.graphs[-1].file
        return next(g for g in self.graphs if g.file == newest)

    @property
    def problems(self) -> list[str]:
        """Every read problem, prefixed with its file name."""
        return [f"{row.file}: {p}" for row in self.files.itertuples() for p in row.problems]

    @property
    def steps(self) -> tuple[int, int] | None:
        """First and last step with data, or None for a run without step data."""
        steps = pd.concat([self.scalars["step"], self.histograms["step"], self.tensors["step"], self.images["step"]])
        return None if steps.empty else (int(steps.min()), int(steps.max()))

    @per_run
    def current(self, frame: str) -> pd.DataFrame:
        """Rows of ``frame`` (e.g. ``"scalars"``) that no later record supersedes.

        Filtered once per frame (every rule asks) and handed out as a copy.
        """
        data: pd.DataFrame = getattr(self, frame)
        return data[~data["superseded"]] if "superseded" in data else data

    def scalar_series(self, tag: str) -> pd.Series:
        """The current values of one scalar tag, indexed by step, in step order."""
        rows = self.current("scalars")
        rows = rows[rows["tag"] == tag].sort_values("step", kind="stable")
        return pd.Series(rows["value"].to_numpy(), index=rows["step"].to_numpy(), name=tag)

    def histogram_buckets(self, index: Any) -> pd.DataFrame:
        """Buckets (left, width, count) of histogram row ``index`` of ``self.histograms``, decoded now."""
        return pd.DataFrame(self.bucket_arrays(index)._asdict())

    def bucket_arrays(self, index: Any) -> Buckets:
        """The same buckets as three numpy arrays: no DataFrame, for loops over many histograms."""
        try:
            buckets = pb.Summary.Histogram.FromString(self.histograms.at[index, "encoded"]).buckets
        except DecodeError:
            log.warning("buckets of histogram row %s do not decode; treated as empty", index)
            buckets = []
        table = np.array([(b.left, b.width, b.count) for b in buckets], dtype=float).reshape(-1, 3)
        return Buckets(table[:, 0].copy(), table[:, 1].copy(), table[:, 2].astype(np.int64))

    def bucket_table(self, index: Any) -> BucketTable:
        """The buckets of histogram rows ``index`` (labels of ``self.histograms``), decoded now in one pass.

        The same numbers as :meth:`bucket_arrays` row by row, in contiguous
        arrays with per-row offsets (see :mod:`summary_doctor.reader.buckets`).
        """
        index = np.asarray(index)
        positions = self.histograms.index.get_indexer(index)
        if (positions < 0).any():
            raise KeyError(f"no histogram rows {list(index[positions < 0][:5])}")
        return decode_table(list(self.histograms["encoded"].to_numpy()[positions]), index)

    def tag_buckets(self, tag: str) -> BucketTable:
        """The buckets of every current histogram of ``tag`` in step order, decoded once and kept.

        Tables are kept per run up to ``TAG_CACHE_BYTES`` (least recently
        used dropped first), so rules and report share one decode per tag.
        """
        cache: dict[str, BucketTable] = self.derived.setdefault("tag_buckets", {})
        if tag in cache:
            cache[tag] = cache.pop(tag)
            return cache[tag]
        rows = self.current("histograms")
        rows = rows[rows["tag"] == tag].sort_values("step", kind="stable")
        table = self.bucket_table(rows.index.to_numpy())
        cache[tag] = table
        while len(cache) > 1 and sum(t.nbytes for t in cache.values()) > TAG_CACHE_BYTES:
            cache.pop(next(iter(cache)))
        return table


def _read_summary_file(
    run_file: RunFile, columns: EventColumns, *, verify: bool, progress: ProgressCallback | None
) -> dict[str, Any]:
    report = FramingReport()
    file_name = run_file.path.name
    start_steps = len(columns.steps)
    columns.version = None
    with open(run_file.path, "rb") as stream:
        for offset, payload in iter_records(stream, report, verify=verify, on_progress=progress):
            try:
                event = parse_event(payload)
            except DecodeError:
                report.skipped += 1
                report.problems.append(f"record at byte {offset} does not decode as an Event: skipped")
                continue
            columns.add(event, file_name, offset)
    report.problems.extend(columns.problems)
    columns.problems.clear()
    steps = columns.steps[start_steps:]
    return _file_row(run_file, report, steps, columns.version)


def _read_lineage_file(
    run_file: RunFile, builder: LineageBuilder, *, verify: bool, progress: ProgressCallback | None
) -> dict[str, Any]:
    report = FramingReport()
    builder.start_file()
    steps = []
    event = pb.LineageEvent()
    with open(run_file.path, "rb") as stream:
        for offset, payload in iter_records(stream, report, verify=verify, on_progress=progress):
            try:
                event.ParseFromString(payload)
            except DecodeError:
                report.skipped += 1
                report.problems.append(f"record at byte {offset} does not decode as a LineageEvent: skipped")
                continue
            steps.append(event.step)
            builder.add(event)
    builder.end_file()
    return _file_row(run_file, report, steps, None)


def _read_graph_file(run_file: RunFile, graphs: list[Graph]) -> dict[str, Any]:
    report = FramingReport(bytes=run_file.path.stat().st_size)
    try:
        model = pb.ModelProto.FromString(run_file.path.read_bytes())
        graphs.append(graph_from_proto(model.graph, run_file.path.name))
        report.records = 1
    except DecodeError:
        report.problems.append("does not decode as a graph (ModelProto): skipped")
    return _file_row(run_file, report, [], None)


def _file_row(run_file: RunFile, report: FramingReport, steps: list[int], version: str | None) -> dict[str, Any]:
    return {
        "file": run_file.path.name,
        "kind": run_file.kind.value,
        "bytes": report.bytes,
        "records": report.records,
        "skipped": report.skipped,
        "first_step": min(steps) if steps else None,
        "last_step": max(steps) if steps else None,
        "version": version,
        "problems": report.problems,
    }


def _files_to_read(path: Path) -> list[RunFile]:
    if not path.exists():
        raise SummaryDoctorError(f"{path}: no such file or directory")
    if path.is_file():
        kind = classify(path.name)
        if kind is None:
            raise SummaryDoctorError(f"{path}: not a MindSpore summary file (no 'summary.<digits>' in its name)")
        return [RunFile(path, kind, 0)]
    try:
        files = run_files(path)
    except PermissionError as error:
        raise SummaryDoctorError(f"{path}: cannot be read ({error.strerror})") from None
    if not any(f.kind in (FileKind.SUMMARY, FileKind.LINEAGE) for f in files):
        raise SummaryDoctorError(
            f"{path}: no MindSpore summary file here (looked for names containing 'summary.<digits>'); "
            "use find_runs() or pass the directory given to SummaryCollector"
        )
    return files


def read_run(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    verify: bool = True,
    progress: ProgressCallback | None = None,
) -> Run:
    """Read one run directory (or a single summary file) into a :class:`Run`.

    ``verify=False`` skips the CRC checks (about 10% faster; damage then shows
    only as decode errors). ``progress`` is called with the number of bytes
    consumed after each record. Raises :class:`SummaryDoctorError` for a path
    that does not exist or holds no summary file.
    """
    path = Path(path)
    files = _files_to_read(path)
    run_name = name if name is not None else str(path)
    columns = EventColumns(run_name)
    lineage = LineageBuilder()
    graphs: list[Graph] = []
    file_rows = []
    for run_file in files:
        try:
            if run_file.kind is FileKind.SUMMARY:
                row = _read_summary_file(run_file, columns, verify=verify, progress=progress)
            elif run_file.kind is FileKind.LINEAGE:
                row = _read_lineage_file(run_file, lineage, verify=verify, progress=progress)
            elif run_file.kind is FileKind.GRAPH:
                row = _read_graph_file(run_file, graphs)
            else:
                row = _file_row(run_file, FramingReport(bytes=run_file.path.stat().st_size), [], None)
                row["problems"] = ["explain file: not analysed (explanation data is out of scope)"]
        except OSError as error:
            row = _file_row(run_file, FramingReport(), [], None)
            row["problems"] = [f"cannot be read: {error.strerror or error}"]
        file_rows.append(row)
    return _assemble(path, run_name, columns, lineage, graphs, file_rows)


def _assemble(
    path: Path,
    run_name: str,
    columns: EventColumns,
    lineage: LineageBuilder,
    graphs: list[Graph],
    file_rows: list[dict[str, Any]],
) -> Run:
    file_order = {row["file"]: i for i, row in enumerate(file_rows)}
    frames = {}
    for frame_name, frame_columns in columns.columns.items():
        frame = build_frame(frame_name, frame_columns)
        if "superseded" in frame:
            mark_superseded(frame, file_order)
        frames[frame_name] = frame
    files = build_frame(
        "files", {k: [row[k] for row in file_rows] for k in file_rows[0]} | {"run": [run_name] * len(file_rows)}
    )
    return Run(
        path=path,
        name=run_name,
        files=files,
        graphs=columns.graphs + graphs,
        lineage=lineage.build(),
        **frames,
    )
