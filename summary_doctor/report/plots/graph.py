"""Small drawings of the part of the computation graph a finding is about.

A graph rule lists the nodes its verdict rests on (``evidence["graph_nodes"]``):
the layers that read a shared weight, the Softmax feeding a loss, the frozen
layers beside the trained ones and their optimizer updates. The drawing shows
those nodes, the weights they read, and the data flow between them with every
node in between contracted away (bookkeeping, activations, reshapes), laid out
left to right in the order data flows. Red marks what the finding is about,
green an optimizer update, yellow a parameter.
"""

from __future__ import annotations

from collections import defaultdict, deque
from itertools import pairwise
from typing import Any

from matplotlib.figure import Figure

from summary_doctor.findings import Finding
from summary_doctor.reader.run import Run
from summary_doctor.report.plots import curves
from summary_doctor.report.plots.style import COLORS, WIDE, message_figure, new_figure
from summary_doctor.rules import _graph
from summary_doctor.rules import _graph_ops as graph_ops
from summary_doctor.rules.api import keep_probability
from summary_doctor.rules.graph_structure import batch_norm_training

MAX_NODES = 18
PARAMETER_COLOR = "#fef3c7"
UPDATE_COLOR = "#bbf7d0"


def _query(run: Run, finding: Finding) -> _graph.GraphQuery | None:
    """The graph holding the finding's nodes (the training graph first)."""
    wanted = set(finding.evidence.get("graph_nodes", []))
    candidates = [q for q in (_graph.training_query(run), *_graph.graphs(run)) if q is not None]
    return next((q for q in candidates if wanted <= set(q.nodes())), candidates[0] if candidates else None)


