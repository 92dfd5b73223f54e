"""Each data finding gets the plot made for it, drawn from the real fault fixture."""

from __future__ import annotations

import pytest
from conftest import FIXTURES

from summary_doctor.audit import audit
from summary_doctor.engine import diagnose
from summary_doctor.report.plots import choose, dataset, histograms
from summary_doctor.report.plots.style import draw_png, styled

CASES = [
    ("mlp_input_nan", "dataset.missing-values", dataset.missing_values_figure),
    ("mlp_input_spike_outliers", "dataset.outliers", dataset.outliers_figure),
    ("mlp_class_imbalance_20to1", "dataset.class-imbalance", histograms.class_counts_figure),
    ("plateau", "dataset.label-errors", dataset.label_errors_figure),
    ("cnn_raw_pixels_unnormalized", "preprocess.not-normalized", dataset.not_normalized_figure),
    ("mlp_sorted_no_shuffle", "preprocess.no-shuffle", dataset.no_shuffle_figure),
    ("mlp_eval_missing_normalize", "preprocess.train-eval-mismatch", dataset.train_eval_figure),
]


def _drawn(figure) -> int:
    """Artists on the figure's axes: lines, bars, meshes, boxes (a message figure has none)."""
    return sum(len(a.lines) + len(a.patches) + len(a.collections) for a in figure.axes)


@pytest.mark.parametrize(("name", "symptom", "draw"), CASES)
def test_data_findings_have_their_own_plot(fixture_run, name, symptom, draw):
    run = fixture_run(name)
    finding = next(f for f in diagnose(run).findings if f.id == symptom)
    assert choose(finding) is draw
    with styled():
        figure = draw(run, finding)
    assert _drawn(figure) >= 2
    assert draw_png(draw, run, finding).startswith(b"\x89PNG")


def test_rank_plot_overlays_both_ranks():
    result = audit(FIXTURES / "ranks_seed_mismatch")
    [finding] = result.findings
    assert choose(finding) is dataset.rank_figure
    with styled():
        figure = dataset.rank_figure(result.diagnoses[0].run, finding)
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["rank_0", "rank_1"]
