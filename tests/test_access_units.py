"""EKS cluster access management (issue #14): modes, access entries, access policies, the dynamic
file the authenticator reads and the EKS authorizer's answers, without a sandbox."""
from __future__ import annotations

import datetime as dt

import pytest

from helpers.sandbox import access

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)
ACCOUNT = "123456789012"
USER = f"arn:aws:iam::{ACCOUNT}:user/testuser"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/dev/apps/my-role"
NODE = f"arn:aws:iam::{ACCOUNT}:role/NodeInstanceRole"
VIEW = access.POLICY_PREFIX + "AmazonEKSViewPolicy"
ADMIN = access.POLICY_PREFIX + "AmazonEKSClusterAdminPolicy"


def api_record(mode="API_AND_CONFIG_MAP"):
    return access.new_record(mode, NOW)


def later(seconds):
    return NOW + dt.timedelta(seconds=seconds)


def test_modes_move_one_way_one_step_at_a_time_after_a_delay():
    rec = access.new_record("CONFIG_MAP", NOW)
    for bad in ("CONFIG_MAP", "API"):
        with pytest.raises(access.EksError) as e:
            access.update_mode(rec, bad, NOW)
        assert (e.value.code, e.value.status, e.value.message) == (
            "InvalidParameterException", 400, f"Unsupported authentication mode update from CONFIG_MAP to {bad}")
    update = access.update_mode(rec, "API_AND_CONFIG_MAP", NOW)
    assert update["status"] == "InProgress" and update["params"] == [
        {"type": "AuthenticationMode", "value": "API_AND_CONFIG_MAP"}]
    with pytest.raises(access.EksError, match="update in progress"):
        access.update_mode(rec, "API", NOW)
    assert access.effective_mode(rec, NOW) == "CONFIG_MAP"  # not yet applied
    assert access.effective_mode(rec, later(3)) == "API_AND_CONFIG_MAP"
    assert rec["updates"][0]["status"] == "Successful"
    access.update_mode(rec, "API", later(3))
    assert access.effective_mode(rec, later(6)) == "API"
    with pytest.raises(access.EksError, match="Unsupported authentication mode update from API to API_AND_CONFIG_MAP"):
        access.update_mode(rec, "API_AND_CONFIG_MAP", later(6))


def test_entries_need_an_api_mode():
    rec = access.new_record("CONFIG_MAP", NOW)
    with pytest.raises(access.EksError) as e:
        access.create_entry(rec, "myeks", "ap-northeast-2", USER, "AIDAX", NOW)
    assert (e.value.code, e.value.message) == ("InvalidRequestException", access.NOT_API_MODE)


@pytest.mark.parametrize("principal, entry_type, username", [
    (USER, None, USER),
    (ROLE, None, f"arn:aws:sts::{ACCOUNT}:assumed-role/my-role/{{{{SessionName}}}}"),  # path removed
    (NODE, "EC2_LINUX", "system:node:{{EC2PrivateDNSName}}"),
    (NODE, "FARGATE_LINUX", "system:node:{{SessionName}}"),
    (NODE, "HYBRID_LINUX", "system:node:{{SessionName}}"),
])
def test_default_usernames_follow_the_user_guide(principal, entry_type, username):
    rec = api_record()
    entry = access.create_entry(rec, "myeks", "ap-northeast-2", principal, "ID", NOW, entry_type=entry_type)
    assert entry["username"] == username and entry["type"] == (entry_type or "STANDARD")
    assert "principalId" not in entry  # stored, never shown
    assert entry["accessEntryArn"].startswith(f"arn:aws:eks:ap-northeast-2:{ACCOUNT}:access-entry/myeks/")
    if entry_type:
        assert entry["kubernetesGroups"] == ["system:nodes"]


