"""The instructor's handout works offline (issue #17): a page carries its widget manager, widget
state and Mermaid renderer, and a browser with no network shows the diagram and the widget. The
same page as nbconvert makes it by default shows neither: the check can fail."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers import handout

ROOT = Path(__file__).resolve().parents[1]

DIAGRAM = "sequenceDiagram\n    participant kubectl\n    participant webhook\n    kubectl->>webhook: TokenReview"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """A small notebook like the lessons: a Mermaid diagram from helpers.diagrams and a widget,
    executed, so its widget state is saved as the handout saves it."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"from helpers import diagrams\ndiagrams.show({DIAGRAM!r})"),
        nbformat.v4.new_code_cell('import ipywidgets as w\nw.Button(description="can-i?")'),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    assert "widgets" in nb.metadata
    return nb


def test_a_page_loads_nothing_from_the_network(executed):
    page = handout.html(executed)
    assert not re.search(r"""(src=|import\(|Src = )["']https?://""", page), "a script still comes from a CDN"
    assert "data:text/javascript;base64," in page
    assert "application/vnd.jupyter.widget-state+json" in page  # the widgets' last state travels too


def test_a_tampered_asset_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EKS_LAB_CACHE", str(tmp_path))
    name, version, _, _ = handout.ASSETS["require"]
    folder = tmp_path / "handout-assets"
    folder.mkdir()
    (folder / f"{name}-{version}.tgz").write_bytes(b"not the package")
    with pytest.raises(handout.HandoutError, match="not the pinned"):
        handout.asset("require")
    assert not (folder / f"{name}-{version}.tgz").exists()


def _browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed (./lab test installs them as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 # no network: every name resolves to nothing, every connection to a dead proxy
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
                 "--allow-file-access-from-files"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def _rendered(browser, url: str, seconds: float = 30) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    seen = {}

    def done(b):
        seen["diagram"] = b.execute_script(
            "return document.querySelectorAll('.jp-Mermaid img, .jp-Mermaid svg').length")
        seen["widget"] = b.execute_script(
            "return [...document.querySelectorAll('button')].some(x => x.textContent.includes('can-i?'))")
        return seen["diagram"] and seen["widget"]

    try:
        WebDriverWait(browser, seconds).until(done)
    except Exception:
        pass
    return seen


def test_the_page_shows_the_diagram_and_the_widget_with_no_network(executed, tmp_path):
    from nbconvert import HTMLExporter

    ours = tmp_path / "handout.html"
    ours.write_text(handout.html(executed))
    default = tmp_path / "default.html"
    default.write_text(HTMLExporter().from_notebook_node(executed)[0])
    browser = _browser()
    try:
        seen = _rendered(browser, ours.as_uri())
        if not (seen.get("diagram") and seen.get("widget")):
            (ROOT / "build").mkdir(exist_ok=True)
            browser.save_screenshot(str(ROOT / "build" / "handout-offline-failure.png"))
        assert seen.get("diagram") and seen.get("widget"), seen
        # nbconvert's own page, offline, draws neither: what the handout fixes
        assert _rendered(browser, default.as_uri(), seconds=5) == {"diagram": 0, "widget": False}
    finally:
        browser.quit()


def test_without_npm_the_handout_still_comes_with_a_warning(executed, tmp_path, monkeypatch):
    monkeypatch.setenv("EKS_LAB_CACHE", str(tmp_path))  # nothing cached
    monkeypatch.setenv("PATH", str(tmp_path))  # and no npm to fetch with
    said = []
    page = handout.html(executed, warn=said.append)
    assert "could not fetch" in said[0] and "load its scripts from the internet" in said[0]
    assert "<html" in page
    with pytest.raises(handout.HandoutError, match="could not fetch"):
        handout.html(executed)
