"""The permission views agree with the API server on a cluster with access entries (issue #14).

On a sandbox created in API_AND_CONFIG_MAP mode, a randomized corpus of RBAC objects (as in
test_rbac_agreement) is joined by IAM users and roles with access entries: random Kubernetes
groups (which the RBAC bindings name), random access policies (every policy whose permissions
the user guide tables, and one it describes in words only), scoped to the cluster or to
namespaces given exactly or with EKS's `*` wildcard. Each entry's identity (its username, groups
and IAM principal) and each question are put to the local evaluator (`Snapshot.decide`: RBAC,
then the access policies) and to the API server (a SubjectAccessReview naming the principal, so
the EKS authorizer answers after RBAC). Agreement must be total: the decision, and the reason
(RBAC's binding, or the entry and policy the EKS authorizer names). The same names without the
principal (what impersonation sends) get RBAC's answer only.
"""
from __future__ import annotations

import random

import pytest

from helpers import accesspolicies, authz, target
from helpers.authz import Request, Snapshot

from . import rbac_corpus
from .conftest import using

pytestmark = pytest.mark.sandbox
POLICIES = [*accesspolicies.POLICIES, "AmazonEKSAutoNodePolicy"]


def _entries(corpus: rbac_corpus.Corpus, rng: random.Random, n: int) -> list[str]:
    """N IAM principals (users and roles) with access entries and random policies; their ARNs."""
    iam, eks = target.aws_client("iam"), target.aws_client("eks")
    t, arns = corpus.tag, []
    trust = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
             '{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}')
    for i in range(n):
        if i % 3 == 2:
            arn = iam.create_role(RoleName=f"{t}-role{i}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        else:
            arn = iam.create_user(UserName=f"{t}-iam{i}")["User"]["Arn"]
        kw = {"kubernetesGroups": rng.sample(corpus.groups, rng.randint(0, 2))}
        if rng.random() < 0.3:
            kw["username"] = f"{t}-named{i}"
        eks.create_access_entry(clusterName="myeks", principalArn=arn, **kw)
        for policy in rng.sample(POLICIES, rng.randint(0, 3)):
            if rng.random() < 0.3:
                scope = {"type": "cluster"}
            else:
                choices = corpus.namespaces + [f"{t}-ns*", f"{t}-n*", "default", f"{t}-nowhere-*"]
                scope = {"type": "namespace", "namespaces": rng.sample(choices, rng.randint(1, 2))}
            eks.associate_access_policy(clusterName="myeks", principalArn=arn, accessScope=scope,
                                        policyArn=accesspolicies.POLICY_PREFIX + policy)
        arns.append(arn)
    return arns


def _remove(corpus: rbac_corpus.Corpus) -> None:
    iam, eks = target.aws_client("iam"), target.aws_client("eks")
    for arn in eks.list_access_entries(clusterName="myeks")["accessEntries"]:
        if f"/{corpus.tag}-" in arn:
            eks.delete_access_entry(clusterName="myeks", principalArn=arn)
    for u in iam.list_users()["Users"]:
        if u["UserName"].startswith(f"{corpus.tag}-"):
            iam.delete_user(UserName=u["UserName"])
    for r in iam.list_roles()["Roles"]:
        if r["RoleName"].startswith(f"{corpus.tag}-"):
            iam.delete_role(RoleName=r["RoleName"])


def _requests(corpus: rbac_corpus.Corpus, rng: random.Random, n: int) -> list[Request]:
    """The corpus's questions, and questions about what the policies' tables name."""
    where = corpus.namespaces + ["", "default"]
    named = [("pods", "", ""), ("pods", "", "exec"), ("pods", "", "log"), ("secrets", "", ""),
             ("deployments", "apps", ""), ("deployments", "apps", "scale"), ("namespaces", "", ""),
             ("rolebindings", "rbac.authorization.k8s.io", ""), ("nodes", "", ""),
             ("localsubjectaccessreviews", "authorization.k8s.io", ""), ("serviceaccounts", "", ""),
             ("ingresses", "networking.k8s.io", ""), ("jobs", "batch", "status")]
    verbs = ["get", "list", "watch", "create", "update", "patch", "delete", "impersonate"]
    out = corpus.requests(n)
    for _ in range(n):
        res, group, sub = rng.choice(named)
        out.append(Request(rng.choice(verbs), res, group, sub, rng.choice(where)))
    out += [Request("get", path="/metrics"), Request("get", path="/healthz")]
    return out


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_views_with_access_entries_agree_with_subject_access_review(sb_api, seed):
    with using(sb_api):
        rng = random.Random(seed)
        corpus = rbac_corpus.Corpus(seed, bindings=40)
        _remove(corpus)
        try:
            rbac_corpus.apply(corpus)
            arns = _entries(corpus, rng, 10)
            snap = Snapshot.load(with_resources=False)
            assert snap.entries_error == "" and {a for a in arns} <= {e.principal_arn for e in snap.entries}
            asked, by_policy, disagreements = 0, 0, []
            for arn in arns:
                who = snap.identity(arn)
                assert who.principal_id, f"{arn}: IAM gave no unique id"
                impersonated = authz.Identity.of(who.user, [g for g in who.groups if g != authz.AUTHENTICATED])
                for req in _requests(corpus, rng, 50):
                    for ident in (who, impersonated):
                        local, server = snap.decide(ident, req), authz.server_decide(ident, req)
                        asked += 1
                        problem = None
                        policy_reasons = {g.source for g in local.by if isinstance(g, authz.AccessGrant)}
                        rbac_reasons = {f"RBAC: allowed by {g.source}" for g in local.by
                                        if not isinstance(g, authz.AccessGrant)}
                        if local.allowed != server["allowed"]:
                            problem = "decision"
                        elif server["allowed"] and server["reason"].startswith("RBAC: "):
                            problem = None if server["reason"] in rbac_reasons else "allowing binding"
                        elif server["allowed"]:
                            by_policy += 1
                            if rbac_reasons or server["reason"] not in policy_reasons:
                                problem = "allowing access policy"
                        if problem:
                            disagreements.append(f"{problem}: {ident} / {req}: local={local.reason!r} "
                                                 f"server={server!r}")
            assert not disagreements, f"{len(disagreements)} of {asked} disagree:\n" + "\n".join(disagreements[:10])
            # the access policies must have decided a fair share, or agreement would prove little
            assert by_policy > 0.05 * asked, (by_policy, asked)
        finally:
            _remove(corpus)
            rbac_corpus.delete(corpus)


def test_access_matrix_with_entries_agrees_with_server_matrix(sb_api):
    """The rakkess-style matrix of an entry's identity, cell by cell, against SubjectAccessReviews."""
    from helpers import rbac
    with using(sb_api):
        rng = random.Random(14)
        corpus = rbac_corpus.Corpus(14, bindings=30)
        _remove(corpus)
        try:
            rbac_corpus.apply(corpus)
            arns = _entries(corpus, rng, 4)
            snap = Snapshot.load()
            checked = 0
            for arn in arns:
                for ns in (corpus.namespaces[0], "", "default"):
                    local = rbac.access_matrix(arn, ns, snapshot=snap)
                    diff = rbac.compare(local, rbac.server_matrix(arn, ns, snapshot=snap))
                    assert diff.empty, f"{arn} in {ns or 'cluster'}:\n{diff}"
                    checked += int((local != rbac.NA).to_numpy().sum())
            assert checked > 1000
        finally:
            _remove(corpus)
            rbac_corpus.delete(corpus)
