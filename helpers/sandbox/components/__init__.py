"""The sandbox's processes, one module each, the way envtest keeps one file per process.

Each module declares a `COMPONENT`: its name (PID file, log file, status row), the ports it
listens on, its command line, its health probe and what `up` waits for, how long it may take to
stop, and its version. `lifecycle` starts, waits for and stops them; nothing else needs to know
a process's flags.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import gobuild, pki
from ..layout import Config, Layout


@dataclass(frozen=True)
class Context:
    """Everything a command line is made of."""

    bins: gobuild.Binaries
    lay: Layout
    cfg: Config
    keys: pki.ClusterPKI


@dataclass(frozen=True)
class Component:
    name: str  # PID file, log file and status row
    program: str  # what its command line names (to find strays)
    ports: tuple[str, ...]  # Config.ports it listens on; the first is shown
    argv: Callable[[Context], list[str]]
    healthy: Callable[[Layout, Config], bool]  # may raise OSError/SSLError: counts as not yet
    ready: str  # what `up` says it waits for
    grace: float  # seconds from SIGTERM to SIGKILL
    version: Callable[[], str]
    python: bool = False  # a module of ours, run with this interpreter
    env: tuple[tuple[str, str], ...] = ()  # set in its environment (on top of ours)


def python_argv(module: str, lay: Layout) -> list[str]:
    return [sys.executable, "-m", module, f"--state={lay.root}"]


def python_service(
    name: str, module: str, ports: tuple[str, ...], healthy, ready: str, version: Callable[[], str]
) -> Component:
    """One of our Python services, run as `python -m MODULE --state=DIR`: it keeps nothing a hard
    stop could damage, so two seconds' grace."""
    return Component(
        name=name,
        program=module,
        ports=ports,
        argv=lambda c: python_argv(module, c.lay),
        healthy=healthy,
        ready=ready,
        grace=2.0,
        version=version,
        python=True,
    )


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    pkg_parent = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_parent, env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def process_env(c: Component) -> dict[str, str] | None:
    """The environment C runs in: ours (with the package on the path, for our modules), plus
    C's own settings; None: ours, unchanged."""
    if not (c.python or c.env):
        return None
    env = python_env() if c.python else dict(os.environ)
    env.update(c.env)
    return env


def all_components() -> tuple[Component, ...]:
    """In start order (stopped in reverse, etcd last)."""
    from . import apiserver, aws, controller_manager, etcd, kubelet

    return (
        etcd.COMPONENT,
        apiserver.COMPONENT,
        controller_manager.COMPONENT,
        kubelet.COMPONENT,
        aws.COMPONENT,
    )


def by_name(name: str) -> Component:
    return next(c for c in all_components() if c.name == name)
