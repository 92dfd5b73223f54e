"""The graph neighbourhood of a finding: a small node-link drawing around its tags.

For a frozen weight the question is "does an optimizer node update it?",
for a connection or mode finding "what feeds what": both are answered by the
few nodes one or two edges away, not by the whole graph. Bookkeeping nodes
(UpdateState, Depend) are skipped so the drawing stays readable.
"""

from __future__ import annotations

from collections import defaultdict

from matplotlib.figure import Figure

from summary_doctor.findings import Finding
from summary_doctor.reader.graph import Graph
from summary_doctor.reader.run import Run
from summary_doctor.report.plots import data
from summary_doctor.report.plots.style import COLORS, message_figure, new_figure

MAX_NODES = 22
_SKIP = {"UpdateState", "Depend", "MakeTuple"}
_OPTIMIZERS = ("Apply", "Adam", "SGD", "Momentum", "Lamb", "Ftrl", "Assign")


def _seeds(graph: Graph, tags: tuple[str, ...]) -> list[str]:
    known = set(graph.edges["source"]) | set(graph.nodes["name"])
    seeds = []
    for tag in tags:
        name = data.parameter_name(tag)
        if name in known:
            seeds.append(name)
            continue
        hits = graph.nodes[(graph.nodes["scope"] == tag) | (graph.nodes["full_name"] == tag)]
        seeds.extend(hits["name"].head(4))
    return list(dict.fromkeys(seeds))


def _label(graph: Graph, name: str) -> str:
    node = graph.node(name)
    if node is None:
        return name
    scope = str(node["scope"]).rsplit("/", 1)[-1].split("-")[0]
    return f"{node['op_type']}\n{scope}" if scope else str(node["op_type"])


def _op(graph: Graph, name: str) -> str:
    node = graph.node(name)
    return "" if node is None else str(node["op_type"])


def neighbourhood(graph: Graph, seeds: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Nodes within two edges downstream and one upstream of the seeds, with their layer."""
    edges = graph.edges[graph.edges["edge_type"] == "data"]
    forward: dict[str, list[str]] = defaultdict(list)
    backward: dict[str, list[str]] = defaultdict(list)
    for source, target in zip(edges["source"], edges["target"], strict=False):
        forward[source].append(target)
        backward[target].append(source)
    layer = {seed: 0 for seed in seeds}
    frontier = list(seeds)
    for depth in (1, 2):
        frontier = [t for n in frontier for t in forward[n] if t not in layer and _op(graph, t) not in _SKIP]
        for name in frontier[: MAX_NODES - len(layer)]:
            layer.setdefault(name, depth)
    for name in [n for n, d in layer.items() if d == 1]:
        for source in backward[name]:
            keep = not source.startswith("cst") and _op(graph, source) not in _SKIP
            if keep and source not in layer and len(layer) < MAX_NODES:
                layer[source] = -1 if source not in seeds else 0
    links = [(s, t) for s, t in zip(edges["source"], edges["target"], strict=False) if s in layer and t in layer]
    return layer, links


def _positions(layer: dict[str, int]) -> dict[str, tuple[float, float]]:
    columns: dict[int, list[str]] = defaultdict(list)
    for name, depth in layer.items():
        columns[depth].append(name)
    positions = {}
    for depth, names in columns.items():
        for i, name in enumerate(names):
            positions[name] = (float(depth), (len(names) - 1) / 2 - i)
    return positions


def graph_figure(run: Run, finding: Finding) -> Figure:
    """Draw the finding's neighbourhood; parameters of the finding in red, optimizer updates in green."""
    graph = run.graph
    if graph is None:
        return message_figure("no computation graph recorded (SummaryCollector records it by default)")
    seeds = _seeds(graph, finding.tags)
    if not seeds:
        return message_figure("the finding's tags are not nodes or parameters of the recorded graph")
    layer, links = neighbourhood(graph, seeds)
    positions = _positions(layer)
    height = max(len([d for d in layer.values() if d == k]) for k in set(layer.values()))
    figure = new_figure((6.4, max(2.0, 0.42 * height + 0.6)))
    axes = figure.add_subplot()
    axes.set_axis_off()
    for source, target in links:
        axes.annotate(
            "",
            xy=positions[target],
            xytext=positions[source],
            arrowprops={
                "arrowstyle": "-|>",
                "color": COLORS["muted"],
                "lw": 0.8,
                "shrinkA": 14,
                "connectionstyle": "arc3,rad=0.08",
                "shrinkB": 14,
            },
        )
    for name, (x, y) in positions.items():
        is_update = _op(graph, name).startswith(_OPTIMIZERS)
        color = COLORS["focus"] if name in seeds else ("#bbf7d0" if is_update else COLORS["node"])
        text = name if graph.node(name) is None else _label(graph, name)
        axes.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=6.5,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": color, "edgecolor": COLORS["muted"], "lw": 0.5},
        )
    xs = [p[0] for p in positions.values()]
    ys = [p[1] for p in positions.values()]
    axes.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    axes.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    axes.set_title("graph around " + ", ".join(seeds[:3]) + " (red: finding, green: optimizer update)", loc="left")
    return figure
