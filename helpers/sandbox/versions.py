"""Which Kubernetes and etcd releases the sandbox runs.

The go.mod files under gomod/ are the single place the versions are pinned: the Go build
uses them as they are, and this module reads them so Python never repeats a version.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

GOMOD_DIR = Path(__file__).with_name("gomod")
KUBERNETES_MODULE = GOMOD_DIR / "kubernetes"
ETCD_MODULE = GOMOD_DIR / "etcd"


def _required_version(gomod: Path, module: str) -> str:
    text = gomod.read_text()
    m = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.M)
    if not m:
        raise RuntimeError(f"{gomod} does not require {module}; the pin is broken")
    return m.group(1)


def _go_directive(gomod: Path) -> tuple[int, ...]:
    m = re.search(r"^go\s+(\d+(?:\.\d+)*)", gomod.read_text(), re.M)
    if not m:
        raise RuntimeError(f"{gomod} has no go directive")
    return tuple(int(p) for p in m.group(1).split("."))


@dataclass(frozen=True)
class Pins:
    kubernetes: str  # e.g. "v1.36.3"
    etcd: str  # e.g. "v3.6.8"
    go_min: tuple[int, ...]  # the newest go directive of the two modules
    fingerprint: str  # changes whenever go.mod/go.sum change, so the cache key follows

    @property
    def kubernetes_minor(self) -> str:
        return self.kubernetes.split(".")[1]

    @property
    def cache_key(self) -> str:
        return f"k8s-{self.kubernetes}-etcd-{self.etcd}-{self.fingerprint}"


def pins() -> Pins:
    digest = hashlib.sha256()
    for module in (KUBERNETES_MODULE, ETCD_MODULE):
        for name in ("go.mod", "go.sum"):
            digest.update((module / name).read_bytes())
    return Pins(
        kubernetes=_required_version(KUBERNETES_MODULE / "go.mod", "k8s.io/kubernetes"),
        etcd=_required_version(ETCD_MODULE / "go.mod", "go.etcd.io/etcd/server/v3"),
        go_min=max(
            _go_directive(KUBERNETES_MODULE / "go.mod"), _go_directive(ETCD_MODULE / "go.mod")
        ),
        fingerprint=digest.hexdigest()[:10],
    )
