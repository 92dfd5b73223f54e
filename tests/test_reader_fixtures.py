"""The reader on real MindSpore output: every kind of record, file order, lineage, graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import FIXTURES, read_fixture

from summary_doctor import find_runs, read_run
from summary_doctor.reader.frames import SCHEMAS


def test_collector_run_has_loss_histograms_graph_and_lineage():
    run = read_fixture("healthy_mlp")
    assert set(run.scalars["tag"]) == {"loss/auto"}
    assert {"fc1.weight/auto", "fc1.bias/auto"} <= set(run.histograms["tag"])
    assert run.steps[0] == 1
    loss = run.scalar_series("loss/auto")
    assert loss.index.is_monotonic_increasing and np.isfinite(loss).all()
    assert run.graph is not None and "MatMul" in set(run.graph.nodes["op_type"])
    assert {"fc1.weight", "fc1.bias"} <= set(run.graph.parameters["name"])
    hyper = run.lineage.hyperparameters
    assert hyper["optimizer"] and hyper["batch_size"] > 0 and hyper["epoch"] > 0
    assert 0 < hyper["learning_rate"] < 1
    assert "acc" in run.lineage.metrics
    assert "GeneratorDataset" in set(run.lineage.dataset_ops["op_type"])


def test_histogram_statistics_agree_with_decoded_buckets():
    run = read_fixture("healthy_mlp")
    for index in run.histograms.index[:10]:
        row = run.histograms.loc[index]
        buckets = run.histogram_buckets(index)
        assert len(buckets) > 0
        assert buckets["count"].sum() == row["count"] - row["nan_count"] - row["pos_inf_count"] - row["neg_inf_count"]
        assert buckets["left"].iloc[0] == row["min"]
        assert np.isclose(buckets["left"].iloc[-1] + buckets["width"].iloc[-1], row["max"])


def test_summary_operators_of_every_kind_are_read():
    run = read_fixture("healthy_cnn")
    assert {"eval_loss", "eval_acc", "loss/auto"} <= set(run.scalars["tag"])
    assert {"input_hist", "label_hist"} <= set(run.histograms["tag"])
    labels = run.tensors[run.tensors["tag"] == "label_tensor"].iloc[0]
    assert labels["dtype"] == "DT_INT32" and labels["value"].dtype == np.int32
    assert labels["value"].shape == labels["shape"]
    logits = run.tensors[run.tensors["tag"] == "logits_head"].iloc[0]
    assert logits["value"].dtype == np.float32 and logits["value"].ndim == 2
    image = run.images.iloc[0]
    assert image["encoded"][:8] == b"\x89PNG\r\n\x1a\n" and image["height"] > 0 and image["width"] > 0


def test_graph_nodes_carry_attributes_scopes_and_edges():
    graph = read_fixture("healthy_cnn").graph
    conv = graph.nodes_of_type("Conv2D").iloc[0]
    assert conv["attributes"]["out_channel"] > 0 and conv["attributes"]["kernel_size"] == [3, 3]
    assert "/" in conv["scope"] and conv["full_name"].startswith(conv["scope"])
    assert len(graph.nodes_of_type("BatchNorm")) >= 1 and len(graph.nodes_of_type("Dropout")) == 1
    weight_users = graph.consumers("conv1.weight")
    assert not weight_users.empty
    assert graph.scopes() and all(isinstance(s, str) for s in graph.scopes())


def test_resumed_run_reads_files_in_order_and_marks_rewritten_steps():
    run = read_fixture("resumed")
    summaries = run.files[run.files["kind"] == "summary"]
    assert len(summaries) == 2
    assert summaries["first_step"].is_monotonic_increasing
    restart = int(summaries["first_step"].iloc[1])
    loss_rows = run.scalars[run.scalars["tag"] == "loss/auto"]
    first_file = loss_rows["file"] == summaries["file"].iloc[0]
    old_after_restart = loss_rows[first_file & (loss_rows["step"] >= restart)]
    assert not old_after_restart.empty and old_after_restart["superseded"].all()
    current = run.scalar_series("loss/auto")
    assert current.index.is_unique and current.index.max() == run.steps[1]
    assert len(loss_rows) > len(current)


def test_find_runs_walks_any_depth():
    runs = find_runs(FIXTURES)
    relative = {str(p.relative_to(FIXTURES)) for p in runs}
    assert {"ranks/rank_0", "ranks/rank_1", "healthy_mlp"} <= relative
    assert "ranks" not in relative


def test_frames_keep_their_schema_on_real_data():
    run = read_fixture("healthy_cnn")
    for name in ("scalars", "histograms", "tensors", "images", "files"):
        frame = getattr(run, name)
        assert list(frame.columns) == list(SCHEMAS[name])
        for column, dtype in SCHEMAS[name].items():
            assert str(frame[column].dtype) == dtype, (name, column)


def test_reading_twice_gives_equal_frames():
    first = read_run(FIXTURES / "healthy_mlp")
    second = read_run(FIXTURES / "healthy_mlp")
    pd.testing.assert_frame_equal(first.histograms, second.histograms)


def test_single_file_can_be_read_on_its_own():
    path = next(p for p in (FIXTURES / "healthy_mlp").iterdir() if p.name.endswith("_MS"))
    run = read_run(path)
    assert not run.scalars.empty and run.lineage.empty
