"""Lineage: hyperparameters, dataset pipeline, metrics, from ``_lineage`` files.

SummaryCollector writes these ``LineageEvent`` records (no version record)
into a separate file. We apply MindInsight's merge rules so both tools agree:
per file the last train, evaluation and dataset-graph record wins; a later
file holding a train lineage or dataset graph replaces what came before; a
later evaluation-only file merges into it; user-defined info is merged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from summary_doctor.reader.frames import build_frame, empty_frame
from summary_doctor.reader.proto import summary_doctor_pb2 as pb


@dataclass
class Lineage:
    """What a run's lineage files say about how it was trained and evaluated."""

    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    user_defined: dict[str, Any] = field(default_factory=dict)
    dataset_graph: dict[str, Any] | None = None
    dataset_ops: pd.DataFrame = field(default_factory=lambda: empty_frame("dataset_ops"))

    @property
    def empty(self) -> bool:
        """True when no lineage record was read."""
        return not (self.hyperparameters or self.metrics or self.user_defined or self.dataset_graph)


def _parameters(parameter: pb.OperationParameter) -> dict[str, Any]:
    params: dict[str, Any] = {}
    params.update(parameter.mapStr)
    params.update({k: list(v.strValue) for k, v in parameter.mapStrList.items()})
    params.update(parameter.mapBool)
    params.update(parameter.mapInt)
    params.update(parameter.mapDouble)
    return params


def _operation(operation: pb.Operation) -> dict[str, Any]:
    result = _parameters(operation.operationParam)
    if len(operation.size):
        result["size"] = list(operation.size)
    if len(operation.weights):
        result["weights"] = list(operation.weights)
    return result


def dataset_graph_to_dict(graph: pb.DatasetGraph) -> dict[str, Any]:
    """A ``DatasetGraph`` as nested plain dicts (parameters, operations, sampler, children)."""
    node = _parameters(graph.parameter)
    if len(graph.operations):
        node["operations"] = [_operation(op) for op in graph.operations]
    if graph.HasField("sampler"):
        node["sampler"] = _operation(graph.sampler)
    if len(graph.children):
        node["children"] = [dataset_graph_to_dict(child) for child in graph.children]
    return node


def dataset_ops_frame(graph: dict[str, Any] | None) -> pd.DataFrame:
    """Flatten a dataset graph dict into one row per dataset op, map operation or sampler.

    ``depth`` 0 is the last op of the pipeline (usually ``BatchDataset``);
    the source dataset is the deepest.
    """
    rows: dict[str, list[Any]] = {"depth": [], "role": [], "op_type": [], "params": []}

    def add(depth: int, role: str, params: dict[str, Any]) -> None:
        name = params.get("op_type") or params.get("tensor_op_name") or params.get("sampler_name")
        rows["depth"].append(depth)
        rows["role"].append(role)
        rows["op_type"].append(name)
        rows["params"].append({k: v for k, v in params.items() if k not in ("children", "operations", "sampler")})

    def walk(node: dict[str, Any], depth: int) -> None:
        add(depth, "dataset", node)
        for op in node.get("operations", []):
            add(depth, "operation", op)
        if "sampler" in node:
            add(depth, "sampler", node["sampler"])
        for child in node.get("children", []):
            walk(child, depth + 1)

    if graph:
        walk(graph, 0)
    return build_frame("dataset_ops", rows) if rows["depth"] else empty_frame("dataset_ops")


def _user_info(info: pb.UserDefinedInfo) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for nested in info.user_info:
        merged.update(_user_info(nested))
    merged.update({k: _user_info(v) for k, v in info.map_dict.items()})
    merged.update(info.map_int32)
    merged.update(info.map_str)
    merged.update(info.map_double)
    return merged


def _train(lineage: pb.TrainLineage) -> dict[str, Any]:
    hyper = lineage.hyper_parameters
    values: dict[str, Any] = {}
    for name in ("optimizer", "learning_rate", "loss_function", "epoch", "parallel_mode", "device_num", "batch_size"):
        if hyper.HasField(name):
            values[name] = getattr(hyper, name)
    if lineage.algorithm.HasField("network"):
        values["network"] = lineage.algorithm.network
    if lineage.algorithm.HasField("loss"):
        values["loss"] = lineage.algorithm.loss
    if lineage.train_dataset.HasField("train_dataset_path"):
        values["train_dataset_path"] = lineage.train_dataset.train_dataset_path
    if lineage.train_dataset.HasField("train_dataset_size"):
        values["train_dataset_size"] = lineage.train_dataset.train_dataset_size
    if lineage.model.HasField("path"):
        values["model_path"] = lineage.model.path
    if lineage.model.HasField("size"):
        values["model_size"] = lineage.model.size
    return values


def _evaluation(lineage: pb.EvaluationLineage) -> tuple[dict[str, Any], dict[str, Any]]:
    metrics: dict[str, Any] = {}
    if lineage.metric:
        try:
            loaded = json.loads(lineage.metric)
            metrics = loaded if isinstance(loaded, dict) else {"metric": loaded}
        except json.JSONDecodeError:
            metrics = {"metric": lineage.metric}
    valid = lineage.valid_dataset
    evaluation = {}
    if valid.HasField("valid_dataset_path"):
        evaluation["valid_dataset_path"] = valid.valid_dataset_path
    if valid.HasField("valid_dataset_size"):
        evaluation["valid_dataset_size"] = valid.valid_dataset_size
    return metrics, evaluation


class LineageBuilder:
    """Merges the lineage events of a run's files, in reading order."""

    def __init__(self) -> None:
        self.lineage = Lineage()
        self._file: dict[str, Any] = {}

    def start_file(self) -> None:
        self._file = {}

    def add(self, event: pb.LineageEvent) -> None:
        what = event.WhichOneof("what")
        if what == "train_lineage":
            self._file["train"] = _train(event.train_lineage)
        elif what == "evaluation_lineage":
            self._file["evaluation"] = _evaluation(event.evaluation_lineage)
        elif what == "dataset_graph":
            self._file["dataset_graph"] = dataset_graph_to_dict(event.dataset_graph)
        elif what == "user_defined_info":
            self.lineage.user_defined.update(_user_info(event.user_defined_info))

    def end_file(self) -> None:
        lineage = self.lineage
        if "train" in self._file or "dataset_graph" in self._file:
            lineage.hyperparameters = self._file.get("train", {})
            lineage.dataset_graph = self._file.get("dataset_graph")
            lineage.metrics, lineage.evaluation = {}, {}
        if "evaluation" in self._file:
            metrics, evaluation = self._file["evaluation"]
            lineage.metrics.update(metrics)
            lineage.evaluation.update(evaluation)

    def build(self) -> Lineage:
        self.lineage.dataset_ops = dataset_ops_frame(self.lineage.dataset_graph)
        return self.lineage
