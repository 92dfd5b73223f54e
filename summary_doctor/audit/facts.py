"""The lineage columns of the audit table: how a run was trained and where it ended.

Hyperparameters come from the lineage SummaryCollector writes; final values
from the recorded curves (found as the rules find them, overrides included),
falling back to the lineage when a curve is missing. Values stay as numbers,
NaN included: a loss that ended NaN is a fact worth sorting on.
"""

from __future__ import annotations

from typing import Any

from summary_doctor.reader.run import Run
from summary_doctor.rules.base import Context
from summary_doctor.rules.tags import curve, lineage_eval_accuracy, lineage_final_loss, lineage_learning_rate

#: Table column -> lineage hyperparameter.
HYPERPARAMETERS = {
    "batch_size": "batch_size",
    "optimizer": "optimizer",
    "epochs": "epoch",
    "loss_function": "loss_function",
    "dataset_size": "train_dataset_size",
    "network": "network",
}


def _number_or_text(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _end(run: Run, kind: str, context: Context, *, first: bool = False) -> float | None:
    series = curve(run, kind, context)  # type: ignore[arg-type]
    if series is None or series.empty:
        return None
    return float(series.iloc[0 if first else -1])


def _learning_rate(run: Run, context: Context) -> float | None:
    lineage = lineage_learning_rate(run)
    return lineage if lineage is not None else _end(run, "learning_rate", context, first=True)


def run_facts(run: Run, context: Context) -> dict[str, Any]:
    """Learning rate (initial), batch size, optimizer, epochs, loss function, dataset size,
    network, final train/eval loss and eval accuracy, and every lineage metric (``metrics/<name>``)."""
    hyper = run.lineage.hyperparameters
    facts: dict[str, Any] = {"learning_rate": _learning_rate(run, context)}
    facts |= {column: _number_or_text(hyper.get(key)) for column, key in HYPERPARAMETERS.items()}
    final_loss = _end(run, "loss", context)
    facts["final_loss"] = final_loss if final_loss is not None else lineage_final_loss(run)
    facts["final_eval_loss"] = _end(run, "eval_loss", context)
    accuracy = _end(run, "eval_accuracy", context)
    facts["final_eval_accuracy"] = accuracy if accuracy is not None else lineage_eval_accuracy(run)
    for name, value in sorted(run.lineage.metrics.items()):
        facts[f"metrics/{name}"] = _number_or_text(value)
    return facts
