"""Shared helpers of the reader layer; the public entry points live in ``summary_doctor``."""
