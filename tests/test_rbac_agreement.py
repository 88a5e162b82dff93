"""The local RBAC evaluator agrees with the API server's SubjectAccessReview on every question.

Randomized corpora (aggregated ClusterRoles, RoleBindings to ClusterRoles, wildcards,
resourceNames, subresources, nonResourceURLs, groups, SA subjects without a namespace,
bindings to missing roles) are written to the real API server; then each question is asked
of both. Agreement must be total: the decision, and the reason (the binding the server names
is one the local evaluator found; a denial names the same broken role references).
"""
from __future__ import annotations

import re

import pytest

from helpers import authz

from . import rbac_corpus


def _errors(reason: str) -> set[str]:
    body = reason.removeprefix("RBAC: ")
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    return set(re.findall(r'(?:cluster)?role\.rbac\.authorization\.k8s\.io "[^"]+" not found', body))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_local_rbac_agrees_with_subject_access_review(sb, learner_environment, seed):
    corpus = rbac_corpus.Corpus(seed, bindings=80)
    try:
        snap = rbac_corpus.apply(corpus)
        asked, allowed, disagreements = 0, 0, []
        for who in corpus.identities():
            for req in corpus.requests(60):
                local = snap.decide(who, req)
                server = authz.server_decide(who, req)
                asked += 1
                allowed += server["allowed"]
                problem = None
                if local.allowed != server["allowed"]:
                    problem = "decision"
                elif server["allowed"] and server["reason"]:
                    if server["reason"] not in {f"RBAC: allowed by {g.source}" for g in local.by}:
                        problem = "allowing binding"
                elif server["allowed"] and not local.privileged:
                    problem = "privileged group"
                elif not server["allowed"] and _errors(server["reason"]) != set(local.errors):
                    problem = "broken references"
                if problem:
                    disagreements.append(f"{problem}: {who} / {req}: local={local.reason!r} server={server!r}")
        assert not disagreements, f"{len(disagreements)} of {asked} disagree:\n" + "\n".join(disagreements[:10])
        # The corpus must exercise both outcomes, or agreement would prove little.
        assert 0.05 * asked < allowed < 0.95 * asked, (allowed, asked)
    finally:
        rbac_corpus.delete(corpus)


def test_access_matrix_agrees_with_server_matrix(sb, learner_environment):
    """The rakkess-style matrix, cell by cell, against one SubjectAccessReview per cell."""
    from helpers import rbac
    corpus = rbac_corpus.Corpus(4, bindings=80)
    try:
        rbac_corpus.apply(corpus)
        snap = authz.Snapshot.load()
        extra = ["pods", "pods/exec", "pods/log", "deployments.apps/scale", "secrets"]
        checked = 0
        for who in corpus.identities()[::3]:
            for ns, resources in ((corpus.namespaces[0], None), ("", None), (corpus.namespaces[1], extra)):
                local = rbac.access_matrix(who, ns, resources=resources, snapshot=snap)
                server = rbac.server_matrix(who, ns, resources=resources, snapshot=snap)
                diff = rbac.compare(local, server)
                assert diff.empty, f"{who} in {ns or 'cluster'}:\n{diff}"
                checked += int((local != rbac.NA).to_numpy().sum())
        assert checked > 1000
    finally:
        rbac_corpus.delete(corpus)
