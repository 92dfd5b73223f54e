"""Print, as JSON, everything MindInsight's own loader keeps for summary run directories.

Runs inside a MindInsight 2.3.1 environment (protobuf 3.20.1, numpy<2,
pandas<2), never with summary-doctor imported: ``test_mindinsight_diff.py``
compares its output with ``read_run``. Usage::

    python mindinsight_dump.py RUN_DIR [RUN_DIR ...] > dump.json

For each run it loads the directory with ``MSDataLoader`` (the loader behind
MindInsight's UI) and reads its lineage with ``filter_summary_lineage``.
MindInsight samples (a reservoir per tag: 1000 scalars, 50 histograms, 20
tensors, 10 images) and caps the number of tags; the dump holds exactly the
samples it kept, and the caps, so the comparison can tell "dropped by
MindInsight" from "missing".
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys

_PLUGINS = ("scalar", "histogram", "tensor", "image", "graph")


def _number(value):
    """JSON has no NaN or infinity: spell them out."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _sample(plugin, tag, sample):
    value = sample.value
    row = {"tag": tag, "step": int(sample.step), "wall_time": float(sample.wall_time), "file": sample.filename}
    if plugin == "scalar":
        row["value"] = _number(value)
    elif plugin == "histogram":
        row["count"] = int(value.count)
        row["min"] = _number(value.min)
        row["max"] = _number(value.max)
        row["buckets"] = [[_number(b.left), _number(b.width), int(b.count)] for b in value.histogram._original_buckets]
    elif plugin == "tensor":
        row["dims"] = [int(d) for d in value.dims]
        row["data_type"] = int(value.data_type)
        row["values"] = [_number(v) for v in value.tensor_value.ravel().tolist()]
    elif plugin == "image":
        row["height"] = int(value.height)
        row["width"] = int(value.width)
        row["sha256"] = hashlib.sha256(value.encoded_image).hexdigest()
    elif plugin == "graph":
        nodes = value._normal_node_map.values()
        row["ops"] = sorted([node.full_name, node.type] for node in nodes if node.full_name)
        row["parameters"] = sorted(node.name for node in nodes if node.type == "Parameter")
    return row


def _events(run_dir):
    from mindinsight.datavisual.data_transform.ms_data_loader import MSDataLoader

    loader = MSDataLoader(run_dir)
    loader.load()
    events_data = loader.get_events_data()
    samples = {plugin: [] for plugin in _PLUGINS}
    for plugin in _PLUGINS:
        try:
            tags = events_data.list_tags_by_plugin(plugin)
        except KeyError:
            continue
        for tag in tags:
            name = tag[: -len(plugin) - 1] if tag.endswith("/" + plugin) else tag
            samples[plugin].extend(_sample(plugin, name, sample) for sample in events_data.tensors(tag))
    return samples


def _lineage(run_dir):
    from mindinsight.lineagemgr.model import filter_summary_lineage

    result = filter_summary_lineage(summary_base_dir=run_dir)
    objects = [obj for obj in result.get("object", []) if obj.get("summary_dir") == "./"]
    return json.loads(json.dumps(objects[0], default=str)) if objects else None


def _caps():
    from mindinsight.conf import constants

    return {
        "scalar": constants.MAX_SCALAR_STEP_SIZE_PER_TAG,
        "histogram": constants.MAX_HISTOGRAM_STEP_SIZE_PER_TAG,
        "tensor": constants.MAX_TENSOR_STEP_SIZE_PER_TAG,
        "image": constants.MAX_IMAGE_STEP_SIZE_PER_TAG,
        "tags": constants.MAX_TAG_SIZE_PER_EVENTS_DATA,
        "tensor_tags": constants.MAX_TENSOR_TAG_SIZE,
    }


def main(run_dirs):
    logging.disable(logging.CRITICAL)
    import mindinsight

    dump = {"mindinsight": mindinsight.__version__, "caps": _caps(), "runs": {}}
    for run_dir in run_dirs:
        dump["runs"][run_dir] = {"samples": _events(run_dir), "lineage": _lineage(run_dir)}
    json.dump(dump, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
