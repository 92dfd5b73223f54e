"""What every run of an audit is diagnosed with, and the key that says when a stored result still holds.

A :class:`Job` travels to worker processes and cluster workers, so it holds
plain, picklable values only; the rule context and settings are built from it
where the rules run. Its :meth:`Job.key` covers everything that changes a
result: the code (its version and a hash of its files), ``--select``,
``--ignore``, ``--set``, the tag overrides and CRC checking.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from summary_doctor.rules.base import Context

#: Bumped when the stored record's layout changes.
RECORD_FORMAT = 1
_CODE_SUFFIXES = (".py", ".j2", ".css", ".js", ".proto")


@cache
def code_fingerprint() -> str:
    """A hash of the package's version and the content of its source files.

    A few milliseconds; it makes an edited rule (or a development checkout
    between two versions) invalidate every stored result.
    """
    from summary_doctor import __version__

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(f"{RECORD_FORMAT}:{__version__}".encode())
    for path in sorted(p for p in package.rglob("*") if p.suffix in _CODE_SUFFIXES):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}"


@dataclass(frozen=True)
class Job:
    """The options of an audit that reach every run.

    ``settings`` is the JSON of validated threshold overrides (see
    :func:`summary_doctor.engine.parse_settings`); ``tags`` the tag overrides
    as (field, tag) pairs; ``reports`` asks each run's HTML report too.
    """

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    settings: str = "{}"
    tags: tuple[tuple[str, str], ...] = ()
    verify: bool = True
    reports: bool = False

    @classmethod
    def of(
        cls,
        *,
        select: Iterable[str] | None = None,
        ignore: Iterable[str] | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        tags: Mapping[str, str | None] | Any = None,
        verify: bool = True,
        reports: bool = False,
    ) -> Job:
        """A job from the options as the Python API and the command line take them.

        ``tags`` maps a :class:`~summary_doctor.rules.base.TagOverrides` field to a tag, or is one.
        """
        if dataclasses.is_dataclass(tags):
            tags = dataclasses.asdict(tags)
        return cls(
            select=tuple(select or ()),
            ignore=tuple(ignore or ()),
            settings=json.dumps(settings or {}, sort_keys=True),
            tags=tuple(sorted((k, v) for k, v in (tags or {}).items() if v is not None)),
            verify=verify,
            reports=reports,
        )

    def key(self) -> str:
        """What a stored result must match to be reused (``reports`` does not change a result)."""
        parts = [code_fingerprint(), sorted(self.select), sorted(self.ignore), self.settings, self.tags, self.verify]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]

    def settings_dict(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.settings)

    def context(self) -> Context:
        """The rules' context (tag overrides); imports the rules' base module."""
        from summary_doctor.rules.base import Context, TagOverrides

        return Context(tags=TagOverrides(**dict(self.tags)))
