"""Record framing of MindSpore summary files, and nothing else.

A summary file is a bare sequence of records (no header, no footer)::

    uint64 LE  length
    uint32 LE  masked CRC-32C of the 8 length bytes
    bytes      payload (a serialized protobuf message)
    uint32 LE  masked CRC-32C of the payload

This is the TFRecord framing MindSpore's ``EventWriter::WriteRecord`` uses.
We verify both CRCs with ``google-crc32c`` (a C implementation, ~GB/s);
``zlib.crc32`` would be the wrong polynomial. MindInsight checks no CRC at all.

Damage policy, chosen so that nothing before the damage is lost:

* a truncated tail (a job still writing, or killed) stops reading the file;
* a bad length CRC stops reading the file (the next record boundary is unknown);
* a length that runs past the end of the file is never allocated;
* a bad payload CRC skips that one record and reading goes on.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import google_crc32c

HEADER_SIZE = 12
FOOTER_SIZE = 4
_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<QI")
_CRC = struct.Struct("<I")


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C that TFRecord-style writers store (see crc32c.h)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(payload: bytes) -> bytes:
    """Frame one payload as MindSpore does; used by tests and benchmarks."""
    header = struct.pack("<Q", len(payload))
    return b"".join(
        (
            header,
            _CRC.pack(masked_crc32c(header)),
            payload,
            _CRC.pack(masked_crc32c(payload)),
        )
    )


@dataclass
class FramingReport:
    """What happened while reading one file: counts and problems, in order."""

    bytes: int = 0
    records: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def iter_records(
    stream: BinaryIO,
    report: FramingReport,
    *,
    size: int | None = None,
    verify: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, payload)`` for every intact record of ``stream``.

    Problems are appended to ``report`` instead of raised: a damaged file is
    evidence, and the rows before the damage must survive.
    """
    if size is None:
        size = os.fstat(stream.fileno()).st_size
    report.bytes = size
    offset = 0
    while offset < size:
        header = stream.read(HEADER_SIZE)
        if len(header) < HEADER_SIZE:
            report.problems.append(
                f"truncated at byte {offset}: incomplete record header "
                f"({len(header)} of {HEADER_SIZE} bytes); the file may still be being written"
            )
            return
        length, length_crc = _LENGTH.unpack(header)
        if verify and masked_crc32c(header[:8]) != length_crc:
            report.problems.append(
                f"bad length CRC at byte {offset}: the remaining {size - offset} bytes "
                "cannot be framed and were not read"
            )
            return
        end = offset + HEADER_SIZE + length + FOOTER_SIZE
        if end > size:
            report.problems.append(
                f"truncated at byte {offset}: record claims {length} bytes but only "
                f"{size - offset - HEADER_SIZE} remain; the file may still be being written"
            )
            return
        payload = stream.read(length)
        (payload_crc,) = _CRC.unpack(stream.read(FOOTER_SIZE))
        if verify and masked_crc32c(payload) != payload_crc:
            report.skipped += 1
            report.problems.append(f"bad data CRC in record at byte {offset}: record skipped")
        else:
            report.records += 1
            yield offset, payload
        offset = end
        if on_progress is not None:
            on_progress(HEADER_SIZE + length + FOOTER_SIZE)
