"""What a rule is, and the registry the engine reads.

A rule is a small, pure unit: given a run (and the tag context), it yields
findings. Its thresholds are dataclass fields with defaults whose source is
cited in the class docstring. Its docstring has fixed headings (What it
detects / Why it matters / Typical causes / How to fix), printed by
``summary-doctor --explain ID``.

A rule may cover several symptom ids (``ids``); the engine then fills the
checklist of each id from that rule's result. ``requirements`` says what must
have been recorded for the rule to run; when something is missing the
checklist says "not checkable" with the reason and what to record.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from summary_doctor.findings import Finding, Severity
from summary_doctor.reader.run import Run


@dataclass(frozen=True)
class Missing:
    """Why a rule cannot run on a run, and what to record so that it can."""

    reason: str
    enable: str


@dataclass(frozen=True)
class TagOverrides:
    """Tags the user pointed at (``--loss-tag`` ...); None means discover by pattern."""

    loss: str | None = None
    eval_loss: str | None = None
    accuracy: str | None = None
    eval_accuracy: str | None = None
    learning_rate: str | None = None
    input: str | None = None
    label: str | None = None
    eval_input: str | None = None
    eval_label: str | None = None


@dataclass(frozen=True)
class Context:
    """What a rule may know besides the run: user overrides."""

    tags: TagOverrides = field(default_factory=TagOverrides)


class Rule:
    """Base class of every rule. Subclasses are dataclasses whose fields are thresholds."""

    ids: ClassVar[tuple[str, ...]] = ()

    def requirements(self, run: Run, context: Context) -> Missing | None:
        """None when the run holds what the rule needs; else what is missing."""
        return None

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        """Yield findings; called only when ``requirements`` returned None."""
        raise NotImplementedError


REGISTRY: list[type[Rule]] = []


def register(rule: type[Rule]) -> type[Rule]:
    """Class decorator: add a rule to the registry (explicit and greppable)."""
    REGISTRY.append(rule)
    return rule


def json_safe(value: Any) -> Any:
    """Evidence values as plain JSON: numpy scalars to Python, floats to 6 significant digits, NaN/Inf as text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("Inf" if value > 0 else "-Inf")
        return float(f"{value:.6g}")
    return value


def make_finding(
    rule: Rule,
    run: Run,
    severity: Severity,
    title: str,
    message: str,
    *,
    step: int | None = None,
    tags: tuple[str, ...] = (),
    evidence: dict[str, Any] | None = None,
    hint: str | None = None,
) -> Finding:
    """A finding of ``rule``'s first id, with the rule's ``hint`` unless another is given."""
    return Finding(
        id=rule.ids[0],
        severity=severity,
        title=title,
        message=message,
        hint=hint if hint is not None else getattr(rule, "hint", ""),
        run=run.name,
        tags=tuple(t for t in tags if t),
        step=step,
        evidence=json_safe(evidence or {}),
    )
