"""The reader runs on the fast C backends, and importing it never pulls in MindSpore.

Importing ``mindspore`` before ``google.protobuf`` switches a whole process to
the pure-Python protobuf backend (~100x slower); a pure-Python CRC-32C would
be as slow. Each check runs in a fresh interpreter so that nothing imported
by other tests can hide or cause the problem.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from functools import cache

_PROBE = textwrap.dedent(
    """
    import json, sys
    import summary_doctor
    from google.protobuf.internal import api_implementation
    import google_crc32c
    from summary_doctor.reader import events
    from summary_doctor.reader.proto import summary_doctor_pb2 as pb
    from summary_doctor.reader.run import read_run  # the whole reading path
    import summary_doctor.cli, summary_doctor.audit, summary_doctor.engine, summary_doctor.report.text
    # the MindSpore integration package, and its modules that run in the diagnosing child
    import summary_doctor.mindspore, summary_doctor.mindspore.child, summary_doctor.mindspore.diagnosis
    import summary_doctor.mindspore.tags

    event = events.parse_event(pb.Event(wall_time=1.0, version="MindSpore.Event:1").SerializeToString())
    print(json.dumps({
        "backend": api_implementation.Type(),
        "event_bases": [f"{c.__module__}.{c.__qualname__}" for c in pb.Event.__mro__],
        "parsed_bases": [f"{c.__module__}.{c.__qualname__}" for c in type(event).__mro__],
        "crc32c": google_crc32c.implementation,
        "mindspore_loaded": sorted(m for m in sys.modules if m == "mindspore" or m.startswith("mindspore.")),
    }))
    """
)


@cache
def _probe() -> dict:
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_protobuf_uses_the_upb_backend() -> None:
    assert _probe()["backend"] == "upb"


def test_reader_messages_are_upb_messages() -> None:
    probe = _probe()
    assert "google._upb._message.Message" in probe["event_bases"]
    assert "google._upb._message.Message" in probe["parsed_bases"]


def test_crc32c_uses_the_c_implementation() -> None:
    assert _probe()["crc32c"] == "c"


def test_importing_summary_doctor_does_not_import_mindspore() -> None:
    """Neither the reader, rules, reports, CLI, nor ``summary_doctor.mindspore`` until a recorder is used."""
    assert _probe()["mindspore_loaded"] == []
