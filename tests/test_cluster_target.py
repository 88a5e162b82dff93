"""The `cluster` target, run against the sandbox treated as an outside cluster.

The helpers get only what a learner with a real EKS cluster has: a kubeconfig (the EKS token
flow through `aws eks get-token`), AWS CLI files naming an endpoint, and EKS_LAB_TARGET=cluster.
EKS_LAB_STATE points at a directory that does not exist, so any use of sandbox internals fails.
Checked: nothing starts, preflight, opt-in refusals (nothing created), tags, masking, the
sandbox-only views explaining themselves, the authenticator's decisions read from CloudWatch
Logs, and cleanup of tagged resources after a crashed run while untagged ones stay. Then every
notebook that needs no `kubectl exec` runs headless on this target, twice; and on a second
cluster, created with access entries as README recommends (API_AND_CONFIG_MAP), the creator's
identity and the notebooks whose answers follow the authentication mode, once each.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers import checks, cleanup, commands, decisions, eksctl, fixtures, lab, magics, target
from helpers.sandbox.lifecycle import WARM_AWS
from helpers.targets.cluster import ClusterConnection

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def outside_of(sb, home: Path):
    """An environment that knows SB's cluster only by its kubeconfig and the AWS endpoint."""
    shutil.copy(sb.state_dir / "pki" / "ca.crt", home / "aws-ca.pem")
    shutil.copy(sb.kubeconfig, home / "kubeconfig")
    config = (sb.state_dir / "aws" / "config").read_text().replace(str(sb.state_dir / "pki" / "ca.crt"),
                                                                   str(home / "aws-ca.pem"))
    (home / "aws-config").write_text(config)
    shutil.copy(sb.state_dir / "aws" / "credentials", home / "aws-credentials")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EKS_LAB", "AWS_", "KUBECONFIG"))}
    # PATH as `./lab` gives it on a real cluster: the warm `aws` (helpers/warm), a kubectl
    path = os.pathsep.join([str(WARM_AWS), str(sb.kubectl.parent), env["PATH"]])
    env.update({"PATH": path, "KUBECONFIG": str(home / "kubeconfig"),
                "AWS_CONFIG_FILE": str(home / "aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
                "AWS_CA_BUNDLE": str(home / "aws-ca.pem"), "EKS_LAB_TARGET": "cluster",
                "EKS_LAB_STATE": str(home / "no-sandbox-here"), "XDG_CACHE_HOME": str(home / "cache")})
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith(("EKS_LAB", "AWS_", "KUBECONFIG")):
                mp.delenv(k)
        for k, v in env.items():
            mp.setenv(k, v)
        yield env
    assert not (home / "no-sandbox-here").exists(), "something used the sandbox's internals"


@pytest.fixture(scope="module")
def outside(sb, tmp_path_factory):
    """The session's sandbox (CONFIG_MAP, the lab note's cluster) as an outside cluster."""
    with outside_of(sb, tmp_path_factory.mktemp("learner")) as env:
        yield env


def test_start_uses_the_kubeconfig_and_starts_nothing(outside):
    c = lab.start()
    assert isinstance(c, ClusterConnection) and c.kubeconfig.stat().st_mode & 0o077 == 0
    assert os.environ["KUBECONFIG"] == str(c.kubeconfig)
    assert commands.run("kubectl get ns kube-system").ok
    assert lab.caller_arn().endswith(":user/eks_admin")
    assert isinstance(lab.components(), target.NotShownHere)


def test_preflight_shows_where_and_what(outside):
    p = lab.preflight("03")["value"]
    assert p["account"] == "123456789012" and p["caller"].endswith(":user/eks_admin")
    assert p["target"].startswith("cluster") and p["cluster"].startswith("myeks (ACTIVE")
    assert any("needs EKS_LAB_ALLOW=iam-users" in v for v in p[p.index == "will create"])


def test_without_opt_in_nothing_is_created(outside):
    with pytest.raises(target.OptInRequired, match="EKS_LAB_ALLOW=iam-users"):
        magics.aws("iam create-user --user-name t-refused")
    assert "NoSuchEntity" in commands.run("aws iam get-user --user-name t-refused").stderr
    before = commands.run("kubectl get cm aws-auth -n kube-system -o json").data["data"]
    with pytest.raises(target.OptInRequired, match="aws-auth"):
        eksctl.create_iamidentitymapping("myeks", "arn:aws:iam::123456789012:user/t-refused", groups=["system:masters"])
    with pytest.raises(target.OptInRequired, match="iam-roles"):
        eksctl.associate_iam_oidc_provider("myeks")
    assert commands.run("kubectl get cm aws-auth -n kube-system -o json").data["data"] == before
    view = decisions.latest(1, log="pod-identity-webhook")
    assert isinstance(view, target.NotShownHere) and "not published" in repr(view)
    assert checks.expect_decision(view, error="anything") is view


def test_authenticator_decisions_come_from_cloudwatch(outside):
    """As on EKS with control-plane logging: the authenticator's lines in /aws/eks/<cluster>/cluster."""
    assert commands.run("kubectl get ns default").ok
    d = checks.expect_decision(decisions.latest(20), decision="granted", username="kubernetes-admin",
                            arn=lambda arn: arn.endswith(":user/eks_admin"))
    assert d.attrs["source"] == "CloudWatch Logs /aws/eks/myeks/cluster"
    raw = commands.run("aws logs filter-log-events --log-group-name /aws/eks/myeks/cluster "
                       "--log-stream-name-prefix authenticator --output json").check()
    assert any('msg="access granted"' in e["message"] and 'groups="[system:masters]"' in e["message"]
               for e in raw.data["events"])


def test_opt_in_tags_and_masks(outside):
    lab.configure(allow=["iam-users"])
    try:
        r = magics.aws("iam create-user --user-name t-tagged")
        assert r.ok and f"--tags Key={target.TAG}" in r.command
        tags = commands.run("aws iam list-user-tags --user-name t-tagged --output json").data["Tags"]
        assert [t["Key"] for t in tags] == [target.TAG]
        key = magics.aws("iam create-access-key --user-name t-tagged")
        secret = key.data["AccessKey"]["SecretAccessKey"]
        assert secret not in key._repr_html_() and secret not in str(key) and "****(masked)" in str(key)
        token = magics.aws("eks get-token --cluster-name myeks")
        assert token.data["status"]["token"] not in token._repr_html_()
        from helpers import rbac, tokens
        assert tokens.decode_eks_token(token.data["status"]["token"])["parameters"]["X-Amz-Signature"].endswith(
            "masked)")
        ak = rbac.whoami().set_index("ATTRIBUTE").at["Extra: accessKeyId", "VALUE"]
        assert "masked" in ak
    finally:
        lab.configure(allow=[])


CRASHING_RUN = r"""
import os, signal
from helpers import eksctl, lab, magics
lab.configure(allow=["iam-users", "aws-auth", "iam-roles"])
magics.aws("iam create-user --user-name t-crashed").check()
trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
magics.aws(f"iam create-role --role-name t-crashed-role --assume-role-policy-document '{trust}'").check()
magics.aws("iam attach-role-policy --role-name t-crashed-role --policy-arn arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess").check()
magics.aws("iam put-role-policy --role-name t-crashed-role --policy-name inline --policy-document "
           "'{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:ListBucket\",\"Resource\":\"*\"}]}'").check()
magics.aws("iam create-access-key --user-name t-crashed").check()
magics.aws("iam attach-user-policy --user-name t-crashed --policy-arn arn:aws:iam::aws:policy/AdministratorAccess").check()
magics.kubectl("create namespace t-crashed").check()
magics.aws("eks create-addon --cluster-name myeks --addon-name eks-pod-identity-agent").check()
magics.aws("eks create-pod-identity-association --cluster-name myeks --namespace default "
           "--service-account t-crashed-sa --role-arn arn:aws:iam::123456789012:role/t-crashed-role").check()
eksctl.create_iamidentitymapping("myeks", "arn:aws:iam::123456789012:user/t-crashed", groups=["system:masters"])
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_cleanup_finds_what_a_crashed_run_left_and_only_that(outside):
    crashed = subprocess.run([sys.executable, "-c", CRASHING_RUN], env={**outside, "PYTHONPATH": str(ROOT)},
                             capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -9, crashed.stderr
    # the learner's own user and namespace, with no tag: never touched
    target.aws_client("iam").create_user(UserName="t-mine")         # made outside the series: no tag
    assert commands.run("kubectl create namespace t-mine").ok
    todo = cleanup.plan()
    found = set(zip(todo.kind, todo.name))
    assert {("IAM user", "t-crashed"), ("IAM role", "t-crashed-role"), ("namespace", "t-crashed"),
            ("aws-auth entry", "mapUsers: arn:aws:iam::123456789012:user/t-crashed"),
            ("pod identity association", "default/t-crashed-sa"), ("EKS add-on", "eks-pod-identity-agent")} <= found
    assert not any("t-mine" in name for _, name in found)
    out = subprocess.run([sys.executable, "-m", "helpers", "cleanup"], env={**outside, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120)
    assert "t-crashed" in out.stdout and "./lab cleanup --yes" in out.stdout
    cleanup.run(progress=lambda m: None)
    assert "NoSuchEntity" in commands.run("aws iam get-user --user-name t-crashed").stderr
    assert "NoSuchEntity" in commands.run("aws iam get-role --role-name t-crashed-role").stderr
    assert "t-crashed" not in json.dumps(commands.run("kubectl get cm aws-auth -n kube-system -o json").data)
    assert commands.run("aws iam get-user --user-name t-mine").ok
    assert commands.run("aws eks list-pod-identity-associations --cluster-name myeks --output json").data[
        "associations"] == []
    assert commands.run("aws eks list-addons --cluster-name myeks --output json").data["addons"] == []
    with pytest.raises(target.OptInRequired, match="not created by the series"):
        fixtures.remove_iam_user("t-mine")
    assert commands.run("aws iam get-user --user-name t-mine").ok
    assert cleanup.plan().query("kind != 'namespace'").empty


# Every notebook whose commands an outside cluster serves here: 01 and 04 use `kubectl exec`,
# which needs a kubelet that runs containers (the stand-in does not).
ON_CLUSTER = ["00_setup_and_tour", "02_eks_authentication", "03_iam_admin_not_cluster_user", "05_admission_control",
              "06_beyond_the_note"]
ON_CLUSTER += [f"solutions/{n[:2]}_solutions" for n in ON_CLUSTER]   # their exercises' checks too


# What a saved notebook must never hold on a real account (issue #19): an AWS secret key or session
# token in any quoting, a SigV4 signature, a pre-signed URL's credential, an EKS token.
SECRETS = [
    re.compile(r"""(?i)secret_?access_?key['"]?\s*[:=]\s*\\?['"]?[A-Za-z0-9/+]{40}"""),
    re.compile(r"""(?i)session_?token['"]?\s*[:=]\s*\\?['"]?[A-Za-z0-9/+=]{100,}"""),
    re.compile(r"X-Amz-Signature=[0-9a-f]{64}"),
    re.compile(r"X-Amz-Security-Token=[A-Za-z0-9%]{40,}"),
    re.compile(r"k8s-aws-v1\.[A-Za-z0-9_-]{100,}"),
]


