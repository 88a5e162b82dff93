"""What the learner makes in the sandbox's AWS survives `down`/`up` and `kill -9` (issue #19, item
1), consistent with the cluster: the same users, keys, secrets, ids, sessions and objects."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from helpers import sandbox, target
from helpers.sandbox import procs
from tests.conftest import own_sandbox, using

pytestmark = pytest.mark.sandbox

TRUST_THE_ACCOUNT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@pytest.fixture(scope="module")
def sbx(tmp_path_factory):
    with own_sandbox(tmp_path_factory, "durable") as sb:
        yield sb



def _client(service, creds=None):
    import boto3

    kw = {}
    if creds:
        kw = dict(
            aws_access_key_id=creds[0],
            aws_secret_access_key=creds[1],
            aws_session_token=creds[2] if len(creds) > 2 else None,
        )
    return boto3.session.Session(**kw).client(service, region_name=target.current().region)


def _learner_makes_things() -> dict:
    iam, s3, sts = _client("iam"), _client("s3"), _client("sts")
    iam.create_user(UserName="dev")
    key = iam.create_access_key(UserName="dev")["AccessKey"]
    iam.put_user_policy(
        UserName="dev",
        PolicyName="read-bucket",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            }
        ),
    )
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=TRUST_THE_ACCOUNT)
    iam.attach_role_policy(RoleName="app", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.create_open_id_connect_provider(
        Url="https://oidc.example.test/id/ABC", ClientIDList=["sts.amazonaws.com"]
    )
    s3.create_bucket(
        Bucket="learner-bucket", CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
    )
    s3.put_object(Bucket="learner-bucket", Key="notes.txt", Body=b"kept\n")
    session = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/app", RoleSessionName="s1")
    c = session["Credentials"]
    _client("eks").create_pod_identity_association(
        clusterName="myeks",
        namespace="default",
        serviceAccount="app",
        roleArn="arn:aws:iam::123456789012:role/app",
    )
    return {
        "key": (key["AccessKeyId"], key["SecretAccessKey"]),
        "session": (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]),
    }


def _what_aws_shows(made: dict) -> dict:
    iam, s3, eks = _client("iam"), _client("s3"), _client("eks")
    users = iam.list_users()["Users"]
    return {
        "users": sorted(
            (u["UserName"], u["UserId"], u["Arn"], str(u["CreateDate"])) for u in users
        ),
        "keys": [
            (k["AccessKeyId"], k["Status"], str(k["CreateDate"]))
            for k in iam.list_access_keys(UserName="dev")["AccessKeyMetadata"]
        ],
        "inline": iam.get_user_policy(UserName="dev", PolicyName="read-bucket")["PolicyDocument"],
        "role": {k: str(v) for k, v in iam.get_role(RoleName="app")["Role"].items()},
        "attached": iam.list_attached_role_policies(RoleName="app")["AttachedPolicies"],
        "oidc": [
            p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
        ],
        "object": s3.get_object(Bucket="learner-bucket", Key="notes.txt")["Body"].read(),
        # replayed, a bucket keeps the date it was made (moto's own would be the restart's)
        "buckets": [(b["Name"], str(b["CreationDate"])) for b in s3.list_buckets()["Buckets"]],
        # the keys and the session still sign in, as who they were
        "dev": _client("sts", made["key"]).get_caller_identity()["Arn"],
        "session": _client("sts", made["session"]).get_caller_identity()["Arn"],
        "dev-reads": _client("s3", made["key"])
        .get_object(Bucket="learner-bucket", Key="notes.txt")["Body"]
        .read(),
        "associations": [
            (a["associationId"], a["serviceAccount"])
            for a in eks.list_pod_identity_associations(clusterName="myeks")["associations"]
        ],
    }


def _kill_9(state, name: str) -> None:
    proc = procs.load(state / "run", name)
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while proc.alive():  # gone, as a learner who saw it crash would find it
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_the_learners_aws_account_survives_down_up_and_kill_9(sbx):
    with using(sbx):
        made = _learner_makes_things()
        before = _what_aws_shows(made)
        assert before["dev"].endswith(":user/dev") and ":assumed-role/app/s1" in before["session"]

        sandbox.down(sbx.state_dir)
        sandbox.up(sbx.state_dir)
        assert _what_aws_shows(made) == before

        _kill_9(sbx.state_dir, "aws")
        again = sandbox.up(sbx.state_dir)
        assert not again.reused
        assert _what_aws_shows(made) == before
    log = (sbx.state_dir / "logs" / "aws.log").read_text()
    assert "ERROR" not in log.split("starting aws")[-1]


def test_no_acknowledged_write_is_lost_when_the_aws_process_is_killed(sbx):
    """A writer creates users as fast as it can while the AWS process is killed with SIGKILL
    under it, three times: every user whose creation was answered is there afterwards."""
    acknowledged: list[str] = []
    with using(sbx):
        for cycle in range(3):
            stop = threading.Event()
            iam = _client("iam")

            def writer(cycle=cycle):
                n = 0
                while not stop.is_set():
                    name = f"w{cycle}-{n}"
                    n += 1
                    try:
                        iam.create_user(UserName=name)
                    except Exception:  # the process is gone: not acknowledged
                        continue
                    acknowledged.append(name)

            t = threading.Thread(target=writer, daemon=True)
            t.start()
            try:
                deadline = time.monotonic() + 30
                while not any(a.startswith(f"w{cycle}-") for a in acknowledged):
                    assert time.monotonic() < deadline, "the writer never got an answer"
                    time.sleep(0.05)
                time.sleep(0.5)
                _kill_9(sbx.state_dir, "aws")
            finally:
                stop.set()
                t.join()
            sandbox.up(sbx.state_dir)
        names = {
            u["UserName"]
            for page in _client("iam").get_paginator("list_users").paginate()
            for u in page["Users"]
        }
    lost = [a for a in acknowledged if a not in names]
    print(f"acknowledged writes: {len(acknowledged)}, lost: {len(lost)}")
    assert len(acknowledged) >= 6 and lost == []


def test_a_damaged_journal_stops_the_start_with_what_to_do_and_purge_resets(sbx):
    journal = sbx.state_dir / "aws" / "journal"
    with using(sbx):
        _client("iam").create_user(UserName="keeper")
    sandbox.down(sbx.state_dir)
    good = journal.read_bytes()
    lines = good.split(b"\n")
    lines[1] = lines[1].replace(b'"kind"', b'"kinD"')  # a flipped bit, as a bad disk does
    journal.write_bytes(b"\n".join(lines))
    with pytest.raises(sandbox.SandboxError) as err:
        sandbox.up(sbx.state_dir, timeout=60)
    msg = str(err.value)
    assert "aws exited while starting" in msg and "damaged at line 2" in msg
    assert f"mv {journal} {journal}.damaged" in msg and "down --purge" in msg

    # a write cut short by a crash (no newline) was never answered: dropped, the rest kept
    journal.write_bytes(good + b'0badf00d {"kind":"request","bo')
    with using(sandbox.up(sbx.state_dir)):
        assert any(u["UserName"] == "keeper" for u in _client("iam").list_users()["Users"])
    assert journal.read_bytes() == good
    assert "cut short by a crash" in (sbx.state_dir / "logs" / "aws.log").read_text()

    sandbox.down(sbx.state_dir, purge=True)
    assert not journal.exists()
    with using(sandbox.up(sbx.state_dir)):
        assert [u["UserName"] for u in _client("iam").list_users()["Users"]] == ["eks_admin"]
