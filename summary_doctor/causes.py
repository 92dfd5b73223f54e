"""Root causes: which finding explains which, decided on the run's evidence after every rule has run.

One fault shows as several symptoms: a learning rate too large makes the
updates huge, the loss climbs, overflows to NaN, and the weights follow. A
report that lists them side by side hides the one to fix, so each finding
may name the finding that explains it (``Finding.caused_by``), and the
reports lead with the causes.

A link needs both:

- a declared pair (``LINKS``): the cause can physically produce the effect
  (dead ReLUs can stall a loss; a stalled loss cannot kill ReLUs);
- the evidence of this run, from the rules' own measures: the cause came
  first (its first step at or before the effect's; within one step the
  loss is computed before the gradients, and the weights are recorded after
  the update), or the cause is a state that already held when the rule could
  first look, or both rules measured the same thing (the same eval turn).

Never on the ids alone: the same two ids in another run may be unrelated.
Pairs are listed effect by effect, the most immediate cause first, so chains
form (lr too large -> diverging -> NaN -> weights overflow); the first pair
whose evidence holds wins. Adding a pair is one line in ``LINKS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from summary_doctor.findings import Finding

Evidence = Callable[[Finding, Finding], bool]


def _steps(cause: Finding, effect: Finding) -> tuple[int, int] | None:
    if cause.step is None or effect.step is None:
        return None
    return cause.step, effect.step


def earlier(cause: Finding, effect: Finding) -> bool:
    """The cause's first step is before the effect's (a later step of the same training)."""
    steps = _steps(cause, effect)
    return steps is not None and steps[0] < steps[1]


def not_later(cause: Finding, effect: Finding) -> bool:
    """The cause's first step is at or before the effect's: for causes that act within one step
    (loss -> gradients -> update -> recorded weights)."""
    steps = _steps(cause, effect)
    return steps is not None and steps[0] <= steps[1]


def large_updates_first(cause: Finding, effect: Finding) -> bool:
    """hparam.lr-too-large measured updates above its threshold at or before the effect's first step."""
    first = cause.evidence.get("first_large_update_step")
    return isinstance(first, int) and effect.step is not None and first <= effect.step


def held_from_the_start(cause: Finding, effect: Finding) -> bool:
    """A state (dead units, vanished gradients) present when the effect began, or from the cause rule's first look.

    These rules judge from 30% of the run on (AUTOTRAINER's judgment point):
    a state found at their first judged step may have held from step 1.
    """
    if cause.step is None or effect.step is None:
        return False
    steps = cause.evidence.get("steps")
    first_look = cause.evidence.get("judged_from", min(steps) if isinstance(steps, list) and steps else cause.step)
    return cause.step <= max(effect.step, int(first_look))


def same_eval_turn(cause: Finding, effect: Finding) -> bool:
    """Both findings measured the eval curve turning up after the same best evaluation."""
    best = cause.evidence.get("best_step")
    return best is not None and best == effect.evidence.get("best_step")


def measured_at(key: str) -> Evidence:
    """The cause rule measured the effect's first step itself (e.g. the first NaN loss step, in its evidence)."""
    return lambda cause, effect: effect.step is not None and cause.evidence.get(key) == effect.step


def among_its_steps(cause: Finding, effect: Finding) -> bool:
    """The effect began at one of the steps where the cause was seen (e.g. a batch holding an outlier)."""
    steps = cause.evidence.get("steps")
    return isinstance(steps, list) and effect.step in steps


def same_stall(cause: Finding, effect: Finding) -> bool:
    """Both findings read the same stall of the loss."""
    stall = cause.evidence.get("stall_step")
    return stall is not None and stall == effect.evidence.get("stall_step")


def in_the_graph(cause: Finding, effect: Finding) -> bool:
    """The cause is a fact of the computation graph, true at every step, and the effect appeared in training.

    Used only for pairs where the structure itself bounds what training can
    do (a Softmax before a logits loss puts a floor under the loss), and
    listed after every measured cause, so a measured one wins.
    """
    return cause.step is None and effect.step is not None


def unbounded_loss(cause: Finding, effect: Finding) -> bool:
    """graph.loss-function saw the loss go below zero: a loss without a floor drives the weights away."""
    lowest = cause.evidence.get("lowest_loss")
    return isinstance(lowest, (int, float)) and lowest < 0 and effect.step is not None


def updates(direction: str, evidence: Evidence) -> Evidence:
    """For weight.update-ratio effects: only the finding about updates too large (or too small)."""
    return lambda cause, effect: effect.evidence.get("direction") == direction and evidence(cause, effect)


def nonfinite_gradients(evidence: Evidence) -> Evidence:
    """For gradient.exploding effects: only NaN/Inf gradients (a NaN loss cannot make finite gradients huge)."""
    return lambda cause, effect: "nonfinite_at_first_step" in effect.evidence and evidence(cause, effect)


@dataclass(frozen=True)
class Link:
    """``cause`` can explain ``effect`` when ``evidence(cause_finding, effect_finding)`` holds."""

    effect: str
    cause: str
    evidence: Evidence