def secrets_in(nb) -> list[str]:
    """Every match of SECRETS in every output a saved notebook keeps, of every MIME type."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            texts = [out.get("text", "")] + [v if isinstance(v, str) else json.dumps(v)
                                            for v in (out.get("data") or {}).values()]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                found += [f"cell {i}: {m.group(0)[:60]}…" for rx in SECRETS for m in rx.finditer(text)]
    return found


def test_the_secrets_scan_sees_a_secret():
    """The scan is not vacuous: each kind of secret, stored as a notebook would store it, is found."""
    import nbformat.v4 as v4
    key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    outputs = [
        v4.new_output("execute_result", {"text/plain": f"{{'SecretAccessKey': '{key}'}}"}),
        v4.new_output("display_data", {"application/json": {"SecretAccessKey": key}}),
        v4.new_output("stream", text=f"aws_secret_access_key = {key}\n"),
        v4.new_output("display_data", {"text/html": "https://sts/?X-Amz-Signature=" + "ab" * 32}),
        v4.new_output("display_data", {"text/plain": "k8s-aws-v1." + "a" * 120}),
        v4.new_output("display_data", {"text/plain": "'SessionToken': '" + "F" * 300 + "'"}),
    ]
    nb = v4.new_notebook(cells=[v4.new_code_cell("x", outputs=[o]) for o in outputs])
    assert len(secrets_in(nb)) == len(outputs)
    masked = v4.new_notebook(cells=[v4.new_code_cell("x", outputs=[v4.new_output(
        "execute_result", {"text/plain": "{'SecretAccessKey': 'wJalrX…(40 chars masked)'}"})])])
    assert secrets_in(masked) == []


def run_on_cluster(name: str, tmp_path: Path, runs: int = 2) -> None:
    """Run notebook NAME on the cluster target RUNS times in a row (EKS_LAB_ALLOW=all)."""
    path = ROOT / "notebooks" / f"{name}.ipynb"
    env_before = dict(os.environ)
    os.environ["EKS_LAB_ALLOW"] = "all"
    try:
        for attempt in range(1, runs + 1):
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=180, kernel_name="python3",
                           resources={"metadata": {"path": str(tmp_path)}}).execute()
            errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                      if o.get("output_type") == "error"]
            assert not errors, f"run {attempt}"
            shown = json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"])
            assert "no-sandbox-here" not in shown
            if "/" not in name:   # a lesson's preflight names the target
                assert "cluster (real AWS)" in shown
            if name.startswith("03"):
                assert "SecretAccessKey" in shown and "****(masked)" in shown
            # what the saved file would keep, every MIME type: no secret at all, masked or not shown
            nbformat.write(nb, tmp_path / "saved.ipynb")
            assert secrets_in(nbformat.read(tmp_path / "saved.ipynb", as_version=4)) == [], f"run {attempt}"
    finally:
        os.environ.clear()
        os.environ.update(env_before)


@pytest.mark.parametrize("name", ON_CLUSTER, ids=[n.replace("/", "-") for n in ON_CLUSTER])
def test_notebook_runs_on_the_cluster_target(outside, tmp_path, name):
    """Twice: a second run on a real account starts from what the first one left and cleaned up
    (tagged resources), a path of its own."""
    run_on_cluster(name, tmp_path)


# README's cluster: created with access entries (API_AND_CONFIG_MAP), the creator an entry with
# AmazonEKSClusterAdminPolicy. The notebooks whose answers follow the mode run on it too, once:
# that they run again on this target is proven above.
ON_ACCESS_ENTRIES = [n for n in ON_CLUSTER if n.split("/")[-1][:2] in ("02", "03", "06")]
ON_ACCESS_ENTRIES += ["07_cluster_access_management", "solutions/07_solutions"]


class TestAClusterWithAccessEntries:
    @pytest.fixture(scope="class")
    @classmethod
    def outside_api(cls, sb_api, tmp_path_factory):
        with outside_of(sb_api, tmp_path_factory.mktemp("learner-api")) as env:
            yield env

    def test_the_creator_is_its_iam_identity(self, outside_api):
        lab.start()
        assert lab.auth_mode() == "API_AND_CONFIG_MAP"
        assert lab.creator_username() == lab.caller_arn()
        p = lab.preflight("07")["value"]
        assert p["authentication mode"].startswith("API_AND_CONFIG_MAP")
        assert commands.run("kubectl get ns kube-system").ok
        d = checks.expect_decision(decisions.latest(20), decision="granted", username=lab.caller_arn())
        assert d.attrs["source"] == "CloudWatch Logs /aws/eks/myeks/cluster"
        with pytest.raises(target.OptInRequired, match="access-entries"):
            magics.aws(f"eks delete-access-entry --cluster-name myeks --principal-arn {lab.caller_arn()}")
        assert commands.run("kubectl get ns kube-system").ok

    @pytest.mark.parametrize("name", ON_ACCESS_ENTRIES, ids=[n.replace("/", "-") for n in ON_ACCESS_ENTRIES])
    def test_notebook_runs(self, outside_api, tmp_path, name):
        run_on_cluster(name, tmp_path, runs=1)
