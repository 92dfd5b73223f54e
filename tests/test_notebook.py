"""``notebooks/quickstart.ipynb`` runs top to bottom without MindSpore, and is committed with its outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
QUICKSTART = NOTEBOOKS / "quickstart.ipynb"


def _text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.extend(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


def test_the_quickstart_runs_top_to_bottom() -> None:
    notebook = nbformat.read(QUICKSTART, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    text = _text(notebook)
    assert "metric.overfitting" in text and "hparam.too-many-epochs" in text  # the findings table
    assert "srcdoc=" in text  # the report, inline
    assert "not-checkable" in text and "problem" in text  # the checklist
    assert any(
        o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
        for c in notebook.cells
        for o in c.get("outputs", [])
    )


def test_the_quickstart_is_committed_with_its_outputs_and_stays_small() -> None:
    notebook = nbformat.read(QUICKSTART, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "run it: jupyter execute --inplace notebooks/quickstart.ipynb"
    assert sum(bool(cell.outputs) for cell in code) >= len(code) - 1
    assert not any(o.get("output_type") == "error" for cell in code for o in cell.outputs)
    assert QUICKSTART.stat().st_size < 300_000
    checkout = str(NOTEBOOKS.parent)
    assert checkout not in QUICKSTART.read_text(encoding="utf-8"), "outputs name this checkout's absolute path"
