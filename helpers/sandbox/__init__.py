"""The offline sandbox: a real, pinned Kubernetes control plane on 127.0.0.1, with EKS's and
AWS's pieces beside it. Imported by helpers.targets.sandbox and helpers.cli only; it imports
nothing of the notebook helpers (helpers.facts aside).

Here: lifecycle (up/down/status), components/ (one module per process), layout, kubeconfigs,
common (shared by aws/ and eks/, which never import each other), pki, procs, gobuild, the
stand-in kubelet (kubelet, kubeletapi) and exec-as-pod (podexec).

    from helpers import sandbox
    sb = sandbox.up()          # build (first time), start or reuse, wait until ready
    sandbox.status()           # components, versions, ports, PIDs, health
    sandbox.down()             # stop everything it started
"""

import importlib

# Loaded on first use: the sandbox's own services (`python -m helpers.sandbox.kubelet`, ...) import
# this package too, and need none of lifecycle's, the build's or the PKI's modules (~11 MB each).
_FROM = {"BuildError": "gobuild", "binaries": "gobuild", "build": "gobuild"}


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(f".{_FROM.get(name, 'lifecycle')}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BuildError",
    "CLUSTER_NAME",
    "REGION",
    "Sandbox",
    "SandboxError",
    "binaries",
    "build",
    "current",
    "down",
    "env_lines",
    "env_vars",
    "status",
    "up",
]
