"""Every notebook runs headless, twice in a row, against the test sandbox (no errors allowed: a cell
that shows a failure asserts the failure it shows): the lessons, then their solutions notebooks,
whose every exercise check must say ✖ before its solution and ✔ after it."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.sandbox
HERE = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(HERE.glob("[0-9][0-9]_*.ipynb")) + sorted((HERE / "solutions").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_twice(path, sb, tmp_path):
    assert os.environ.get("EKS_LAB_STATE") == str(sb.state_dir)  # the kernel inherits the test sandbox
    for attempt in (1, 2):
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], f"run {attempt}"
