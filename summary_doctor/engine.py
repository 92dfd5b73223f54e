"""Run every rule on a run, never let one crash hide the others, and fill the checklist.

The checklist must let a user tell "checked and fine" from "could not check":
every symptom id gets ``problem`` (a warning or error with that id), ``ok``
(a rule ran and found nothing worse than info) or ``not-checkable`` with the
reason and what to record so that it becomes checkable.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import summary_doctor.rules  # noqa: F401  (registers every rule)
from summary_doctor.causes import link_causes
from summary_doctor.errors import SummaryDoctorError
from summary_doctor.findings import ChecklistEntry, Diagnosis, Finding, Severity, Status
from summary_doctor.reader.run import Run
from summary_doctor.rules.base import REGISTRY, Context, Missing, Rule
from summary_doctor.symptoms import BY_ID, SYMPTOM_IDS

log = logging.getLogger(__name__)

Settings = Mapping[str, Mapping[str, Any]]

#: Ids whose evidence never reaches a summary directory.
UNOBSERVABLE: dict[str, Missing] = {
    "api.construct-constraint": Missing(
        "not observable in summary logs",
        "nothing to record: check the network's construct() against MindSpore's static-graph syntax "
        "(errors show when it is compiled in GRAPH_MODE)",
    ),
}
NOT_ANALYSED = Missing(
    "not analysed by this version of summary-doctor",
    "nothing to record: this version has no check for this item",
)
DESELECTED = Missing("not checked: excluded by --select/--ignore", "run without that --select/--ignore")
INTERNAL_KEY = "internal_error"


class UsageError(SummaryDoctorError):
    """A wrong option value (unknown id, group, threshold or value)."""


@dataclass(frozen=True)
class _Outcome:
    """What happened when one rule met one run."""

    rule: type[Rule]
    missing: Missing | None = None
    crashed: str | None = None


def groups() -> list[str]:
    """Symptom groups usable in ``--select``/``--ignore``: the part of an id before the dot."""
    return list(dict.fromkeys(symptom_id.split(".", 1)[0] for symptom_id in SYMPTOM_IDS))


def _matches(symptom_id: str, pattern: str) -> bool:
    return symptom_id == pattern or symptom_id.startswith(pattern + ".")


def validate_patterns(patterns: Iterable[str], option: str) -> list[str]:
    """Check that each ``--select``/``--ignore`` value names an id or a group."""
    patterns = list(patterns)
    for pattern in patterns:
        if not any(_matches(symptom_id, pattern) for symptom_id in SYMPTOM_IDS):
            raise UsageError(f"{option} {pattern!r}: not a symptom id or group (groups: {', '.join(groups())})")
    return patterns


def selected_ids(select: Iterable[str] | None = None, ignore: Iterable[str] | None = None) -> set[str]:
    """The ids kept by ``select`` (all when None) minus those matched by ``ignore``."""
    chosen = validate_patterns(select, "--select") if select else None
    dropped = validate_patterns(ignore, "--ignore") if ignore else []
    return {
        symptom_id
        for symptom_id in SYMPTOM_IDS
        if (chosen is None or any(_matches(symptom_id, p) for p in chosen))
        and not any(_matches(symptom_id, p) for p in dropped)
    }


def rules_for(symptom_id: str) -> list[type[Rule]]:
    """Registered rules that cover ``symptom_id``."""
    return [rule for rule in REGISTRY if symptom_id in rule.ids]


def thresholds(rule: type[Rule]) -> dict[str, Any]:
    """A rule's threshold fields and their defaults."""
    if not dataclasses.is_dataclass(rule):
        return {}
    return {f.name: f.default for f in dataclasses.fields(rule) if f.default is not dataclasses.MISSING}


def _convert(text: str, default: Any, where: str) -> Any:
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise UsageError(f"--set {where}={text}: expected a {type(default).__name__}") from None
    return text


