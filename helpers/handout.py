"""The handout's HTML pages, whole: each page carries the scripts its outputs need (the widget
manager with require.js where the page has widgets, the Mermaid renderer where it has diagrams),
so an offline classroom's browser shows the heat-map, the explorer's last state and every diagram.

nbconvert's pages load those scripts from public CDNs. Here they come from the npm registry once,
pinned by version and checked by SHA-256, into the lab's cache (beside the Python environment and
the Kubernetes binaries), and are written into the page as data: URLs: a page opened from disk
(file://) may not load a module from a neighbouring file, but may from a data: URL.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
from pathlib import Path

from . import shell

# name, version, the tarball's SHA-256, the file inside it
ASSETS = {
    "mermaid": (
        "mermaid",
        "11.17.2",
        "6ad2f42c3fc26bbf9e45cbb6d11898972573ea52b33a5f4ff51952899f950ffd",
        "package/dist/mermaid.min.js",
    ),
    "widgets": (
        "@jupyter-widgets/html-manager",
        "1.0.15",
        "2b9d65cb7913e1c7d671757a10008b32c9c2448d4429513371e55c07d6107638",
        "package/dist/embed-amd.js",
    ),
    "require": (
        "requirejs",
        "2.3.8",
        "777158e89275e16bd51aec3ef714fbcb5dc45789e7078659933bc814916d7dec",
        "package/require.js",
    ),
}


class HandoutError(RuntimeError):
    pass


def _cache() -> Path:
    base = os.environ.get("EKS_LAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "eks-security-lab"
    )
    return Path(base) / "handout-assets"


def asset(key: str) -> bytes:
    """The file KEY names, from its pinned npm tarball (fetched with `npm pack` the first time)."""
    name, version, sha256, member = ASSETS[key]
    folder = _cache()
    tarball = folder / f"{name.replace('/', '-').lstrip('@')}-{version}.tgz"
    if not tarball.exists():
        folder.mkdir(parents=True, exist_ok=True)
        r = shell.run(
            ["npm", "pack", f"{name}@{version}", "--pack-destination", str(folder)],
            cwd=str(folder),
            timeout=300,
        )
        if r.returncode != 0 or not tarball.exists():
            raise HandoutError(
                f"could not fetch {name}@{version} from the npm registry for the offline handout "
                f"({(r.stderr or r.stdout).strip()[-300:]}); with npm and a network once, it is "
                "cached for good"
            )
    data = tarball.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        tarball.unlink()
        raise HandoutError(f"{tarball.name} is not the pinned {name}@{version}: removed, run again")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.extractfile(member).read()


def _data_url(mime: str, body: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(body).decode()}"


def _has_mermaid(nb) -> bool:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = (out.get("data") or {}).get("text/markdown", "")
            if "```mermaid" in ("".join(text) if isinstance(text, list) else text):
                return True
        if cell.cell_type == "markdown" and "```mermaid" in cell.source:
            return True
    return False


_MERMAID_GLOBAL = b'globalThis["mermaid"] = globalThis.__esbuild_esm_mermaid_nm["mermaid"].default;'


def _mermaid_module() -> bytes:
    """The page imports the renderer as a module and takes its default export; the pinned file is
    a script that leaves it in a `var`, which a module keeps to itself: export it instead. Its
    bundled libraries would register with require.js (there for the widgets) if they saw it, and
    require.js refuses an anonymous module it did not ask for: the module hides `define`."""
    script = asset("mermaid")
    if _MERMAID_GLOBAL not in script:
        raise HandoutError("the pinned mermaid.min.js no longer ends as expected")
    return (
        b"var define;\n"
        + script.replace(_MERMAID_GLOBAL, b"")
        + (b"\nexport default __esbuild_esm_mermaid_nm.mermaid.default;\n")
    )


def exporter(nb):
    """An HTMLExporter for NB whose page needs no network."""
    from nbconvert import HTMLExporter

    settings = {"mathjax_url": "", "mermaid_layout_elk_js_url": ""}  # neither is used here
    if "widgets" in nb.metadata:
        settings["widget_renderer_url"] = _data_url("text/javascript", asset("widgets"))
        settings["require_js_url"] = _data_url("text/javascript", asset("require"))
    else:
        settings["require_js_url"] = ""
    if _has_mermaid(nb):
        settings["mermaid_js_url"] = _data_url("text/javascript", _mermaid_module())
    return HTMLExporter(**settings)


def html(nb, warn=None) -> str:
    """NB's page. Where the scripts cannot be had (no npm, no network the first time), WARN is
    told and the page is nbconvert's own, which loads them from the internet when opened."""
    try:
        made = exporter(nb)
    except HandoutError as e:
        if warn is None:
            raise
        from nbconvert import HTMLExporter

        warn(f"{e}; this page will load its scripts from the internet")
        made = HTMLExporter()
    body, _ = made.from_notebook_node(nb)
    return body