def test_entry_errors():
    rec = api_record()
    access.create_entry(rec, "myeks", "r", USER, "AIDAX", NOW, groups=["viewers", "viewers"])
    assert access.get_entry(rec, USER, NOW)["kubernetesGroups"] == ["viewers"]
    with pytest.raises(access.EksError) as e:
        access.create_entry(rec, "myeks", "r", USER, "AIDAX", NOW)
    assert (e.value.code, e.value.status, e.value.message) == ("ResourceInUseException", 409, access.IN_USE)
    with pytest.raises(access.EksError) as e:
        access.associate(rec, ROLE, VIEW, {"type": "cluster"}, NOW)
    assert (e.value.code, e.value.status, e.value.message) == ("ResourceNotFoundException", 404, access.NO_ENTRY)
    access.create_entry(rec, "myeks", "r", NODE, "AROAN", NOW, entry_type="EC2_LINUX")
    with pytest.raises(access.EksError, match='type of "STANDARD"'):
        access.associate(rec, NODE, VIEW, {"type": "cluster"}, NOW)
    for bad in ("system:me", "eks:x", "aws:x", "amazon:x", "iam:x"):
        with pytest.raises(access.EksError, match="can't start with"):
            access.update_entry(rec, USER, NOW, username=bad)
    with pytest.raises(access.EksError, match="colon before"):
        access.update_entry(rec, USER, NOW, username="john{{SessionName}}")
    access.update_entry(rec, USER, NOW, username="jo:hn{{SessionName}}")
    with pytest.raises(access.EksError, match="service linked roles"):
        access.create_entry(rec, "myeks", "r", f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/x", "I", NOW)
    with pytest.raises(access.EksError, match="namespace"):
        access.associate(rec, USER, VIEW, {"type": "namespace", "namespaces": []}, NOW)
    with pytest.raises(access.EksError, match="could not be found"):
        access.associate(rec, USER, access.POLICY_PREFIX + "NoSuchPolicy", {"type": "cluster"}, NOW)
    access.delete_entry(rec, USER, NOW)
    with pytest.raises(access.EksError, match="could not be found"):
        access.get_entry(rec, USER, NOW)


def test_the_policy_list_names_every_policy_once():
    names = [p["name"] for p in access.policy_list()]
    assert names == sorted(set(names)) and {"AmazonEKSClusterAdminPolicy", "AmazonEKSViewPolicy",
                                            "AmazonEKSAdminViewPolicy", "AmazonEKSSecretReaderPolicy"} <= set(names)
    assert all(p["arn"] == access.POLICY_PREFIX + p["name"] for p in access.policy_list())


def test_dynamic_file_has_the_authenticators_format_and_only_in_api_modes():
    rec = api_record()
    access.create_entry(rec, "myeks", "r", USER, "AIDAUSER", NOW, groups=["viewers"])
    access.create_entry(rec, "myeks", "r", ROLE, "AROAROLE", NOW)
    data = access.dynamic_file(rec, "myeks", NOW)
    assert data["mapUsers"] == [{"userarn": USER, "username": USER, "groups": ["viewers"], "userid": "AIDAUSER"}]
    assert data["mapRoles"][0]["rolearn"] == ROLE and data["mapRoles"][0]["userid"] == "AROAROLE"
    assert access.dynamic_file(access.new_record("CONFIG_MAP", NOW), "myeks", NOW)["mapUsers"] == []


def _sar(principal="AIDAUSER", verb="list", resource="pods", namespace="dev", group="", sub="", **more):
    attrs = {"verb": verb, "resource": resource, "namespace": namespace, "group": group}
    if sub:
        attrs["subresource"] = sub
    return {"user": "u", "extra": {"principalId": [principal]}, "resourceAttributes": attrs, **more}


def test_authorizer_applies_the_policy_tables_and_scopes():
    rec = api_record()
    access.create_entry(rec, "myeks", "r", USER, "AIDAUSER", NOW)
    access.associate(rec, USER, VIEW, {"type": "namespace", "namespaces": ["dev", "team-*"]}, NOW)
    assert access.authorize(rec, _sar(), NOW)[0]
    allowed, reason = access.authorize(rec, _sar(namespace="team-a"), NOW)
    assert allowed and "AmazonEKSViewPolicy" in reason and USER in reason and "namespace team-a" in reason
    for denied in (_sar(namespace="prod"), _sar(verb="delete"), _sar(resource="secrets"),
                   _sar(resource="pods", sub="exec", verb="create"), _sar(resource="nodes", namespace=""),
                   _sar(principal="AIDAOTHER"), {"user": "impersonated", "resourceAttributes": {"verb": "list"}}):
        assert access.authorize(rec, denied, NOW) == (False, "")  # no opinion, never deny
    assert access.authorize(rec, _sar(resource="pods", sub="log", verb="get"), NOW)[0]
    access.associate(rec, USER, ADMIN, {"type": "cluster"}, NOW)
    assert access.authorize(rec, _sar(resource="nodes", namespace="", verb="delete"), NOW)[0]
    assert access.authorize(rec, {"extra": {"principalId": ["AIDAUSER"]},
                                  "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}, NOW)[0]
    # the same record in CONFIG_MAP mode: the authorizer has no opinion
    rec["authenticationMode"] = "CONFIG_MAP"
    assert access.authorize(rec, _sar(), NOW) == (False, "")


@pytest.mark.parametrize("policy, allowed, refused", [
    ("AmazonEKSEditPolicy", [("create", "pods", "", ""), ("get", "secrets", "", ""), ("create", "pods", "", "exec"),
                             ("update", "deployments", "apps", "scale")],
     [("create", "roles", "rbac.authorization.k8s.io", ""), ("list", "nodes", "", "")]),
    ("AmazonEKSAdminPolicy", [("create", "roles", "rbac.authorization.k8s.io", ""),
                              ("create", "localsubjectaccessreviews", "authorization.k8s.io", "")],
     [("create", "clusterroles", "rbac.authorization.k8s.io", "")]),
    ("AmazonEKSAdminViewPolicy", [("get", "secrets", "", ""), ("list", "anything", "any.group", "")],
     [("create", "pods", "", "")]),
    ("AmazonEKSSecretReaderPolicy", [("watch", "secrets", "", "")], [("list", "pods", "", "")]),
    ("AmazonEKSViewPolicy", [("get", "pods", "", "log"), ("list", "endpointslices", "discovery.k8s.io", "")],
     [("get", "secrets", "", ""), ("create", "pods", "", "exec")]),
])
def test_policy_tables(policy, allowed, refused):
    rec = api_record()
    access.create_entry(rec, "myeks", "r", USER, "AIDAUSER", NOW)
    access.associate(rec, USER, access.POLICY_PREFIX + policy, {"type": "cluster"}, NOW)
    for verb, resource, group, sub in allowed:
        assert access.authorize(rec, _sar(verb=verb, resource=resource, group=group, sub=sub), NOW)[0], (verb, resource)
    for verb, resource, group, sub in refused:
        assert not access.authorize(rec, _sar(verb=verb, resource=resource, group=group, sub=sub), NOW)[0]


def test_store_is_shared_through_the_file(tmp_path):
    a, b = access.Store(tmp_path / "eks" / "access.json"), access.Store(tmp_path / "eks" / "access.json")
    a.write(api_record())
    a.change(lambda rec: access.create_entry(rec, "myeks", "r", USER, "AIDAUSER", NOW))
    assert USER in b.read()["entries"]
    with pytest.raises(access.EksError):
        a.change(lambda rec: access.create_entry(rec, "myeks", "r", USER, "AIDAUSER", NOW))
    assert len(b.read()["entries"]) == 1
    assert (tmp_path / "eks" / "access.json").stat().st_mode & 0o077 == 0


def test_a_reader_that_changes_nothing_shares_the_kept_record(tmp_path):
    """A token review reads the record without a copy of it; a pending update that has finished
    applies to a copy, never to the record every reader shares."""
    store = access.Store(tmp_path / "eks" / "access.json")
    store.write(access.new_record("CONFIG_MAP", NOW))
    shared = store.read_shared()
    assert store.read_shared() is shared and store.read() == shared and store.read() is not shared
    store.change(lambda rec: access.update_mode(rec, "API_AND_CONFIG_MAP", NOW))
    assert store.effective(NOW)[0] == "CONFIG_MAP"
    mode, rec = store.effective(NOW + access.MODE_DELAY)
    assert (mode, rec["authenticationMode"], rec["pending"]) == ("API_AND_CONFIG_MAP", "API_AND_CONFIG_MAP", None)
    assert store.read_shared()["pending"] is not None  # kept: a clock set back reads the mode before
    assert store.effective(NOW)[0] == "CONFIG_MAP"
