"""Build the pinned kube-apiserver, kube-controller-manager, kubectl and etcd from Go modules.

The binaries go to a per-user cache keyed by the pins (see versions.py), outside any clone,
so every clone and every CI run after the first skips the build. A directory only counts as
built once its `.complete` stamp exists: an interrupted build is thrown away and redone.
Ready-made binaries in $KUBEBUILDER_ASSETS (envtest's layout) are used where present.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import paths
from .versions import ETCD_MODULE, KUBERNETES_MODULE, Pins, pins

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kubectl")
ALL_BINARIES = ("etcd",) + KUBE_BINARIES

Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """A build that cannot go on; the message says what to do."""


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path

    @property
    def kubectl_dir(self) -> Path:
        return self.kubectl.parent

    def as_dict(self) -> dict[str, str]:
        return {
            "etcd": str(self.etcd),
            "kube-apiserver": str(self.kube_apiserver),
            "kube-controller-manager": str(self.kube_controller_manager),
            "kubectl": str(self.kubectl),
        }


def bin_dir(p: Pins | None = None) -> Path:
    return paths.cache_root() / "bin" / (p or pins()).cache_key


def _stderr_progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def go_version(go: str) -> tuple[int, ...]:
    out = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=True
    ).stdout
    m = re.match(r"go(\d+)\.(\d+)(?:\.(\d+))?", out.strip())
    if not m:
        raise BuildError(
            f"could not read the Go version from `{go} env GOVERSION` ({out.strip()!r})"
        )
    return tuple(int(x or 0) for x in m.groups())


def check_go(p: Pins) -> str:
    """Return the go command to use, or explain exactly how to get a suitable one."""
    need = ".".join(map(str, p.go_min))
    how = (
        f"Install Go {need} or newer (https://go.dev/doc/install, your package manager, or "
        f"`conda install -c conda-forge 'go>={need}'`), or set KUBEBUILDER_ASSETS to a directory "
        "holding ready-made etcd, kube-apiserver, kube-controller-manager and kubectl "
        f"{p.kubernetes}."
    )
    go = shutil.which("go")
    if not go:
        raise BuildError(
            f"Go is not installed, and it is needed to build Kubernetes {p.kubernetes}. {how}"
        )
    have = go_version(go)
    if have >= p.go_min:
        return go
    # Go 1.21+ can fetch the newer toolchain the go.mod asks for by itself, unless told not to.
    toolchain = os.environ.get("GOTOOLCHAIN", "auto")
    if have >= (1, 21) and toolchain != "local":
        return go
    raise BuildError(
        f"Go {'.'.join(map(str, have))} is too old to build Kubernetes {p.kubernetes} "
        f"(it needs Go {need}). {how}"
    )


def _assets_dir() -> Path | None:
    d = os.environ.get("KUBEBUILDER_ASSETS")
    return Path(d) if d else None


def resolve(p: Pins | None = None) -> dict[str, Path]:
    """Where each binary comes from: KUBEBUILDER_ASSETS first, then the build cache."""
    p = p or pins()
    built = bin_dir(p)
    complete = (built / ".complete").exists()
    found: dict[str, Path] = {}
    assets = _assets_dir()
    for name in ALL_BINARIES:
        if assets and os.access(assets / name, os.X_OK):
            found[name] = assets / name
        elif complete and os.access(built / name, os.X_OK):
            found[name] = built / name
    return found


def ldflags(p: Pins) -> str:
    """The version stamps upstream's hack/lib/version.sh sets, so `kubectl version` tells the truth.

    Built from a module archive there is no git commit to report: like upstream's builds from
    a source archive, the tree state says "archive". The build date is the release's own date
    from the module proxy, so the same pins always give the same stamp.
    """
    major, minor = p.kubernetes.lstrip("v").split(".")[:2]
    values = {
        "gitVersion": p.kubernetes,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "archive",
        "gitCommit": "",
        "buildDate": _release_date(p),
    }
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
        flags += [f"-X '{pkg}.{k}={v}'" for k, v in values.items()]
    return " ".join(flags)


def _release_date(p: Pins, go: str = "go") -> str:
    try:
        out = subprocess.run(
            [go, "mod", "download", "-json", f"k8s.io/kubernetes@{p.kubernetes}"],
            capture_output=True,
            text=True,
            check=True,
            cwd=KUBERNETES_MODULE,
        ).stdout
        info = json.loads(Path(json.loads(out)["Info"]).read_text())
        return time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.strptime(info["Time"][:19], "%Y-%m-%dT%H:%M:%S")
        )
    except (subprocess.CalledProcessError, KeyError, ValueError, OSError):
        return "1970-01-01T00:00:00Z"


def _go_env(go: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CGO_ENABLED="0", GOFLAGS="-buildvcs=false -mod=readonly")
    return env


def _count_packages(go: str, module: Path, targets: list[str], env: dict[str, str]) -> int:
    out = subprocess.run(
        [go, "list", "-deps", *targets], capture_output=True, text=True, cwd=module, env=env
    )
    return len(out.stdout.split()) if out.returncode == 0 else 0


def _go_build(
    go: str,
    module: Path,
    targets: list[str],
    outdir: Path,
    flags: str,
    progress: Progress,
    label: str,
) -> None:
    env = _go_env(go)
    progress(f"[build] {label}: downloading Go modules (first time only)…")
    dl = subprocess.run(
        [go, "mod", "download"], cwd=module, env=env, capture_output=True, text=True
    )
    if dl.returncode:
        raise BuildError(
            f"`go mod download` failed for {label}:\n{dl.stderr.strip()[-2000:]}\n"
            "Check that the Go module proxy is reachable (GOPROXY) and try again."
        )
    total = _count_packages(go, module, targets, env)
    progress(
        f"[build] {label}: compiling {len(targets)} command(s), {total} packages "
        "(several minutes the first time on 2 cores; later builds use Go's cache)…"
    )
    cmd = [go, "build", "-v", "-trimpath", "-ldflags", flags, "-o", str(outdir) + os.sep, *targets]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=module, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    tail: list[str] = []
    done, last_shown = 0, -1
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-40:]
        if line and " " not in line and not line.startswith("#"):
            done += 1  # `go build -v` names each package as it compiles it
        if total:
            pct = min(99, done * 100 // total)
            if pct // 5 != last_shown:
                last_shown = pct // 5
                progress(
                    f"[build] {label}: {pct:3d}% ({done}/{total} packages, "
                    f"{time.monotonic() - started:.0f}s)"
                )
    if proc.wait():
        raise BuildError(
            f"`go build` failed for {label} (exit {proc.returncode}):\n" + "\n".join(tail)
        )
    progress(f"[build] {label}: done in {time.monotonic() - started:.0f}s")


# The webhooks' compiled HTTPS front (eks/front.py): standard library only, built in seconds once
# Go has compiled its standard library, cached by a digest of its source.
FRONT_SOURCE = Path(__file__).resolve().parent / "eks" / "front_go"


def front_path() -> Path:
    digest = hashlib.sha256()
    for name in ("go.mod", "main.go"):
        digest.update((FRONT_SOURCE / name).read_bytes())
    return paths.cache_root() / "bin" / f"webhooks-front-{digest.hexdigest()[:16]}"


def front_binary() -> Path | None:
    """The built front, or None (not built: the webhooks serve HTTPS in Python)."""
    path = front_path()
    return path if os.access(path, os.X_OK) else None


def build_front(progress: Progress | None = None) -> Path | None:
    """Build the webhooks' front if it is not built; None where there is no Go to build it with
    (ready-made binaries in KUBEBUILDER_ASSETS): the webhooks then serve HTTPS in Python."""
    progress = progress or _stderr_progress
    if (built := front_binary()) is not None:
        return built
    try:
        go = check_go(pins())
    except BuildError as e:
        progress(f"[build] the webhooks' compiled front is not built ({e}); Python serves them")
        return None
    out = front_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    progress("[build] the webhooks' compiled HTTPS front (standard library only)…")
    done = subprocess.run(
        [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp), "."],
        cwd=FRONT_SOURCE,
        env=_go_env(go),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        tmp.unlink(missing_ok=True)
        raise BuildError(
            f"`go build` failed for the webhooks' front:\n{done.stderr.strip()[-2000:]}"
        )
    tmp.rename(out)  # whole or not at all: a build cut short leaves no binary behind
    return out


def build(progress: Progress | None = None, force: bool = False) -> Binaries:
    """Make sure every pinned binary exists; build what is missing. A fast no-op when built."""
    progress = progress or _stderr_progress
    p = pins()
    target = bin_dir(p)
    have = resolve(p)
    if not force and all(n in have for n in ALL_BINARIES):
        build_front(progress)
        return _binaries(have)

    assets = _assets_dir()
    need_kube = [
        n for n in KUBE_BINARIES if force or not (assets and os.access(assets / n, os.X_OK))
    ]
    need_etcd = force or not (assets and os.access(assets / "etcd", os.X_OK))
    go = check_go(p)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)  # a half-built directory from an interrupted run
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        started = time.monotonic()
        progress(f"[build] Kubernetes {p.kubernetes} and etcd {p.etcd} into {target}")
        if need_etcd:
            _go_build(
                go,
                ETCD_MODULE,
                ["go.etcd.io/etcd/server/v3"],
                work,
                "-s -w",
                progress,
                f"etcd {p.etcd}",
            )
            # go names a /vN module's binary after the element before the version
            for built_name in ("server", "v3"):
                if (work / built_name).exists():
                    (work / built_name).rename(work / "etcd")
        if need_kube:
            _go_build(
                go,
                KUBERNETES_MODULE,
                [f"k8s.io/kubernetes/cmd/{n}" for n in need_kube],
                work,
                ldflags(p),
                progress,
                f"Kubernetes {p.kubernetes}",
            )
        for name in ALL_BINARIES:
            if (work / name).exists():
                os.chmod(work / name, 0o755)
        stamp = {
            "kubernetes": p.kubernetes,
            "etcd": p.etcd,
            "seconds": round(time.monotonic() - started, 1),
            "built": sorted(f.name for f in work.iterdir()),
        }
        (work / ".complete").write_text(json.dumps(stamp, indent=2) + "\n")
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    have = resolve(p)
    missing = [n for n in ALL_BINARIES if n not in have]
    if missing:
        raise BuildError(f"after the build these are still missing: {', '.join(missing)}")
    build_front(progress)
    size = sum(f.stat().st_size for f in target.iterdir() if f.is_file())
    progress(
        f"[build] ready: {len(stamp['built'])} binaries, {size / 1e6:.0f} MB, "
        f"{stamp['seconds']:.0f}s"
    )
    return _binaries(have)


def _binaries(found: dict[str, Path]) -> Binaries:
    return Binaries(
        etcd=found["etcd"],
        kube_apiserver=found["kube-apiserver"],
        kube_controller_manager=found["kube-controller-manager"],
        kubectl=found["kubectl"],
    )


def binaries() -> Binaries:
    """The binaries, without building: a clear error if `build` has not run yet."""
    found = resolve()
    missing = [n for n in ALL_BINARIES if n not in found]
    if missing:
        raise BuildError(
            f"the sandbox binaries are not built yet ({', '.join(missing)} missing): "
            "run `python -m helpers sandbox build` (or `./lab`, which builds them)"
        )
    return _binaries(found)
