"""Bad input on small hand-made files: clear problems, nothing lost, NaN/Inf kept."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from builders import histogram_event, scalar_event, summary_name, version_event, write_events

from summary_doctor import SummaryDoctorError, read_run
from summary_doctor.cli import main
from summary_doctor.reader.frames import SCHEMAS
from summary_doctor.reader.proto import summary_doctor_pb2 as pb
from summary_doctor.reader.records import frame_record


def _run_dir(tmp_path, events, name=None):
    write_events(tmp_path / (name or summary_name()), [version_event(), *events])
    return tmp_path


def test_truncated_file_keeps_rows_before_the_damage(tmp_path):
    path = tmp_path / summary_name()
    write_events(path, [version_event(), *(scalar_event(s, "loss", 1.0 / s) for s in range(1, 11))])
    path.write_bytes(path.read_bytes()[:-7])
    run = read_run(tmp_path)
    assert run.scalar_series("loss").index.tolist() == list(range(1, 10))
    assert len(run.problems) == 1 and "truncated" in run.problems[0]
    assert run.files.loc[0, "records"] == 10


def test_corrupt_payload_skips_only_that_record(tmp_path):
    path = tmp_path / summary_name()
    records = [frame_record(e.SerializeToString()) for e in (scalar_event(s, "loss", float(s)) for s in (1, 2, 3))]
    middle = bytearray(records[1])
    middle[-6] ^= 0x55
    path.write_bytes(records[0] + bytes(middle) + records[2])
    run = read_run(tmp_path)
    assert run.scalar_series("loss").to_dict() == {1: 1.0, 3: 3.0}
    assert run.files.loc[0, "skipped"] == 1
    assert "bad data CRC" in run.problems[0]


def test_payload_with_valid_crc_that_does_not_decode_is_skipped(tmp_path):
    path = tmp_path / summary_name()
    good = frame_record(scalar_event(1, "loss", 0.5).SerializeToString())
    path.write_bytes(
        good + frame_record(b"\xff\xff\xff\xff") + frame_record(scalar_event(2, "loss", 0.4).SerializeToString())
    )
    run = read_run(tmp_path)
    assert run.scalar_series("loss").index.tolist() == [1, 2]
    assert "does not decode" in run.problems[0]


def test_unknown_future_fields_are_skipped_and_known_ones_kept(tmp_path):
    event = scalar_event(7, "loss", 0.25)
    # field 99, varint 1, and field 100, length-delimited "new": what a newer writer might add.
    payload = event.SerializeToString() + bytes([0x98, 0x06, 0x01, 0xA2, 0x06, 0x03]) + b"new"
    (tmp_path / summary_name()).write_bytes(frame_record(payload))
    run = read_run(tmp_path)
    assert run.scalar_series("loss").to_dict() == {7: 0.25}
    assert run.problems == []


def test_nan_and_inf_are_kept_as_values(tmp_path):
    events = [
        scalar_event(1, "loss", 2.0),
        scalar_event(2, "loss", math.inf),
        scalar_event(3, "loss", math.nan),
        histogram_event(3, "fc.weight/auto", [0.0, 1.0, 2.0, math.nan, math.inf, -math.inf]),
    ]
    run = read_run(_run_dir(tmp_path, events))
    loss = run.scalar_series("loss")
    assert loss[1] == 2.0 and math.isinf(loss[2]) and math.isnan(loss[3])
    row = run.histograms.iloc[0]
    assert (row["nan_count"], row["pos_inf_count"], row["neg_inf_count"], row["count"]) == (1, 1, 1, 6)
    assert (row["min"], row["max"], row["mean"]) == (0.0, 2.0, 1.0)


def test_histogram_of_only_nan_has_nan_statistics(tmp_path):
    run = read_run(_run_dir(tmp_path, [histogram_event(1, "w/auto", [math.nan, math.nan])]))
    row = run.histograms.iloc[0]
    assert row["nan_count"] == 2 and math.isnan(row["min"]) and math.isnan(row["mean"])


def test_empty_summary_file_gives_empty_frames_with_schema(tmp_path):
    (tmp_path / summary_name()).write_bytes(b"")
    run = read_run(tmp_path)
    for name in ("scalars", "histograms", "tensors", "images", "landscapes"):
        frame = getattr(run, name)
        assert frame.empty
        assert list(frame.columns) == list(SCHEMAS[name])
        for column, dtype in SCHEMAS[name].items():
            assert str(frame[column].dtype) == dtype, (name, column)
    assert run.steps is None and run.graph is None and run.lineage.empty


def test_garbage_file_is_reported(tmp_path):
    (tmp_path / summary_name()).write_bytes(os.urandom(64))
    run = read_run(tmp_path)
    assert run.scalars.empty
    assert "bad length CRC" in run.problems[0]


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(SummaryDoctorError, match="no such file or directory"):
        read_run(tmp_path / "nope")


def test_directory_without_summary_files_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SummaryDoctorError, match="no MindSpore summary file"):
        read_run(tmp_path)


@pytest.mark.parametrize("make", ["missing", "empty-dir", "plain-file"])
def test_cli_user_mistakes_exit_2_with_one_line(tmp_path, capsys, make):
    target = tmp_path / "target"
    if make == "empty-dir":
        target.mkdir()
    elif make == "plain-file":
        target.write_text("x")
    assert main([str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("summary-doctor: error:") and err.count("\n") == 1
    assert "Traceback" not in err


def test_odd_tag_names_survive_reading(tmp_path):
    tag = '<script>alert("x")</script>/ünï cødé|`'
    run = read_run(_run_dir(tmp_path, [scalar_event(1, tag, 1.0)]))
    assert run.scalars["tag"].tolist() == [tag]


def test_large_tensor_record_is_read_whole(tmp_path):
    event = pb.Event(wall_time=1.0, step=1)
    tensor = event.summary.value.add(tag="big").tensor
    values = np.arange(2_000_000, dtype=np.float32)
    tensor.dims.extend([1000, 2000])
    tensor.data_type = pb.DT_FLOAT32
    tensor.float_data.extend(values)
    run = read_run(_run_dir(tmp_path, [event]))
    row = run.tensors.iloc[0]
    assert row["shape"] == (1000, 2000) and row["value"].shape == (1000, 2000)
    assert row["max"] == 1_999_999.0 and row["zero_fraction"] == pytest.approx(1 / 2_000_000)


def test_histogram_that_does_not_decode_is_skipped_and_reported(tmp_path):
    from summary_doctor.reader.events import _RawEvent

    event = _RawEvent(wall_time=1.0, step=3)
    event.summary.value.add(tag="broken/auto", histogram=b"\xff\xff\xff")
    event.summary.value.add(tag="loss", scalar_value=0.5)
    (tmp_path / summary_name()).write_bytes(frame_record(event.SerializeToString()))
    run = read_run(tmp_path)
    assert run.histograms.empty
    assert run.scalar_series("loss").to_dict() == {3: 0.5}
    assert "histogram 'broken/auto' at step 3 does not decode" in run.problems[0]