LINKS: tuple[Link, ...] = (
    Link("loss.nan-inf", "dataset.missing-values", measured_at("loss_first_nonfinite_step")),
    Link("loss.nan-inf", "api.div-no-nan", measured_at("first_nonfinite_step")),
    Link("loss.nan-inf", "dataset.outliers", among_its_steps),
    Link("loss.nan-inf", "preprocess.not-normalized", not_later),
    Link("loss.nan-inf", "loss.diverging", earlier),
    Link("loss.nan-inf", "gradient.exploding", earlier),
    Link("loss.nan-inf", "hparam.lr-too-large", large_updates_first),
    Link("loss.diverging", "hparam.lr-too-large", large_updates_first),
    Link("loss.oscillating", "hparam.lr-too-large", large_updates_first),
    Link("loss.plateau", "dataset.label-errors", same_stall),
    Link("loss.plateau", "activation.dead", held_from_the_start),
    Link("loss.plateau", "gradient.vanishing", held_from_the_start),
    Link("loss.plateau", "hparam.lr-too-small", not_later),
    Link("loss.plateau", "hparam.lr-too-large", large_updates_first),
    Link("gradient.exploding", "loss.nan-inf", nonfinite_gradients(not_later)),
    Link("gradient.exploding", "hparam.lr-too-large", large_updates_first),
    Link("weight.overflow", "gradient.exploding", not_later),
    Link("weight.overflow", "loss.nan-inf", not_later),
    Link("weight.overflow", "hparam.lr-too-large", large_updates_first),
    Link("weight.update-ratio", "hparam.lr-too-large", updates("too-large", large_updates_first)),
    Link("weight.update-ratio", "gradient.exploding", updates("too-large", not_later)),
    Link("weight.update-ratio", "loss.nan-inf", updates("too-large", not_later)),
    Link("weight.update-ratio", "hparam.lr-too-small", updates("too-small", lambda cause, effect: True)),
    Link("weight.update-ratio", "activation.dead", updates("too-small", held_from_the_start)),
    Link("weight.update-ratio", "gradient.vanishing", updates("too-small", held_from_the_start)),
    Link("metric.overfitting", "hparam.too-many-epochs", same_eval_turn),
    Link("hparam.lr-too-large", "graph.loss-function", unbounded_loss),
    Link("loss.plateau", "graph.loss-function", in_the_graph),
    Link("loss.nan-inf", "api.dropout-keep-prob", in_the_graph),
)


def _is_problem(finding: Finding) -> bool:
    return finding.severity.rank >= 1 and "internal_error" not in finding.evidence


def _leads_back_to(start: str, target: str, edges: dict[str, set[str]]) -> bool:
    """Whether following causes from id ``start`` reaches id ``target`` (a link to it would close a loop)."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        current = stack.pop()
        if current == target:
            return True
        if current not in seen:
            seen.add(current)
            stack.extend(edges.get(current, ()))
    return False


def _cause_of(effect: Finding, problems: Sequence[Finding], edges: dict[str, set[str]]) -> str | None:
    for link in LINKS:
        if link.effect != effect.id or _leads_back_to(link.cause, effect.id, edges):
            continue
        if any(c.id == link.cause and link.evidence(c, effect) for c in problems):
            return link.cause
    return None


def link_causes(findings: Sequence[Finding]) -> list[Finding]:
    """``findings`` in the same order, each warning/error with ``caused_by`` set when a cause is in evidence.

    Each finding is judged on its own evidence (two weight.update-ratio
    findings, too large and too small, can have different causes);
    ``caused_by`` names the cause's id. Info findings and crashed rules are
    neither causes nor effects. Effects are linked in order of their first
    step, and a link that would close a loop of ids is skipped.
    """
    problems = [f for f in findings if _is_problem(f)]
    edges: dict[str, set[str]] = {}
    causes: dict[int, str] = {}
    for effect in sorted(problems, key=lambda f: (f.step is None, f.step or 0)):
        cause = _cause_of(effect, problems, edges)
        if cause is not None:
            causes[id(effect)] = cause
            edges.setdefault(effect.id, set()).add(cause)
    return [replace(f, caused_by=causes[id(f)]) if id(f) in causes else f for f in findings]


def explained_order(findings: Sequence[Finding]) -> list[tuple[Finding, int]]:
    """Root causes first, each followed by what it explains (depth-first), with each finding's depth.

    A finding whose cause is not among ``findings`` is a root. Roots keep
    their given order, except that a root explaining an error comes before
    roots that do not (it is the thing to fix first). Consequences follow
    their cause (under the cause's first finding), in their given order.
    """
    ids = {f.id for f in findings}
    children: dict[str, list[Finding]] = {}
    roots = []
    for finding in findings:
        if finding.caused_by in ids and finding.caused_by != finding.id:
            children.setdefault(finding.caused_by, []).append(finding)
        else:
            roots.append(finding)
    placed: set[str] = set()

    def walk(finding: Finding, depth: int) -> list[tuple[Finding, int]]:
        rows = [(finding, depth)]
        if finding.id not in placed:
            placed.add(finding.id)
            for child in children.get(finding.id, []):
                rows += walk(child, depth + 1)
        return rows

    subtrees = [walk(root, 0) for root in roots]
    shown = {id(f) for tree in subtrees for f, _ in tree}
    subtrees += [[(f, 0)] for f in findings if id(f) not in shown]  # a loop of causes: show them all the same
    worst = [max(f.severity.rank for f, _ in tree) for tree in subtrees]
    order = sorted(range(len(subtrees)), key=lambda i: -worst[i])
    return [row for i in order for row in subtrees[i]]
