"""The offline sandbox: a real, pinned Kubernetes control plane on 127.0.0.1.

    from helpers import sandbox
    sb = sandbox.up()          # build (first time), start or reuse, wait until ready
    sandbox.status()           # components, versions, ports, PIDs, health
    sandbox.down()             # stop everything it started
"""
from .gobuild import BuildError, binaries, build
from .lifecycle import (CLUSTER_NAME, REGION, Sandbox, SandboxError, current, down, env_lines, env_vars,
                           status, up)

__all__ = ["BuildError", "CLUSTER_NAME", "REGION", "Sandbox", "SandboxError", "binaries", "build", "current",
           "down", "env_lines", "env_vars", "status", "up"]