def parse_settings(assignments: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["loss.diverging.rise_factor=3"]`` into ``{"loss.diverging": {"rise_factor": 3.0}}``, validated."""
    settings: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        symptom_id, dot, name = key.strip().rpartition(".")
        if not sep or not dot:
            raise UsageError(f"--set {assignment!r}: expected ID.FIELD=VALUE, e.g. loss.diverging.rise_factor=3")
        if symptom_id not in BY_ID:
            raise UsageError(f"--set {assignment!r}: unknown symptom id {symptom_id!r} (see --list-rules)")
        fields = {k: v for rule in rules_for(symptom_id) for k, v in thresholds(rule).items()}
        if name not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise UsageError(f"--set {assignment!r}: {symptom_id} has no threshold {name!r} (known: {known})")
        settings.setdefault(symptom_id, {})[name] = _convert(text.strip(), fields[name], key)
    return settings


def _instantiate(rule: type[Rule], settings: Settings) -> Rule:
    fields = thresholds(rule)
    values = {k: v for symptom_id in rule.ids for k, v in settings.get(symptom_id, {}).items() if k in fields}
    return rule(**values)


def _crash_finding(rule: type[Rule], run: Run, error: BaseException) -> Finding:
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    location = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
    text = f"{type(error).__name__}: {error}"
    return Finding(
        id=rule.ids[0],
        severity=Severity.ERROR,
        title=f"internal error: rule {rule.__name__} failed ({type(error).__name__})",
        message=f"Rule {rule.__name__} stopped with {text}{location}; its symptoms "
        f"({', '.join(rule.ids)}) were not checked. The other rules ran.",
        hint="This is a bug in summary-doctor, not in your training: please report it with the message above "
        "(run with -v for the full traceback).",
        run=run.name,
        evidence={INTERNAL_KEY: text, "rule": rule.__name__},
    )


def is_internal(finding: Finding) -> bool:
    """True for the finding that stands for a crashed rule."""
    return INTERNAL_KEY in finding.evidence


def _run_rule(rule: type[Rule], run: Run, context: Context, settings: Settings, wanted: set[str]) -> tuple:
    try:
        instance = _instantiate(rule, settings)
        missing = instance.requirements(run, context)
        if missing is not None:
            return _Outcome(rule, missing=missing), []
        findings = [f for f in instance.check(run, context) if f.id in wanted]
    except Exception as error:  # a crash must never hide the other rules
        log.debug("rule %s failed on %s", rule.__name__, run.name, exc_info=True)
        return _Outcome(rule, crashed=f"{type(error).__name__}: {error}"), [_crash_finding(rule, run, error)]
    return _Outcome(rule), findings


def _entry(symptom_id: str, outcomes: list[_Outcome], findings: list[Finding], wanted: set[str]) -> ChecklistEntry:
    if symptom_id in UNOBSERVABLE:
        missing = UNOBSERVABLE[symptom_id]
        return ChecklistEntry(symptom_id, Status.NOT_CHECKABLE, missing.reason, missing.enable)
    if symptom_id not in wanted:
        return ChecklistEntry(symptom_id, Status.NOT_CHECKABLE, DESELECTED.reason, DESELECTED.enable)
    if any(f.id == symptom_id and f.severity.rank >= 1 and not is_internal(f) for f in findings):
        return ChecklistEntry(symptom_id, Status.PROBLEM)
    mine = [o for o in outcomes if symptom_id in o.rule.ids]
    if any(o.missing is None and o.crashed is None for o in mine):
        return ChecklistEntry(symptom_id, Status.OK)
    crashed = [o for o in mine if o.crashed]
    if crashed:
        reason = f"rule {crashed[0].rule.__name__} failed ({crashed[0].crashed})"
        return ChecklistEntry(symptom_id, Status.NOT_CHECKABLE, reason, "report this as a summary-doctor bug")
    missing = next((o.missing for o in mine if o.missing), NOT_ANALYSED)
    return ChecklistEntry(symptom_id, Status.NOT_CHECKABLE, missing.reason, missing.enable)


def _order(finding: Finding) -> tuple[int, int, int]:
    position = SYMPTOM_IDS.index(finding.id) if finding.id in BY_ID else len(SYMPTOM_IDS)
    return (-finding.severity.rank, position, finding.step if finding.step is not None else -1)


def diagnose(
    run: Run,
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    settings: Settings | None = None,
    context: Context | None = None,
) -> Diagnosis:
    """Run every registered rule on ``run`` and fill the checklist for all symptom ids.

    ``select``/``ignore`` take ids or groups (``loss``, ``hparam.lr-too-large``);
    ``settings`` maps an id to threshold overrides (see :func:`parse_settings`).
    A rule that raises becomes an error finding naming it; the others still run.
    Once all rules ran, findings that explain others are linked
    (``Finding.caused_by``, see :mod:`summary_doctor.causes`).
    """
    wanted = selected_ids(select, ignore) - set(UNOBSERVABLE)
    context = context or Context()
    settings = settings or {}
    outcomes: list[_Outcome] = []
    findings: list[Finding] = []
    for rule in REGISTRY:
        if wanted.isdisjoint(rule.ids):
            continue
        outcome, found = _run_rule(rule, run, context, settings, wanted)
        outcomes.append(outcome)
        findings.extend(found)
    findings = link_causes(findings)
    findings.sort(key=_order)
    checklist = [_entry(symptom_id, outcomes, findings, wanted) for symptom_id in SYMPTOM_IDS]
    return Diagnosis(run=run, findings=findings, checklist=checklist)


def explain(symptom_id: str) -> str:
    """The documentation of ``symptom_id``: each covering rule's docstring and its defaults."""
    if symptom_id not in BY_ID:
        raise UsageError(f"--explain {symptom_id!r}: unknown symptom id (see --list-rules)")
    symptom = BY_ID[symptom_id]
    lines = [f"{symptom_id}: {symptom.title} ({symptom.group})", ""]
    if symptom_id in UNOBSERVABLE:
        return "\n".join([*lines, UNOBSERVABLE[symptom_id].reason + ".", UNOBSERVABLE[symptom_id].enable])
    rules = rules_for(symptom_id)
    if not rules:
        return "\n".join([*lines, NOT_ANALYSED.reason + "."])
    for rule in rules:
        lines += [f"Rule {rule.__name__}", "", inspect.cleandoc(rule.__doc__ or ""), ""]
        defaults = thresholds(rule)
        if defaults:
            lines.append(f"Current defaults (change with --set {symptom_id}.FIELD=VALUE):")
            lines += [f"  {name} = {value!r}" for name, value in defaults.items()]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def rule_table() -> list[tuple[str, str, str]]:
    """(id, rule name or status, one-line summary) for every symptom id, in checklist order."""
    rows = []
    for symptom_id in SYMPTOM_IDS:
        rules = rules_for(symptom_id)
        if symptom_id in UNOBSERVABLE:
            rows.append((symptom_id, "-", UNOBSERVABLE[symptom_id].reason))
        elif not rules:
            rows.append((symptom_id, "-", NOT_ANALYSED.reason))
        for rule in rules:
            summary = inspect.cleandoc(rule.__doc__ or "").split("\n", 1)[0]
            rows.append((symptom_id, rule.__name__, summary))
    return rows
