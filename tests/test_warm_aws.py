"""`aws`, started warm (helpers/warm): a command gets the caller's arguments, environment, folder,
umask and streams, and its exit status and signals; the server is started on first use, taken only
by its own user, and replaced when killed; off, or without a server, the real CLI runs as it is.
The last tests compare it with the real AWS CLI run cold."""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers.sandbox import lifecycle, procs
from helpers.warm import server as warm_server

WARM = lifecycle.WARM_AWS
# a stand-in for the CLI's `aws` script: shows what the process it runs in was given
FAKE = """#!{python}
import json, os, sys
if sys.argv[1:2] == ["sleep"]:
    import time
    print("sleeping", flush=True)
    time.sleep(30)
if sys.argv[1:2] == ["die"]:
    os.kill(os.getpid(), 9)
if sys.argv[1:2] == ["raise"]:
    raise RuntimeError("the CLI broke")
umask = os.umask(0)
parent = open(f"/proc/{{os.getppid()}}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
print(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "umask": umask, "parent": parent,
                  "stdin": sys.stdin.read(), "env": dict(os.environ)}}))
print("to stderr", file=sys.stderr)
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""


@pytest.fixture
def cache():
    # short: a socket's path must fit in 108 bytes
    folder = Path(tempfile.mkdtemp(prefix="wa-"))
    yield folder
    for pid in procs.processes_mentioning(str(folder)):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fake_cli(cache):
    folder = cache / "cli"
    folder.mkdir()
    (folder / "aws").write_text(FAKE.format(python=sys.executable))
    (folder / "aws").chmod(0o755)
    return folder


def env_for(cache: Path, cli: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKS_LAB_WARM")}
    env.update(EKS_LAB_CACHE=str(cache), PATH=f"{WARM}{os.pathsep}{cli}{os.pathsep}{env['PATH']}")
    for k, v in extra.items():  # None: not set at all
        env.pop(k, None) if v is None else env.__setitem__(k, v)
    return env


def servers(cache: Path) -> list[int]:
    return [p for p in procs.processes_mentioning(str(cache)) if b"server.py" in
            Path(f"/proc/{p}/cmdline").read_bytes()]


def warm_up(cache: Path, cli: Path) -> None:
    """The first call starts the server (and runs the CLI cold); wait until it listens."""
    subprocess.run([WARM / "aws", "--version"], env=env_for(cache, cli, FIRST_CALLER_ONLY="1"),
                   capture_output=True, timeout=60, check=False)
    listening(cache)


def listening(cache: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        for sock in cache.glob("warm-aws-*/*.sock"):
            with socket.socket(socket.AF_UNIX) as probe:
                if probe.connect_ex(warm_server.address(str(sock))) == 0:
                    return
        assert time.monotonic() < deadline, "no server listening after the first call"
        time.sleep(0.05)


def call(cache, cli, *args, input="", **extra) -> subprocess.CompletedProcess:
    return subprocess.run([WARM / "aws", *args], env=env_for(cache, cli, **extra), input=input,
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_command_gets_what_the_caller_had(cache, fake_cli, tmp_path):
    warm_up(cache, fake_cli)
    os.chmod(tmp_path, 0o755)
    old = os.umask(0o027)
    try:
        r = subprocess.run([WARM / "aws", "eks", "get-token", "--cluster-name", "a b"],
                           env=env_for(cache, fake_cli, ONLY_HERE="yes"), input="from stdin",
                           capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert "server.py" in seen["parent"]  # the warm path, not the CLI run cold
    assert seen["argv"] == ["eks", "get-token", "--cluster-name", "a b"]
    assert seen["cwd"] == str(tmp_path) and seen["umask"] == 0o027 and seen["stdin"] == "from stdin"
    assert seen["env"]["ONLY_HERE"] == "yes"
    # exactly the caller's environment: nothing of the server's own, which the first call set
    assert set(seen["env"]) - {"AWS_DATA_PATH"} == set(env_for(cache, fake_cli, ONLY_HERE="yes"))
    assert r.stderr == "to stderr\n"


def test_exit_status_signals_and_errors_come_back(cache, fake_cli):
    warm_up(cache, fake_cli)
    assert call(cache, fake_cli, "x", FAKE_EXIT="3").returncode == 3
    assert call(cache, fake_cli, "die").returncode == 128 + 9
    broken = call(cache, fake_cli, "raise")
    assert broken.returncode == 1 and "RuntimeError: the CLI broke" in broken.stderr
    # a signal to `aws` reaches the command (kubectl stopping its exec plugin, Ctrl-C)
    p = subprocess.Popen([WARM / "aws", "sleep"], env=env_for(cache, fake_cli),
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "sleeping\n"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 128 + signal.SIGTERM


def test_off_or_without_a_server_the_cli_runs_as_it_is(cache, fake_cli):
    off = call(cache, fake_cli, "x", EKS_LAB_WARM_AWS="0")
    assert "server.py" not in json.loads(off.stdout)["parent"] and not servers(cache)
    warm_up(cache, fake_cli)
    [server] = servers(cache)
    os.kill(server, signal.SIGKILL)  # its socket stays behind
    deadline = time.monotonic() + 10
    while servers(cache):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cold = call(cache, fake_cli, "y")
    assert cold.returncode == 0 and "server.py" not in json.loads(cold.stdout)["parent"]
    listening(cache)  # that call started a new server in the old one's place
    assert "server.py" in json.loads(call(cache, fake_cli, "z").stdout)["parent"]


def test_the_socket_folder_is_private(cache, fake_cli):
    warm_up(cache, fake_cli)
    [folder] = cache.glob("warm-aws-*")
    assert folder.stat().st_mode & 0o777 == 0o700 and folder.stat().st_uid == os.getuid()
    # a folder others can enter is not used: the CLI runs cold
    folder.chmod(0o755)
    r = call(cache, fake_cli, "x")
    assert "server.py" not in json.loads(r.stdout)["parent"]


def test_no_cli_after_it_is_a_clear_error(cache):
    (cache / "py").mkdir()
    (cache / "py" / "python3").symlink_to(sys.executable)
    r = subprocess.run([WARM / "aws", "--version"], env={**os.environ, "PATH": f"{WARM}:{cache / 'py'}"},
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 127 and "no AWS CLI on PATH" in r.stderr


def test_the_cli_is_the_next_after_the_labs_folder_whatever_python3_put_first(cache, fake_cli):
    # pyenv's `python3` shim runs `pyenv exec`, which puts its Python's bin (with an `aws` of its
    # own) first on PATH: the client must still run the `aws` that followed the lab's folder
    (cache / "launcher").mkdir()
    (cache / "launcher" / "aws").write_text("#!/bin/sh\necho the launcher aws\n")
    (cache / "launcher" / "aws").chmod(0o755)
    (cache / "launcher" / "python3").write_text(
        f'#!/bin/sh\nPATH="{cache / "launcher"}:$PATH" exec {sys.executable} "$@"\n')
    (cache / "launcher" / "python3").chmod(0o755)
    env = env_for(cache, fake_cli, EKS_LAB_WARM_AWS="0")
    env["PATH"] = f"{WARM}{os.pathsep}{fake_cli}{os.pathsep}{cache / 'launcher'}{os.pathsep}{env['PATH']}"
    r = subprocess.run([WARM / "aws", "x"], env=env, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["argv"] == ["x"]


def test_the_server_leaves_when_idle_or_replaced(cache, fake_cli):
    sock = cache / "s.sock"
    started = time.monotonic()
    serve = ("import sys; sys.path.insert(0, sys.argv[1]); import server; "
             "server.serve(sys.argv[2], sys.argv[3], idle=1)")
    subprocess.run([sys.executable, "-c", serve, WARM, sock, fake_cli / "aws"],
                   timeout=60, check=True, cwd=cache)
    assert time.monotonic() - started < 30 and not sock.exists()


# --- the real AWS CLI, warm and cold -----------------------------------------------------------

def real_cli_folder() -> Path:
    found = shutil.which("aws", path=os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if Path(d).resolve() != WARM))
    assert found, "the lab's environment has the AWS CLI"
    return Path(found).parent


def test_the_real_cli_says_the_same_warm_and_cold(cache):
    cli = real_cli_folder()
    warm_up(cache, cli)
    for args in (["--version"], ["no-such-command"], ["eks", "get-token"],
                 # models the server keeps parsed (keep_cli_data), as each command finds them
                 ["sts", "get-caller-identity", "--generate-cli-skeleton", "output"],
                 ["eks", "describe-cluster", "--generate-cli-skeleton"],
                 ["eks", "wait", "cluster-active", "help"]):
        warm = call(cache, cli, *args)
        cold = call(cache, cli, *args, EKS_LAB_WARM_AWS="0")
        assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    assert call(cache, cli, "no-such-command").returncode == 2


def test_the_real_cli_makes_a_token_from_the_callers_environment(cache):
    cli = real_cli_folder()
    warm_up(cache, cli)
    keys = {"AWS_ACCESS_KEY_ID": "AKIAWARMTEST", "AWS_SECRET_ACCESS_KEY": "x", "AWS_PROFILE": None,
            "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    for region in ("ap-northeast-2", "eu-west-1"):
        r = call(cache, cli, "eks", "get-token", "--cluster-name", "warm", AWS_DEFAULT_REGION=region, **keys)
        assert r.returncode == 0, r.stderr
        token = json.loads(r.stdout)["status"]["token"]
        url = base64.urlsafe_b64decode(token.removeprefix("k8s-aws-v1.") + "==").decode()
        assert url.startswith(f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity")
        assert "X-Amz-Credential=AKIAWARMTEST%2F" in url


def test_a_socket_path_longer_than_an_address_holds_still_works(fake_cli):
    # an address holds 108 bytes; a cache folder deep in a temporary tree needs more
    deep = Path(tempfile.mkdtemp(prefix="wa-")) / ("d" * 60) / ("e" * 40)
    deep.mkdir(parents=True)
    try:
        warm_up(deep, fake_cli)
        [sock] = deep.glob("warm-aws-*/*.sock")
        assert len(str(sock)) > 108
        assert "server.py" in json.loads(call(deep, fake_cli, "x").stdout)["parent"]
    finally:
        for pid in procs.processes_mentioning(str(deep)):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(deep.parents[1], ignore_errors=True)


def test_an_aws_script_of_another_kind_still_runs_warm(cache):
    """A Python `aws` whose interpreter has no awscli (a wrapper, another tool): no head start,
    but the same answers, and its server does not go down over it."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", cache / "bare"], check=True,
                   timeout=120)
    python = cache / "bare" / "bin" / "python"
    assert subprocess.run([python, "-c", "import awscli"], capture_output=True, check=False).returncode
    cli = cache / "other"
    cli.mkdir()
    (cli / "aws").write_text(FAKE.format(python=python))
    (cli / "aws").chmod(0o755)
    warm_up(cache, cli)
    r = call(cache, cli, "a", FAKE_EXIT="4")
    assert r.returncode == 4 and "server.py" in json.loads(r.stdout)["parent"]


