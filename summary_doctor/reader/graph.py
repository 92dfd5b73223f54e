"""The computation graph as frames, with the look-ups graph rules need.

MindSpore writes ``GraphProto`` into the summary file (``Event.graph_def``)
and ``ModelProto`` into ``.pb`` files. Node inputs name other nodes (by their
short ``name``), parameters (``fc1.weight``) or constants (``cst1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from summary_doctor.reader.frames import SCHEMAS, build_frame, empty_frame
from summary_doctor.reader.proto import summary_doctor_pb2 as pb
from summary_doctor.reader.tensors import decode_tensor, dtype_name

_SCALAR_FIELDS = ("bool_val", "int_val", "uint_val", "float_val", "double_val", "str_val")
_LIST_FIELDS = ("bool_vals", "int_vals", "uint_vals", "float_vals", "double_vals", "str_vals")


def decode_value(value: pb.ValueProto) -> Any:
    """A ``ValueProto`` (an attribute or constant) as plain Python data."""
    for name in _SCALAR_FIELDS:
        if value.HasField(name):
            return getattr(value, name)
    for name in _LIST_FIELDS:
        items = getattr(value, name)
        if len(items):
            return list(items)
    if value.HasField("tensor_val"):
        return decode_tensor(value.tensor_val).tolist()
    if len(value.values):
        return [decode_value(item) for item in value.values]
    if len(value.dict_val):
        return {item.key: decode_value(item.value) for item in value.dict_val}
    if value.HasField("type_val"):
        return dtype_name(value.type_val.data_type)
    if value.HasField("dtype"):
        return dtype_name(value.dtype)
    return None


def _type_of(type_proto: pb.TypeProto) -> tuple[str | None, tuple[int, ...] | None]:
    if type_proto.HasField("tensor_type"):
        tensor = type_proto.tensor_type
        return dtype_name(tensor.elem_type), tuple(int(d.size) for d in tensor.shape.dim)
    if type_proto.HasField("data_type"):
        return dtype_name(type_proto.data_type), None
    return None, None


@dataclass
class Graph:
    """One computation graph: nodes, edges, parameters and constants as frames."""

    name: str
    file: str
    nodes: pd.DataFrame = field(default_factory=lambda: empty_frame("nodes"))
    edges: pd.DataFrame = field(default_factory=lambda: empty_frame("edges"))
    parameters: pd.DataFrame = field(default_factory=lambda: empty_frame("parameters"))
    constants: pd.DataFrame = field(default_factory=lambda: empty_frame("constants"))

    @cached_property
    def _by_name(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.nodes["name"])}

    def node(self, name: str) -> pd.Series | None:
        """The node row called ``name`` (short id), or None."""
        index = self._by_name.get(name)
        return None if index is None else self.nodes.iloc[index]

    def consumers(self, name: str) -> pd.DataFrame:
        """Nodes that take ``name`` (a node, parameter or constant) as an input."""
        targets = self.edges.loc[self.edges["source"] == name, "target"]
        return self.nodes[self.nodes["name"].isin(set(targets))]

    def producers(self, name: str) -> pd.DataFrame:
        """Nodes (not parameters) feeding node ``name``."""
        sources = self.edges.loc[self.edges["target"] == name, "source"]
        return self.nodes[self.nodes["name"].isin(set(sources))]

    def scopes(self) -> list[str]:
        """Distinct node scopes, e.g. ``Default/network-WithLossCell/_backbone-Net/fc1-Dense``."""
        return sorted(set(self.nodes["scope"].dropna()))

    def nodes_of_type(self, *op_types: str) -> pd.DataFrame:
        """Nodes whose op type is one of ``op_types`` (case-insensitive)."""
        wanted = {op.lower() for op in op_types}
        return self.nodes[self.nodes["op_type"].str.lower().isin(wanted)]

    @cached_property
    def _data_edges(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        inputs: dict[str, list[str]] = {}
        users: dict[str, list[str]] = {}
        data = self.edges[self.edges["edge_type"] == "data"]
        for source, target in zip(data["source"], data["target"], strict=True):
            inputs.setdefault(target, []).append(source)
            users.setdefault(source, []).append(target)
        return inputs, users

    def inputs(self, name: str) -> list[str]:
        """The data inputs of node ``name`` in their order (node, parameter or constant names)."""
        return self._data_edges[0].get(name, [])

    def users(self, name: str) -> list[str]:
        """Names of the nodes that take ``name`` as a data input, once per use."""
        return self._data_edges[1].get(name, [])

    @cached_property
    def _constants(self) -> dict[str, Any]:
        return dict(zip(self.constants["name"], self.constants["value"], strict=True))

    def is_constant(self, name: str) -> bool:
        """Whether ``name`` is one of the graph's constants (``cst3``)."""
        return name in self._constants

    def constant(self, name: str) -> Any:
        """The decoded value of constant ``name`` (None if it is not a constant).

        Tensor constants are written with their shape but without data in
        MindSpore 2.x graphs, so they decode to an empty list.
        """
        return self._constants.get(name)

    @cached_property
    def _parameter_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.parameters["name"])}

    def is_parameter(self, name: str) -> bool:
        """Whether ``name`` is a graph parameter (an input of the graph or a weight)."""
        return name in self._parameter_index

    def parameter(self, name: str) -> pd.Series | None:
        """The parameter row called ``name`` (dtype, shape, size), or None."""
        index = self._parameter_index.get(name)
        return None if index is None else self.parameters.iloc[index]


def graph_from_proto(proto: pb.GraphProto, file: str) -> Graph:
    """Build a :class:`Graph` from a ``GraphProto``."""
    nodes: dict[str, list[Any]] = {column: [] for column in SCHEMAS["nodes"]}
    edges: dict[str, list[Any]] = {"source": [], "target": [], "edge_type": []}
    for node in proto.node:
        dtype, shape = _type_of(node.output_type)
        nodes["name"].append(node.name)
        nodes["op_type"].append(node.op_type)
        nodes["scope"].append(node.scope)
        nodes["full_name"].append(node.full_name)
        nodes["instance_name"].append(node.instance_name)
        nodes["attributes"].append({a.name: decode_value(a.value) for a in node.attribute})
        nodes["output_dtype"].append(dtype)
        nodes["output_shape"].append(shape)
        for edge in node.input:
            edges["source"].append(edge.name)
            edges["target"].append(node.name)
            edges["edge_type"].append("control" if edge.type == pb.InputProto.CONTROL_EDGE else "data")
    parameters: dict[str, list[Any]] = {"name": [], "dtype": [], "shape": [], "size": [], "has_default": []}
    for parameter in proto.parameters:
        dtype, shape = _type_of(parameter.type)
        parameters["name"].append(parameter.name)
        parameters["dtype"].append(dtype)
        parameters["shape"].append(shape)
        size = None
        if shape is not None:
            size = 1
            for dim in shape:
                size *= dim
        parameters["size"].append(size)
        parameters["has_default"].append(parameter.HasField("default_val"))
    constants: dict[str, list[Any]] = {"name": [], "dtype": [], "value": []}
    for constant in proto.const_vals:
        constants["name"].append(constant.key)
        constants["dtype"].append(dtype_name(constant.value.dtype))
        constants["value"].append(decode_value(constant.value))
    return Graph(
        name=proto.name,
        file=file,
        nodes=build_frame("nodes", nodes),
        edges=build_frame("edges", edges),
        parameters=build_frame("parameters", parameters),
        constants=build_frame("constants", constants),
    )
