"""The tag names the recorder writes: the names summary-doctor's rules look for first.

Kept free of MindSpore so the rules' side and tests can import them. The
parameter and loss tags are the ones ``SummaryCollector`` uses, so a run
recorded by a hand-written loop reads like one recorded by ``Model.train``.
"""

from __future__ import annotations

import re

LOSS = "loss/auto"
INPUT = "input"
LABEL = "label"
EVAL_INPUT = "eval/input"
EVAL_LABEL = "eval/label"
EVAL_LOSS = "eval_loss"
EVAL_ACC = "eval_acc"

_ACCURACY = re.compile(r"^(acc|accuracy|top_?1_?accuracy|top1)$", re.IGNORECASE)


def parameter_tag(name: str) -> str:
    """``fc1.weight`` -> ``fc1.weight/auto`` (SummaryCollector's own name for a parameter histogram)."""
    return f"{name}/auto"


def gradient_tag(name: str) -> str:
    """``fc1.weight`` -> ``grad/fc1.weight``."""
    return f"grad/{name}"


def activation_tag(cell_name: str) -> str:
    """``features.relu1`` -> ``act/features.relu1``."""
    return f"act/{cell_name}"


def eval_metric_tag(metric: str) -> str:
    """An evaluation metric's scalar tag: ``loss`` -> ``eval_loss``, ``accuracy`` -> ``eval_acc``, else ``eval_<m>``.

    ``Model.fit`` adds its own ``eval_loss``: a name already starting with ``eval_`` is kept.
    """
    if metric.lower().startswith("eval_"):
        return metric
    if metric.lower() == "loss":
        return EVAL_LOSS
    if _ACCURACY.match(metric):
        return EVAL_ACC
    return f"eval_{metric}"
