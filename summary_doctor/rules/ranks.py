"""Cross-run checks: ranks of one distributed job that start from different weights.

A data-parallel job keeps one summary directory per rank (``rank_0/``,
``rank_1/`` ... or ``device_0/`` ...) below one folder. Gradients are
averaged across ranks, so ranks that start from the same weights stay
identical, and ranks that start apart stay apart. Each run is reduced to a
small digest (:func:`run_digest`: its parameters' first recorded histograms);
:func:`cross_run_findings` compares the digests of sibling rank directories.
Whatever audits many runs (one after the other, in parallel, from a cache)
computes the digests and calls :func:`cross_run_findings` once.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from summary_doctor.findings import ChecklistEntry, Finding, Severity, Status
from summary_doctor.reader.run import Run
from summary_doctor.rules._digest import record_buckets, record_mean, run_digest
from summary_doctor.rules._distribution import cdf_on
from summary_doctor.rules._histograms import ENABLE_WEIGHTS, cdf_distance
from summary_doctor.rules.base import Context, Missing, Rule, register

__all__ = ["ID", "RankMismatch", "cross_run_findings", "rank_groups", "run_digest"]

ID = "init.rank-mismatch"
RANK_DIR = re.compile(r"^(?:rank|device|worker|node|proc|process|gpu|npu|card)[_-]?(\d+)$", re.IGNORECASE)
#: Parallel modes where ranks hold different slices of a parameter: same-name weights may differ by design.
SLICED_MODES = ("semi_auto_parallel", "auto_parallel", "hybrid_parallel")


@register
@dataclass
class RankMismatch(Rule):
    """Ranks of one distributed job whose parameters start from different values.

    What it detects
        Among sibling run directories named like ranks (``rank_0``,
        ``rank_1``, ``device_0`` ...), same-name parameters whose first
        recorded histograms differ between ranks by more than the ranks'
        own updates can explain. Compared: the earth mover's distance
        between the two histograms and the difference of their exact means.
        Each is allowed ``margin`` x 2 x (steps before the first record) x
        the largest per-step change of that parameter between a rank's own
        consecutive records (two ranks, each moved by its updates), and
        never less than ``float_tolerance`` of the parameter's magnitude.
        Ranks with identical first histograms are ok.
    Why it matters
        Data parallelism averages gradients computed on different weights:
        the replicas never agree, each rank saves a different model, and
        the averaged gradient fits none of them (checklist wi.02).
    Typical causes
        No common seed (``mindspore.set_seed``) in the training script, a
        seed derived from the rank id (``set_seed(rank)``,
        ``ds.config.set_seed(rank)``: both also seed numpy, whose generator
        draws MindSpore's initial weights), a checkpoint loaded on one rank
        only.
    How to fix
        Call ``mindspore.set_seed(same_value)`` on every rank before the
        network is built, or ``set_auto_parallel_context(parameter_broadcast=
        True)`` so rank 0's weights are broadcast.
    Thresholds
        margin = 10 (an order of magnitude above the updates);
        float_tolerance = 1e-6 (rounding of the gradient all-reduce).
        SummaryCollector's first record follows one update, hence the
        allowance. Runs whose lineage says semi_auto/auto/hybrid parallel
        hold sliced parameters and are not compared. With a single record
        per rank the updates cannot be measured and a difference is not
        judged. A single run alone is not checkable: diagnose the folder
        that holds the rank directories.
    """

    ids = (ID,)
    margin: float = 10.0
    float_tolerance: float = 1e-6

    def requirements(self, run: Run, context: Context) -> Missing | None:
        return Missing(
            "a single run: compare ranks by diagnosing their common parent folder",
            "diagnose the folder that holds the rank directories (rank_0/, rank_1/ ...): summary-doctor PARENT",
        )

    def check(self, run: Run, context: Context) -> Iterator[Finding]:
        return iter(())


# --- comparing ranks ------------------------------------------------------------------------


def rank_groups(names: list[str]) -> dict[str, list[tuple[int, str]]]:
    """Sibling runs named like ranks, by parent folder: {parent: [(rank id, run name) ...]} with 2+ ranks."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for name in names:
        parent, _, leaf = name.rpartition("/")
        match = RANK_DIR.match(leaf)
        if match and name != ".":
            groups.setdefault(parent or ".", []).append((int(match.group(1)), name))
    return {parent: sorted(members) for parent, members in groups.items() if len(members) > 1}


def _movement(records: list[Mapping[str, Any]]) -> tuple[float, float] | None:
    """The largest per-step change of a rank's own records: (earth mover's distance, |mean change|)."""
    moves = []
    for a, b in itertools.pairwise(records):
        gap = int(b["step"]) - int(a["step"])
        if gap > 0:
            moves.append(
                (cdf_distance(record_buckets(a), record_buckets(b)) / gap, abs(record_mean(b) - record_mean(a)) / gap)
            )
    if not moves:
        return None
    return max(m[0] for m in moves), max(m[1] for m in moves)


@dataclass(frozen=True)
class Comparison:
    """One parameter of one rank against the reference rank, at their first common step."""

    parameter: str
    step: int
    distance: float
    mean_difference: float
    allowed_distance: float | None
    allowed_mean: float | None
    means: tuple[float, float]

    @property
    def identical(self) -> bool:
        return self.distance == 0 and self.mean_difference == 0

    @property
    def beyond(self) -> bool:
        """Apart by more than the updates allow (False when the updates could not be measured)."""
        if self.allowed_distance is None or self.allowed_mean is None:
            return False
        return self.distance > self.allowed_distance or self.mean_difference > self.allowed_mean


def compare(name: str, mine: list, reference: list, rule: RankMismatch) -> Comparison | None:
    """Compare one parameter's records of two ranks; None when they share no step or differ in size."""
    steps = sorted({int(r["step"]) for r in mine} & {int(r["step"]) for r in reference})
    if not steps:
        return None
    a = next(r for r in reference if int(r["step"]) == steps[0])
    b = next(r for r in mine if int(r["step"]) == steps[0])
    if int(a["count"]) != int(b["count"]) or int(a["nonfinite"]) or int(b["nonfinite"]):
        return None
    floor = rule.float_tolerance * max(abs(float(a["min"])), abs(float(a["max"])), 1e-12)
    moves = [m for m in (_movement(reference), _movement(mine)) if m is not None]
    budget = rule.margin * 2 * max(steps[0], 1)
    allowed = (
        (max(budget * max(m[0] for m in moves), floor), max(budget * max(m[1] for m in moves), floor))
        if moves
        else (None, None)
    )
    return Comparison(
        parameter=name,
        step=steps[0],
        distance=cdf_distance(record_buckets(a), record_buckets(b)),
        mean_difference=abs(record_mean(a) - record_mean(b)),
        allowed_distance=allowed[0],
        allowed_mean=allowed[1],
        means=(record_mean(a), record_mean(b)),
    )


HINT = (
    "Seed every rank alike before building the network: mindspore.set_seed(0) (and ds.config.set_seed(0), which "
    "also seeds numpy), never a seed derived from the rank; or set_auto_parallel_context(parameter_broadcast=True) "
    "(checklist wi.02)."
)


def _leaf(name: str) -> str:
    return name.rpartition("/")[2]


def _first_histograms(digests: Mapping[str, Any], names: list[str], parameter: str, step: int) -> dict[str, Any]:
    """Each rank's record of ``parameter`` at ``step`` on one grid of 40 bins, as shares (for the report's plot)."""
    records = {n: next(r for r in digests[n]["parameters"][parameter] if int(r["step"]) == step) for n in names}
    low = min(float(r["min"]) for r in records.values())
    high = max(float(r["max"]) for r in records.values())
    edges = np.linspace(low, high if high > low else low + 1, 41)
    shares = {n: np.diff(cdf_on(record_buckets(r), edges)).round(5).tolist() for n, r in records.items()}
    return {"parameter": parameter, "step": step, "edges": edges.tolist(), "shares": shares}


def _group_comparisons(members: list[tuple[int, str]], digests: Mapping[str, Any], rule: RankMismatch) -> dict:
    """Per non-reference rank, its comparisons with the reference (lowest) rank."""
    reference = digests[members[0][1]]["parameters"]
    result = {}
    for _, name in members[1:]:
        mine = digests[name]["parameters"]
        found = [compare(p, mine[p], reference[p], rule) for p in sorted(set(mine) & set(reference))]
        result[name] = [c for c in found if c is not None]
    return result


def _judge(parent: str, members: list[tuple[int, str]], digests: Mapping[str, Any], rule: RankMismatch):
    """(finding or None, status, reason, enable) for one group of ranks."""
    modes = {str(digests[n].get("parallel_mode")) for _, n in members} & set(SLICED_MODES)
    if modes:
        reason = f"parallel_mode {sorted(modes)[0]}: the ranks hold different slices of the parameters"
        return None, Status.NOT_CHECKABLE, reason, "nothing to record: sliced parameters differ by design"
    comparisons = _group_comparisons(members, digests, rule)
    if not any(comparisons.values()):
        return None, Status.NOT_CHECKABLE, "no parameter recorded by two ranks at a common step", ENABLE_WEIGHTS
    differing = {name: [c for c in found if c.beyond] for name, found in comparisons.items()}
    differing = {name: found for name, found in differing.items() if found}
    if differing:
        return _finding(parent, members, digests, comparisons, differing), Status.PROBLEM, None, None
    if any(not c.identical and c.allowed_distance is None for found in comparisons.values() for c in found):
        return (
            None,
            Status.NOT_CHECKABLE,
            "the ranks differ at their first record, but with one record per rank an update cannot be told "
            "from a different initialisation",
            "record parameter histograms at two steps or more (SummaryCollector collect_freq)",
        )
    return None, Status.OK, None, None


def _finding(parent, members, digests, comparisons, differing) -> Finding:
    reference = members[0][1]
    worst_rank, found = max(differing.items(), key=lambda item: len(item[1]))
    worst = max(found, key=lambda c: c.mean_difference / c.allowed_mean if c.allowed_mean else math.inf)
    parameters = sorted({c.parameter for found in differing.values() for c in found})
    compared = sorted({c.parameter for found in comparisons.values() for c in found})
    same = [p for p in compared if p not in parameters]
    others = ", ".join(_leaf(n) for n in differing)
    return Finding(
        id=ID,
        severity=Severity.WARNING,
        title=f"{others} start{'s' if len(differing) == 1 else ''} from other weights than {_leaf(reference)}: "
        f"{len(parameters)} of {len(compared)} parameters differ at step {worst.step}",
        message=(
            f"At their first common record (step {worst.step}), {worst.parameter} has mean {worst.means[0]:.6g} on "
            f"{_leaf(reference)} and {worst.means[1]:.6g} on {_leaf(worst_rank)}, and their histograms are "
            f"{worst.distance:.3g} apart (earth mover's distance): more than the updates before that record can "
            f"explain (at most {worst.allowed_mean:.3g} and {worst.allowed_distance:.3g}, from each rank's own "
            f"change between records). Differ: {', '.join(parameters)}"
            + (f"; alike: {', '.join(same)} (e.g. biases that all start at zero)." if same else ".")
        ),
        hint=HINT,
        run=parent,
        tags=tuple(parameters),
        step=worst.step,
        evidence={
            "reference": reference,
            "ranks": [n for _, n in members],
            "differing_ranks": list(differing),
            "parameters": {
                c.parameter: {
                    "distance": c.distance,
                    "allowed_distance": c.allowed_distance,
                    "mean_difference": c.mean_difference,
                    "allowed_mean_difference": c.allowed_mean,
                }
                for c in found
            },
            "first_histograms": _first_histograms(digests, [reference, worst_rank], worst.parameter, worst.step),
        },
        runs=tuple(n for _, n in members),
    )


def cross_run_findings(
    digests: Mapping[str, dict[str, Any]], *, rule: RankMismatch | None = None
) -> tuple[list[Finding], dict[str, ChecklistEntry]]:
    """Cross-run findings (``Finding.runs`` set) from digests keyed by run name (path relative to the root),
    and the ``init.rank-mismatch`` checklist entry for every run that took part (ok / problem / not
    checkable); runs that are not ranks of a job keep their own entry.
    """
    rule = rule or RankMismatch()
    findings: list[Finding] = []
    entries: dict[str, ChecklistEntry] = {}
    for parent, members in rank_groups(list(digests)).items():
        finding, status, reason, enable = _judge(parent, members, digests, rule)
        if finding is not None:
            findings.append(finding)
        for _, name in members:
            entries[name] = ChecklistEntry(ID, status, reason, enable)
    return findings, entries