def subgraph(q: _graph.GraphQuery, names: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The nodes plus the weights they read, and the edges between them with everything else contracted.

    Parameters among ``names`` (a label input) are kept as members too.
    """
    nodes = list(dict.fromkeys(n for n in names if q.op(n)))[:MAX_NODES]
    weights = set(q.weights)
    params = [p for n in nodes for p in q.reads(n) if p in weights] + [n for n in names if q.graph.is_parameter(n)]
    members = list(dict.fromkeys(params + nodes))
    inside = set(members)
    edges = []
    for node in nodes:
        for source in _contracted_sources(q, node, inside):
            edges.append((source, node))
    return members, list(dict.fromkeys(edges))


def _contracted_sources(q: _graph.GraphQuery, node: str, inside: set[str]) -> set[str]:
    """Members reached going upstream from ``node`` through non-members of the same part of the graph."""
    part, found, seen = q.part(node), set(), set()
    queue = deque(q.value_inputs(node))
    while queue:
        current = queue.popleft()
        if current in seen:
            continue
        seen.add(current)
        if current in inside:
            found.add(current)
        elif q.op(current) and q.part(current) == part:
            queue.extend(q.value_inputs(current))
    return found


def _depths(members: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path depth of each member: the column it is drawn in."""
    incoming: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        incoming[target].append(source)
    depth: dict[str, int] = {}

    def visit(name: str, trail: frozenset[str]) -> int:
        if name not in depth:
            parents = [p for p in incoming[name] if p not in trail]
            depth[name] = 1 + max((visit(p, trail | {name}) for p in parents), default=-1)
        return depth[name]

    for name in members:
        visit(name, frozenset())
    return depth


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(q: _graph.GraphQuery, name: str, shapes: bool = False) -> str:
    if not q.op(name):
        row = q.graph.parameter(name)
        shape = f"\n{tuple(row['shape'])}" if shapes and row is not None and row["shape"] is not None else ""
        return _short(name, 30) + shape
    layer = _short(_graph.layer_name(q.scope(name)) or "(top level)", 30)
    extra = ""
    if q.op(name) in ("Dropout", "Dropout2D", "Dropout3D", "DropoutGenMask", "DropoutDoMask"):
        keep = keep_probability(q, name)
        extra = "" if keep is None else f"\nkeep {keep:.2g}"
    elif q.op(name).startswith("BatchNorm"):
        training = batch_norm_training(q, name)
        extra = "" if training is None else f"\nis_training={training}"
    elif name in q.updates and not q.gradient_fed(name):
        extra = "\nno gradient"
    if shapes and q.graph.node(name)["output_shape"] is not None:
        extra += f"\n{tuple(q.graph.node(name)['output_shape'])}"
    return f"{q.op(name)}\n{layer}{extra}"


def _color(q: _graph.GraphQuery, name: str, focus: set[str]) -> str:
    if name in focus:
        return COLORS["focus"]
    if name in q.updates:
        return UPDATE_COLOR
    return PARAMETER_COLOR if not q.op(name) else COLORS["node"]


def _box(axes: Any, x: float, y: float, text: str, color: str) -> None:
    box = {"boxstyle": "round,pad=0.35", "facecolor": color, "edgecolor": COLORS["muted"], "lw": 0.5}
    axes.text(x, y, text, ha="center", va="center", fontsize=6.5, bbox=box, zorder=3)


def _extent(text: str, horizontal: bool) -> float:
    """Half the width (or height) of a label's box in points, so arrows end at the box edge."""
    lines = text.split("\n")
    return (max(map(len, lines)) * 1.9 + 6) if horizontal else (len(lines) * 4.5 + 6)


def _arrow(axes: Any, start: tuple[float, float], end: tuple[float, float], texts: tuple[str, str] = ("", "")) -> None:
    horizontal = abs(end[0] - start[0]) >= abs(end[1] - start[1])
    bend = 0.25 if abs(end[0] - start[0]) > 1.5 else 0.0
    style = {
        "arrowstyle": "-|>",
        "color": COLORS["muted"],
        "lw": 0.8,
        "shrinkA": _extent(texts[0], horizontal) if texts[0] else 4,
        "shrinkB": _extent(texts[1], horizontal) if texts[1] else 4,
        "connectionstyle": f"arc3,rad={bend}",
    }
    axes.annotate("", xy=end, xytext=start, arrowprops=style, zorder=1)


def _frame(axes: Any, positions: list[tuple[float, float]]) -> None:
    xs = [p[0] for p in positions] or [0.0]
    ys = [p[1] for p in positions] or [0.0]
    axes.set_xlim(min(xs) - 0.75, max(xs) + 0.75)
    axes.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    axes.set_axis_off()


def draw_layers(
    axes: Any, q: _graph.GraphQuery, members: list[str], edges: list[tuple[str, str]], focus: set[str], shapes=False
) -> None:
    """Draw ``members`` left to right by data flow (columns by longest path), edges as arrows."""
    depth = _depths(members, edges)
    columns: dict[int, list[str]] = defaultdict(list)
    for name in members:
        columns[depth[name]].append(name)
    position = {
        name: (float(d), (len(names) - 1) / 2 - i) for d, names in columns.items() for i, name in enumerate(names)
    }
    labels = {name: _label(q, name, shapes) for name in members}
    for source, target in edges:
        _arrow(axes, position[source], position[target], (labels[source], labels[target]))
    for name, (x, y) in position.items():
        _box(axes, x, y, labels[name], _color(q, name, focus))
    _frame(axes, list(position.values()))


def _context(q: _graph.GraphQuery, nodes: list[str]) -> list[str]:
    """Each node with the op that feeds it and the first op that uses it, so a lone node shows where it sits."""
    found = []
    for node in nodes:
        feeds = [s for s in map(q.source, q.value_inputs(node)) if q.op(s)][:1]
        users = [u for u in q.graph.users(node) if q.op(u) not in graph_ops.BOOKKEEPING or q.op(u) == "TupleGetItem"]
        after = [r for u in users[:1] for r in ([u] if q.op(u) not in graph_ops.SEE_THROUGH else _first_user(q, u))]
        found += [*feeds, node, *after[:1]]
    return list(dict.fromkeys(found))


def _first_user(q: _graph.GraphQuery, node: str) -> list[str]:
    for user in q.graph.users(node):
        if q.op(user) in graph_ops.SEE_THROUGH:
            return _first_user(q, user)
        if q.op(user) not in graph_ops.BOOKKEEPING:
            return [user]
    return []


def _members(q: _graph.GraphQuery, finding: Finding) -> tuple[list[str], list[tuple[str, str]], set[str]]:
    """What to draw for a finding: its nodes (with context or parameters), the edges, the red ones."""
    nodes = [n for n in finding.evidence.get("graph_nodes", []) if q.op(n) or q.graph.is_parameter(n)][:MAX_NODES]
    params = [p for p in finding.evidence.get("parameters", finding.tags) if q.graph.is_parameter(p)]
    if finding.id in ("graph.weight-sharing", "graph.node-connection"):
        readers = {n: [p for p in params if p in q.reads(n) or q.updates.get(n) == p] for n in nodes}
        edges = [(p, n) for n, ps in readers.items() for p in ps]
        focus = set(params) if finding.id == "graph.weight-sharing" else set(nodes)
        return params + nodes, edges, focus
    shown = _context(q, nodes) if finding.id in ("graph.node-mode", "api.dropout-keep-prob") else nodes
    members, edges = subgraph(q, shown)
    listed = set(finding.evidence.get("graph_nodes", []))
    members = [m for m in members if q.op(m) or m in listed]
    edges = [(s, t) for s, t in edges if s in members and t in members]
    return members, edges, set(finding.evidence.get("graph_focus", nodes))


def freezing_rows(axes: Any, q: _graph.GraphQuery, frozen: set[str]) -> None:
    """One row per layer weight, in data-flow order: its optimizer update (or none), the weight, its layer op."""
    kernels = [p for p in q.weights if q.layer_weights(p, graph_ops.KERNEL_OPS)][:MAX_NODES]
    ys = [-float(row) for row in range(len(kernels))]
    ops = [_label(q, q.layer_weights(p, graph_ops.KERNEL_OPS)[0]) for p in kernels]
    for y, parameter, op in zip(ys, kernels, ops, strict=True):
        name = _short(parameter, 30)
        updates = q.updated.get(parameter, [])
        if updates:
            update = _label(q, updates[0])
            _box(axes, 0.0, y, update, UPDATE_COLOR)
            _arrow(axes, (0.0, y), (1.2, y), (update, name))
        else:
            axes.text(0.0, y, "no optimizer update", ha="center", va="center", color=COLORS["bad"], fontsize=7)
        _box(axes, 1.2, y, name, COLORS["focus"] if parameter in frozen else PARAMETER_COLOR)
        _box(axes, 2.4, y, op, COLORS["node"])
        _arrow(axes, (1.2, y), (2.4, y), (name, op))
    for (upper, above), (lower, below) in pairwise(zip(ys, ops, strict=True)):
        _arrow(axes, (2.4, upper), (2.4, lower), (above, below))
    _frame(axes, [(0.0, 0.0), (2.4, ys[-1] if ys else 0.0)])


def _size(nodes: int, columns: int) -> tuple[float, float]:
    return (max(4.8, min(9.0, 1.7 * columns + 1.2)), max(1.6, min(6.5, 0.55 * nodes + 0.9)))


TITLES = {
    "graph.weight-sharing": "one parameter (red) read by several layer ops",
    "graph.weight-freezing": "optimizer updates -> layer weights -> layer ops, in data-flow order (red: frozen)",
    "graph.node-connection": "optimizer updates (red) that no gradient reaches",
    "graph.node-mode": "layers compiled in the wrong mode (red), with what feeds them and what they feed",
    "graph.loss-function": "what feeds the loss (red)",
    "api.dropout-keep-prob": "the Dropout (red), its keep probability and its neighbours",
    "api.div-no-nan": "divisions by a computed divisor (red) and their inputs",
}


def graph_figure(run: Run, finding: Finding) -> Figure:
    """The subgraph the finding rests on (see the module docstring)."""
    q = _query(run, finding)
    if q is None:
        return message_figure("no computation graph recorded (SummaryCollector records it by default)")
    if finding.id == "graph.weight-freezing":
        kernels = [p for p in q.weights if q.layer_weights(p, graph_ops.KERNEL_OPS)]
        figure = new_figure(_size(min(len(kernels), MAX_NODES), 3))
        axes = figure.add_subplot()
        freezing_rows(axes, q, set(finding.evidence.get("frozen", finding.tags)))
    else:
        members, edges, focus = _members(q, finding)
        if not members:
            return message_figure("the finding names no node or parameter of the recorded graph")
        depth = _depths(members, edges)
        height = max(sum(1 for d in depth.values() if d == k) for k in set(depth.values()))
        figure = new_figure(_size(height, max(depth.values()) + 1))
        axes = figure.add_subplot()
        draw_layers(axes, q, members, edges, focus, shapes=finding.id == "graph.loss-function")
    axes.set_title(TITLES.get(finding.id, "graph around the finding"), loc="left")
    return figure


def division_figure(run: Run, finding: Finding) -> Figure:
    """The loss turning NaN beside the divisions that can produce it."""
    q = _query(run, finding)
    nodes = list(finding.evidence.get("graph_nodes", []))
    if q is None or not nodes:
        return curves.loss_figure(run, finding)
    members, edges, focus = _members(q, finding)
    figure = new_figure((WIDE[0], WIDE[1] * 1.8))
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 2])
    if not curves.draw_loss(top, run, finding):
        top.set_axis_off()
    top.set_xlabel("step")
    draw_layers(bottom, q, members, edges, focus)
    bottom.set_title(TITLES["api.div-no-nan"], loc="left")
    return figure
