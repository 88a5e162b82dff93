"""Run the whole series headless and keep the result: an instructor's handout.

    python -m helpers series run [--out build/series] [--lang ko]

Executes every notebook in order against the sandbox (started if needed; with
EKS_LAB_TARGET=cluster, against your cluster instead), with progress, then the solutions
notebooks, and writes the executed notebooks and an HTML page for each into the output folder
(solutions in solutions/). The committed notebooks are never touched. `--lang ko`: the Korean
edition (notebooks/ko/), the same way.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


LANGUAGES = ("en", "ko")


def notebooks(lang: str = "en") -> tuple[Path, list[Path]]:
    """The edition's folder, and its lessons then their solutions (in solutions/, as in the
    repository)."""
    if lang not in LANGUAGES:
        raise ValueError(f"no {lang!r} edition: choose one of {', '.join(LANGUAGES)}")
    base = NOTEBOOKS if lang == "en" else NOTEBOOKS / lang
    return base, sorted(base.glob("[0-9][0-9]_*.ipynb")) + sorted(
        (base / "solutions").glob("[0-9][0-9]_*.ipynb")
    )


def run(
    out: Path, progress=lambda m: print(m, file=sys.stderr, flush=True), lang: str = "en"
) -> list[dict]:
    base, paths = notebooks(lang)
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    import os

    from . import handout, kernels, target

    # The kernels import `helpers` from this checkout, however this process was started.
    root = str(NOTEBOOKS.parent)
    if root not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [root, os.environ.get("PYTHONPATH")])
        )
    t = target.current()
    progress(f"[series] target: {t.description} (each notebook's opt-ins apply on a real account)")
    t.start(quiet=False)
    out.mkdir(parents=True, exist_ok=True)
    report = []
    for i, path in enumerate(paths, 1):
        progress(f"[series] {i}/{len(paths)} {path.stem} …")
        nb = nbformat.read(path, as_version=4)
        dest = out / path.relative_to(base)
        dest.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        error = None
        try:
            with kernels.private_sockets() as cfg:
                NotebookClient(
                    nb,
                    timeout=300,
                    kernel_name="python3",
                    resources={"metadata": {"path": str(dest.parent)}},
                    config=cfg,
                ).execute(env={**os.environ, "JPY_SESSION_NAME": str(path)})  # as Jupyter names it
        except CellExecutionError as e:
            error = str(e).splitlines()[0] if str(e) else "a cell failed"
        seconds = time.monotonic() - started
        nbformat.write(nb, dest)
        dest.with_suffix(".html").write_text(handout.html(nb, warn=progress))  # works offline
        report.append(
            {
                "notebook": str(path.relative_to(base).with_suffix("")),
                "seconds": round(seconds, 1),
                "error": error,
            }
        )
        progress(
            f"[series] {i}/{len(paths)} {path.stem}: {'FAILED: ' + error if error else 'ok'} "
            f"({seconds:.0f}s)"
        )
    return report
