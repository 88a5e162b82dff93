"""What EKS's access policies allow: the permission tables of the EKS user guide ("Review access
policy permissions"), row by row, and the names EKS lists (ListAccessPolicies).

A fact of EKS that two sides read: the sandbox's EKS authorizer decides with it, and the notebook
helpers' permission views (who-can, explain, the access matrix) show what an access entry's
policies grant with it. This module imports nothing of the project, so anything may import it.
"""

from __future__ import annotations

from dataclasses import dataclass

POLICY_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"

RO = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")


@dataclass(frozen=True)
class Rule:
    verbs: tuple[str, ...]
    groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()

    def allows(self, a: dict) -> bool:
        """A SubjectAccessReview's resource or non-resource attributes, matched as RBAC matches."""
        if not _any(self.verbs, a.get("verb", "")):
            return False
        if "path" in a:  # nonResourceAttributes
            path = a["path"]
            return any(
                u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1]))
                for u in self.urls
            )
        if self.urls and not self.resources:
            return False
        resource = a.get("resource", "") + (f"/{a['subresource']}" if a.get("subresource") else "")
        return _any(self.groups, a.get("group", "")) and _any(self.resources, resource)


def _any(allowed: tuple[str, ...], value: str) -> bool:
    return "*" in allowed or value in allowed


def _rows(*rows) -> list[Rule]:
    return [
        Rule(tuple(verbs), (group,), tuple(resources.split())) for group, resources, verbs in rows
    ]


# The permission tables of "Review access policy permissions" (EKS user guide), row by row.
_VIEW = _rows(
    (
        "apps",
        "controllerrevisions daemonsets daemonsets/status deployments deployments/scale "
        "deployments/status replicasets replicasets/scale replicasets/status statefulsets "
        "statefulsets/scale statefulsets/status",
        RO,
    ),
    ("autoscaling", "horizontalpodautoscalers horizontalpodautoscalers/status", RO),
    ("batch", "cronjobs cronjobs/status jobs jobs/status", RO),
    ("discovery.k8s.io", "endpointslices", RO),
    (
        "extensions",
        "daemonsets daemonsets/status deployments deployments/scale deployments/status "
        "ingresses ingresses/status networkpolicies replicasets replicasets/scale "
        "replicasets/status replicationcontrollers/scale",
        RO,
    ),
    ("networking.k8s.io", "ingresses ingresses/status networkpolicies", RO),
    ("policy", "poddisruptionbudgets poddisruptionbudgets/status", RO),
    (
        "",
        "configmaps endpoints persistentvolumeclaims persistentvolumeclaims/status pods "
        "replicationcontrollers replicationcontrollers/scale serviceaccounts services "
        "services/status",
        RO,
    ),
    (
        "",
        "bindings events limitranges namespaces/status pods/log pods/status "
        "replicationcontrollers/status resourcequotas resourcequotas/status",
        RO,
    ),
    ("", "namespaces", RO),
)
_EDIT = _VIEW + _rows(
    (
        "apps",
        "daemonsets deployments deployments/rollback deployments/scale replicasets "
        "replicasets/scale statefulsets statefulsets/scale",
        WRITE,
    ),
    ("autoscaling", "horizontalpodautoscalers", WRITE),
    ("batch", "cronjobs jobs", WRITE),
    (
        "extensions",
        "daemonsets deployments deployments/rollback deployments/scale ingresses "
        "networkpolicies replicasets replicasets/scale replicationcontrollers/scale",
        WRITE,
    ),
    ("networking.k8s.io", "ingresses networkpolicies", WRITE),
    ("policy", "poddisruptionbudgets", WRITE),
    ("", "pods/attach pods/exec pods/portforward pods/proxy secrets services/proxy", RO),
    ("", "serviceaccounts", ("impersonate",)),
    ("", "pods pods/attach pods/exec pods/portforward pods/proxy", WRITE),
    (
        "",
        "configmaps events persistentvolumeclaims replicationcontrollers "
        "replicationcontrollers/scale secrets serviceaccounts services services/proxy",
        WRITE,
    ),
)
_ADMIN = _EDIT + _rows(
    ("authorization.k8s.io", "localsubjectaccessreviews", ("create",)),
    ("rbac.authorization.k8s.io", "rolebindings roles", WRITE + RO),
)
POLICIES: dict[str, list[Rule]] = {
    "AmazonEKSClusterAdminPolicy": [Rule(("*",), ("*",), ("*",)), Rule(("*",), urls=("*",))],
    "AmazonEKSAdminPolicy": _ADMIN,
    "AmazonEKSAdminViewPolicy": [Rule(RO, ("*",), ("*",))],
    "AmazonEKSEditPolicy": _EDIT,
    "AmazonEKSViewPolicy": _VIEW,
    "AmazonEKSSecretReaderPolicy": _rows(("", "secrets", RO)),
    "AmazonEKSHybridPolicy": [Rule(("list",), ("*",), ("nodes",))],
}
# Listed by EKS too, for its own components (Auto Mode, Insights, …); the user guide describes
# them in words only, so in the sandbox they grant nothing (README, "Differences from EKS").
LISTED_ONLY = (
    "AmazonAIOpsAssistantPolicy",
    "AmazonARCRegionSwitchScalingPolicy",
    "AmazonEKSAutoNodePolicy",
    "AmazonEKSBlockStorageClusterPolicy",
    "AmazonEKSBlockStoragePolicy",
    "AmazonEKSClusterInsightsPolicy",
    "AmazonEKSComputeClusterPolicy",
    "AmazonEKSComputePolicy",
    "AmazonEKSLoadBalancingClusterPolicy",
    "AmazonEKSLoadBalancingPolicy",
    "AmazonEKSNetworkingClusterPolicy",
    "AmazonEKSNetworkingPolicy",
    "AmazonEMRJobPolicy",
)


def policy_list() -> list[dict]:
    """ListAccessPolicies: every policy, by name."""
    return [{"name": n, "arn": POLICY_PREFIX + n} for n in sorted({*POLICIES, *LISTED_ONLY})]


def rbac_rules(name: str) -> list[dict]:
    """Policy NAME's rules in RBAC's shape (verbs, apiGroups, resources or nonResourceURLs): what
    an RBAC evaluator matches the same way the EKS authorizer does."""
    out = []
    for r in POLICIES.get(name, []):
        if r.urls:
            out.append({"verbs": list(r.verbs), "nonResourceURLs": list(r.urls)})
        else:
            out.append(
                {
                    "verbs": list(r.verbs),
                    "apiGroups": list(r.groups),
                    "resources": list(r.resources),
                }
            )
    return out