KEEP_PROBE = """
import json, os, sys
from collections import OrderedDict
import awscli.clidriver
sys.path.insert(0, sys.argv[1])
from server import keep_cli_data
kept = keep_cli_data()
loaders = sys.modules["botocore.loaders"]
own = os.path.join(os.path.dirname(loaders.__file__), "data")
fresh = {p: json.loads(open(p, "rb").read().decode(), object_pairs_hook=OrderedDict) for p in kept}
sts = loaders.create_loader().load_service_model("sts", "service-2")
mine = loaders.create_loader(sys.argv[2]).load_service_model("sts", "service-2")
print(json.dumps({
    "kept": sorted(os.path.relpath(p, own) for p in kept),
    "outside": [p for p in kept if not p.startswith(own + os.sep)],
    "as_parsed": all(kept[p] == fresh[p] for p in kept),
    "sts_from_kept": any(sts is v for v in kept.values()),
    "mine": mine["metadata"].get("serviceId"),
}))
"""


def test_the_server_keeps_the_clis_own_data_parsed_and_a_users_model_still_wins(tmp_path):
    # a user's own STS model on AWS_DATA_PATH, as the CLI lets one override a service
    cli_python = (real_cli_folder() / "aws").read_text().splitlines()[0].removeprefix("#!").strip()
    model = tmp_path / "models" / "sts" / "2011-06-15" / "service-2.json"
    model.parent.mkdir(parents=True)
    model.write_text(json.dumps({"version": "2.0", "metadata": {
        "apiVersion": "2011-06-15", "serviceId": "MINE", "protocol": "query",
        "endpointPrefix": "sts", "signatureVersion": "v4"}, "operations": {}, "shapes": {}}))
    r = subprocess.run([cli_python, "-c", KEEP_PROBE, str(WARM), str(tmp_path / "models")],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert {"endpoints.json", "partitions.json", "sts/2011-06-15/service-2.json",
            "eks/2017-11-01/service-2.json"} <= set(found["kept"])
    assert found["outside"] == []  # only the CLI's own files
    assert found["as_parsed"]  # what the files say, not what a loader made of them (extras merged)
    assert found["sts_from_kept"]  # a command gets the kept model…
    assert found["mine"] == "MINE"  # …unless the user's own comes first, as the CLI would read it
