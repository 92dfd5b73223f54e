"""The Markdown view: ticket-ready, tables that survive pipes and backticks from tag names."""

from __future__ import annotations

from test_report_model import HOSTILE, sample_result, scrub

from summary_doctor.report import render
from summary_doctor.report.markdown import code, escape


def test_escaping_keeps_tables_intact():
    assert escape("a|b") == "a\\|b"
    assert escape("x`y") == "x\\`y"
    assert escape("<b>") == "\\<b\\>"
    assert "|" not in code("a|b").replace("\\|", "")
    assert code("a`b") == "`` a`b ``"


def test_table_rows_have_the_right_number_of_cells():
    text = render("markdown", sample_result())
    for line in text.splitlines():
        if line.startswith("| severity"):
            header_cells = line.count("|")
        if line.startswith("| warning") or line.startswith("| error") or line.startswith("| info"):
            assert line.replace("\\|", "").count("|") == header_cells
    assert "<script>" not in text
    assert HOSTILE not in text


def test_content():
    text = render("markdown", sample_result(runs=("healthy_mlp", "healthy_cnn"), cross=True))
    assert "❌ **3 error(s), 3 warning(s), 1 info**" in text
    assert "| error | `loss.diverging` | loss rose from 0.074 to 0.52 after step 150 | 150 |" in text
    assert "**Checklist**: 33 items, 21 ok." in text
    assert "-o report.html" in text
    assert "data:image" not in text


def test_markdown_golden(golden):
    text = render("markdown", sample_result(runs=("healthy_mlp", "healthy_cnn"), cross=True))
    golden("report.md", scrub(text))
