"""The symptom catalogue of ``symptoms.md``: ids, groups and checklist order.

An id never changes meaning once shipped. ``api.construct-constraint`` has no
evidence in summary logs and is always reported as not checkable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Symptom:
    """One checklist item: its stable id, group and a short title."""

    id: str
    group: str
    title: str


GROUPS: tuple[str, ...] = (
    "Dataset",
    "Data processing",
    "Hyperparameters",
    "API use",
    "Computation graph",
    "Weight initialization",
    "Training dynamics",
)

SYMPTOMS: tuple[Symptom, ...] = (
    Symptom("dataset.missing-values", "Dataset", "too many missing values"),
    Symptom("dataset.outliers", "Dataset", "outliers in the data"),
    Symptom("dataset.label-errors", "Dataset", "wrong labels"),
    Symptom("dataset.class-imbalance", "Dataset", "classes with very different sample counts"),
    Symptom("dataset.too-few-samples", "Dataset", "too few training samples"),
    Symptom("preprocess.not-normalized", "Data processing", "data not normalized / standardized"),
    Symptom("preprocess.train-eval-mismatch", "Data processing", "inference preprocessing differs from training"),
    Symptom("preprocess.no-shuffle", "Data processing", "dataset not shuffled"),
    Symptom("hparam.lr-too-large", "Hyperparameters", "learning rate too large"),
    Symptom("hparam.lr-too-small", "Hyperparameters", "learning rate too small"),
    Symptom("hparam.too-many-epochs", "Hyperparameters", "too many epochs"),
    Symptom("hparam.too-few-epochs", "Hyperparameters", "too few epochs"),
    Symptom("hparam.batch-too-large", "Hyperparameters", "batch size too large"),
    Symptom("api.dropout-keep-prob", "API use", "Dropout keep_prob used as a drop rate"),
    Symptom("api.div-no-nan", "API use", "Div where the divisor can be zero (DivNoNan intended)"),
    Symptom("api.construct-constraint", "API use", "network breaks the static-graph (construct) constraints"),
    Symptom("graph.weight-sharing", "Computation graph", "weights wrongly shared or not shared"),
    Symptom("graph.weight-freezing", "Computation graph", "weights wrongly frozen or trained"),
    Symptom("graph.node-connection", "Computation graph", "nodes connected against the design"),
    Symptom("graph.node-mode", "Computation graph", "train/eval mode wrong for BatchNorm or Dropout"),
    Symptom("graph.loss-function", "Computation graph", "wrong loss function"),
    Symptom("init.all-zero", "Weight initialization", "initial weights all zero"),
    Symptom("init.rank-mismatch", "Weight initialization", "initial weights differ across distributed ranks"),
    Symptom("loss.nan-inf", "Training dynamics", "loss becomes NaN or Inf"),
    Symptom("loss.diverging", "Training dynamics", "loss grows"),
    Symptom("loss.oscillating", "Training dynamics", "loss swings without settling"),
    Symptom("loss.plateau", "Training dynamics", "loss stops improving early"),
    Symptom("gradient.vanishing", "Training dynamics", "gradients near zero"),
    Symptom("gradient.exploding", "Training dynamics", "gradients huge or NaN"),
    Symptom("activation.dead", "Training dynamics", "dead ReLU units or saturated activations"),
    Symptom("weight.overflow", "Training dynamics", "NaN/Inf in weights"),
    Symptom("weight.update-ratio", "Training dynamics", "updates too large or too small relative to weights"),
    Symptom("metric.overfitting", "Training dynamics", "train and eval metrics drift apart"),
)

SYMPTOM_IDS: tuple[str, ...] = tuple(s.id for s in SYMPTOMS)
BY_ID: dict[str, Symptom] = {s.id: s for s in SYMPTOMS}
