"""Write the prev/next navigation cells of every notebook (first and last cell, tagged "navigation").

    python tools/add_navigation.py           rewrite them
    python tools/add_navigation.py --check   exit 1 if any notebook's navigation is out of date
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TAG = "navigation"


def _title(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "markdown" and TAG not in c.metadata.get("tags", []))
    return first.source.splitlines()[0].lstrip("# ").strip()


def navigation(paths: list[Path], i: int) -> str:
    parts = []
    if i > 0:
        parts.append(f"◀ [{_title(paths[i - 1])}]({paths[i - 1].name})")
    parts.append("[contents](../README.md)")
    if i + 1 < len(paths):
        parts.append(f"[{_title(paths[i + 1])}]({paths[i + 1].name}) ▶")
    return " | ".join(parts)


def apply(check: bool) -> int:
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    stale = []
    for i, path in enumerate(paths):
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if TAG not in c.metadata.get("tags", [])]
        text = navigation(paths, i)
        nav = lambda: nbformat.v4.new_markdown_cell(text, metadata={"tags": [TAG]})  # noqa: E731
        new_cells = [nav(), *cells, nav()]
        if [c.source for c in new_cells] != [c.source for c in nb.cells]:
            stale.append(path.name)
            if not check:
                nb.cells = new_cells
                nbformat.write(nb, path)
    if stale:
        print(("out of date: " if check else "updated: ") + ", ".join(stale))
    return 1 if (check and stale) else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    sys.exit(apply(ap.parse_args().check))
