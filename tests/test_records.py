"""Framing and damage handling on small hand-made files: nothing before the damage is lost."""

from __future__ import annotations

import io
import struct

import pytest

from summary_doctor.reader.records import FramingReport, frame_record, iter_records, masked_crc32c


def _records(data: bytes, *, verify: bool = True) -> tuple[list[bytes], FramingReport]:
    report = FramingReport()
    payloads = [p for _, p in iter_records(io.BytesIO(data), report, size=len(data), verify=verify)]
    return payloads, report


def test_masked_crc_matches_the_castagnoli_check_value():
    # CRC-32C("123456789") = 0xE3069283 (the standard check value), then masked.
    crc = 0xE3069283
    assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_intact_records_are_all_read_in_order():
    payloads = [b"a", b"bb" * 100, b""]
    read, report = _records(b"".join(frame_record(p) for p in payloads))
    assert read == payloads
    assert report.records == 3 and report.problems == []


def test_truncated_tail_keeps_every_complete_record():
    data = b"".join(frame_record(bytes([i]) * 50) for i in range(4))
    read, report = _records(data[:-10])
    assert read == [bytes([i]) * 50 for i in range(3)]
    assert len(report.problems) == 1 and "truncated" in report.problems[0]


def test_truncated_header_is_reported():
    data = frame_record(b"x" * 20) + frame_record(b"y")[:5]
    read, report = _records(data)
    assert read == [b"x" * 20]
    assert "incomplete record header" in report.problems[0]


def test_bad_payload_crc_skips_one_record_and_goes_on():
    records = [frame_record(bytes([i]) * 30) for i in range(4)]
    damaged = bytearray(records[1])
    damaged[15] ^= 0xFF
    read, report = _records(b"".join([records[0], bytes(damaged), records[2], records[3]]))
    assert read == [bytes([0]) * 30, bytes([2]) * 30, bytes([3]) * 30]
    assert report.skipped == 1
    assert "bad data CRC" in report.problems[0]


def test_bad_payload_crc_is_ignored_without_verification():
    damaged = bytearray(frame_record(b"abc"))
    damaged[12] ^= 0x01
    read, report = _records(bytes(damaged), verify=False)
    assert read == [b"`bc"] and report.problems == []


def test_bad_length_crc_ends_the_file_but_keeps_what_came_before():
    records = [frame_record(bytes([i]) * 10) for i in range(3)]
    damaged = bytearray(records[1])
    damaged[8] ^= 0xFF
    read, report = _records(b"".join([records[0], bytes(damaged), records[2]]))
    assert read == [bytes([0]) * 10]
    assert "bad length CRC" in report.problems[0]


def test_length_beyond_the_file_is_never_allocated():
    header = struct.pack("<Q", 2**60)
    huge = header + struct.pack("<I", masked_crc32c(header)) + b"tail"
    read, report = _records(frame_record(b"ok") + huge)
    assert read == [b"ok"]
    assert "claims 1152921504606846976 bytes" in report.problems[0]


def test_garbage_is_reported_not_raised():
    read, report = _records(b"this is not a summary file at all, just text\n" * 3)
    assert read == []
    assert report.problems and "bad length CRC at byte 0" in report.problems[0]


@pytest.mark.parametrize("data", [b"", b"\x00"])
def test_empty_or_tiny_files(data):
    read, report = _records(data)
    assert read == []
    assert report.problems == ([] if not data else report.problems)
    assert (not data) or "truncated" in report.problems[0]
