"""Errors meant for users: the CLI prints their message, never a traceback."""

from __future__ import annotations


class SummaryDoctorError(Exception):
    """A problem with the user's input (a wrong path, a directory without logs)."""
