"""Every notebook runs headless, twice in a row, against the test sandbox (no errors allowed: a cell
that shows a failure asserts the failure it shows): the lessons, then their solutions notebooks,
whose every exercise check must say ✖ before its solution and ✔ after it. The notebooks whose
answers depend on how the cluster authenticates (the creator's identity, aws-auth or access
entries) run again, once, on a cluster created in API_AND_CONFIG_MAP mode, as clusters are made
today, and on one created in API mode (access entries alone): that they run again is proven by
the twice-run on CONFIG_MAP, and by 07's, which runs twice on a CONFIG_MAP cluster it moves forward
(its second run starts on access entries). The others do not depend on the mode: they run on
CONFIG_MAP only. The Korean edition (notebooks/ko/) runs once each, on CONFIG_MAP (07 on its fresh
cluster)."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers import kernels

from .conftest import own_sandbox, using

pytestmark = pytest.mark.sandbox
HERE = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(HERE.glob("[0-9][0-9]_*.ipynb")) + sorted((HERE / "solutions").glob("[0-9][0-9]_*.ipynb"))
# the Korean edition (tools/i18n.py) has the English code cells: that a notebook runs again and how
# it differs between modes are proven by the English runs, so each Korean one runs once, on the
# session's cluster (07 on its fresh one, below), which keeps CI within its time
KOREAN = sorted((HERE / "ko").glob("[0-9][0-9]_*.ipynb")) + \
    sorted((HERE / "ko" / "solutions").glob("[0-9][0-9]_*.ipynb"))
# 07 moves a CONFIG_MAP cluster to access entries for good: it runs on clusters of its own (below)
NOTEBOOKS = [p for p in ALL + KOREAN if not p.name.startswith("07")]


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(HERE).with_suffix("")) for p in paths]


def run_in_a_row(path: Path, tmp_path: Path, runs: int = 2) -> None:
    """Run PATH RUNS times in a row (a Korean notebook once)."""
    for attempt in range(1, 2 if "ko" in path.relative_to(HERE).parts else runs + 1):
        nb = nbformat.read(path, as_version=4)
        with kernels.private_sockets() as cfg:  # as `./lab series run` and JupyterLab start kernels
            client = NotebookClient(nb, timeout=120, kernel_name="python3", config=cfg,
                                    resources={"metadata": {"path": str(tmp_path)}})
            # the kernel learns which notebook it runs as JupyterLab tells it: a notebooks/ko/ one speaks Korean
            client.execute(env={**os.environ, "JPY_SESSION_NAME": str(path)})
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], f"run {attempt}"
        for cell in [c for c in nb.cells if c.cell_type == "code" and "lab.preflight(" in c.source]:
            # the helpers spoke the edition's language: the preflight table's row (the tools' own
            # words elsewhere stay English in both, e.g. EKS refusing to move the mode back)
            shown = "".join(str(o.get("data", {}).get("text/html", "")) for o in cell.outputs)
            korean = "ko" in path.relative_to(HERE).parts
            assert ("인증 모드" if korean else "authentication mode") in shown
            assert ("authentication mode" if korean else "인증 모드") not in shown


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_notebook_runs_twice(path, sb, tmp_path):
    assert os.environ.get("EKS_LAB_STATE") == str(sb.state_dir)  # the kernel inherits the test sandbox
    run_in_a_row(path, tmp_path)


# 02 (the creator's username and rights), 03 (aws-auth on a cluster that starts without it),
# 06 (whoami), 07 (access entries); the others do not depend on the authentication mode
MODE_DEPENDENT = [p for p in ALL if p.name[:2] in ("02", "03", "06", "07")]
ACCESS_LESSON = [p for p in ALL + KOREAN if p.name.startswith("07")]


@pytest.mark.parametrize("path", MODE_DEPENDENT, ids=[p.stem for p in MODE_DEPENDENT])
def test_notebook_runs_on_access_entries(path, sb_api, tmp_path):
    """On the session's API_AND_CONFIG_MAP sandbox (README's cluster: the creator has an entry)."""
    with using(sb_api):
        run_in_a_row(path, tmp_path, runs=1)


class TestOnAPIMode:
    """A cluster created in API mode: access entries alone, aws-auth never read. (Each of these
    sandboxes lives as long as its class, so no more than one extra runs at a time.)"""

    @pytest.fixture(scope="class")
    @classmethod
    def sb_api_only(cls, tmp_path_factory, sb):
        with own_sandbox(tmp_path_factory, "sandbox-api", "API") as other:
            yield other

    @pytest.mark.parametrize("path", MODE_DEPENDENT, ids=[p.stem for p in MODE_DEPENDENT])
    def test_notebook_runs(self, path, sb_api_only, tmp_path):
        assert os.environ.get("EKS_LAB_STATE") == str(sb_api_only.state_dir)
        run_in_a_row(path, tmp_path, runs=1)


class TestOnAFreshConfigMapCluster:
    """A new CONFIG_MAP cluster, for 07 to move forward as a learner's sandbox would be."""

    @pytest.fixture(scope="class")
    @classmethod
    def sb_fresh_config_map(cls, tmp_path_factory, sb):
        with own_sandbox(tmp_path_factory, "sandbox-config-map", "CONFIG_MAP") as other:
            yield other

    @pytest.mark.parametrize("path", ACCESS_LESSON, ids=ids(ACCESS_LESSON))
    def test_access_lesson_moves_it_forward(self, path, sb_fresh_config_map, tmp_path):
        assert os.environ.get("EKS_LAB_STATE") == str(sb_fresh_config_map.state_dir)
        run_in_a_row(path, tmp_path)
