"""The stand-in kubelet: one Node that is Ready, and pods that reach Running.

What it is, honestly: a small Python process that does the API-server side of a kubelet's
(and a scheduler's) job and nothing on the machine. It registers one Node and keeps its
Lease fresh, binds pending pods to that node (as kube-scheduler would, with the scheduler's
identity), reports bound pods Running with container statuses (with the node's identity,
so NodeRestriction and the Node authorizer judge it as they judge a real kubelet), and
deletes pods once their grace period has passed. Container images are never pulled or run:
`exec` into a pod is done by helpers.sandbox.podexec, which prepares the pod's files,
token and environment the way kubelet does and runs the command on this machine. Its HTTPS
API (kubeletapi.py) answers the API server's `kubectl logs` calls.

Run by `up` as `python -m helpers.sandbox.kubelet --state DIR`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import signal
import threading
import time
import uuid
from pathlib import Path

from . import kubeletapi
from .kubeapi import Api, ApiException, path
from .versions import pins

log = logging.getLogger("stand-in-kubelet")

LEASE_SECONDS = 40
RENEW_EVERY = 10
STATUS_EVERY = 60
MAX_PODS = 17  # what EKS allows on a t3.medium with the VPC CNI
RUNTIME = "stand-in://images-are-not-run"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rfc3339(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pod_ip(uid: str) -> str:
    """A stable per-pod address on loopback: nothing in the sandbox may send traffic elsewhere."""
    h = hashlib.sha256(uid.encode()).digest()
    return f"127.0.{1 + h[0] % 254}.{1 + h[1] % 254}"


def node_object(name: str, region: str) -> dict:
    zone = f"{region}a"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "node.kubernetes.io/instance-type": "t3.medium",
                "topology.kubernetes.io/region": region,
                "topology.kubernetes.io/zone": zone,
                "eks.amazonaws.com/nodegroup": "ng1",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"providerID": f"aws:///{zone}/i-0sandbox0standin0"},
    }


def node_status(name: str, since: dt.datetime, port: int = 10250) -> dict:
    t, s = rfc3339(now()), rfc3339(since)

    def cond(kind: str, status: str, reason: str, message: str) -> dict:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": t,
            "lastTransitionTime": s,
        }

    capacity = {
        "cpu": "2",
        "memory": "3926600Ki",
        "pods": str(MAX_PODS),
        "ephemeral-storage": "20959212Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    allocatable = dict(
        capacity, cpu="1930m", memory="3371592Ki", **{"ephemeral-storage": "18242267924"}
    )
    return {
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                cond(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                cond(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                cond(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name + rfc3339(since))),
                "containerRuntimeVersion": RUNTIME,
                "kernelVersion": platform.release(),
                "kubeProxyVersion": "",
                "kubeletVersion": pins().kubernetes,
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
                "operatingSystem": "linux",
                "osImage": "sandbox stand-in node (no containers run)",
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            },
        }
    }


def running_status(pod: dict, started: dt.datetime) -> dict:
    """The status a kubelet reports once every container of the pod is running."""
    t = rfc3339(started)
    spec, uid = pod["spec"], pod["metadata"]["uid"]

    def container_id(name: str) -> str:
        return "stand-in://" + hashlib.sha256(f"{uid}/{name}".encode()).hexdigest()

    conds = [
        {"type": k, "status": "True", "lastProbeTime": None, "lastTransitionTime": t}
        for k in (
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        )
    ]
    status = {
        "phase": "Running",
        "conditions": conds,
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": pod_ip(uid),
        "podIPs": [{"ip": pod_ip(uid)}],
        "startTime": t,
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "containerID": container_id(c["name"]),
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": t}},
            }
            for c in spec.get("containers", [])
        ],
    }
    if spec.get("initContainers"):
        status["initContainerStatuses"] = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "containerID": container_id(c["name"]),
                "ready": True,
                "started": False,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": t,
                        "finishedAt": t,
                        "containerID": container_id(c["name"]),
                    }
                },
            }
            for c in spec["initContainers"]
        ]
    return {"status": status}


# Commands that, run as a container's PID 1, have no SIGTERM handler: the kernel does not apply the
# default action to PID 1, so they live until SIGKILL at the end of the grace period. This is why
# the lab's pods set terminationGracePeriodSeconds: 0.
IGNORES_SIGTERM = {"sleep", "tail"}
PROMPT_EXIT_SECONDS = 0.5


def seconds_to_exit(spec: dict) -> float:
    """How long the pod's containers take to exit after SIGTERM, as far as the stand-in can tell:
    an image's own entrypoint (nginx, most servers) exits at once; `sleep`/`tail -f` never do."""
    slowest = 0.0
    for c in spec.get("containers", []):
        cmd = (c.get("command") or [])[:1]
        stubborn = bool(cmd) and cmd[0].rsplit("/", 1)[-1] in IGNORES_SIGTERM
        slowest = max(slowest, float("inf") if stubborn else PROMPT_EXIT_SECONDS)
    return slowest


STRATEGIC_MERGE = "application/strategic-merge-patch+json"  # what the typed API sent


class StandInKubelet:
    def __init__(self, state_dir: Path):
        cfg = json.loads((state_dir / "sandbox.json").read_text())
        self.node_name: str = cfg["node_name"]
        self.region: str = cfg["region"]
        self.port: int = cfg["ports"]["kubelet"]
        self.pki = state_dir / "pki"
        self.node_api = Api(state_dir / "node.kubeconfig")
        self.sched_api = Api(state_dir / "scheduler.kubeconfig")
        self.started = now()
        self.stop = threading.Event()
        self._timers: dict[str, threading.Timer] = {}
        self._running: set[str] = set()

    # --- node ---------------------------------------------------------------------------------
    def register(self) -> None:
        try:
            self.node_api.request(
                "POST", path("nodes"), body=node_object(self.node_name, self.region)
            )
            log.info("registered node %s", self.node_name)
        except ApiException as e:
            if e.status != 409:
                raise
        self._patch_node_status()

    def _patch_node_status(self) -> None:
        self.node_api.request(
            "PATCH",
            path("nodes", self.node_name, "status"),
            body=node_status(self.node_name, self.started, self.port),
            content_type=STRATEGIC_MERGE,
        )

    def heartbeat(self) -> None:
        last_status = time.monotonic()
        while not self.stop.is_set():
            try:
                self._renew_lease()
                if time.monotonic() - last_status >= STATUS_EVERY:
                    self._patch_node_status()
                    last_status = time.monotonic()
            except Exception as e:  # the API server may be restarting; keep beating
                log.warning("heartbeat: %s", e)
            self.stop.wait(RENEW_EVERY)

    def _renew_lease(self) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": micro(now()),
            },
        }
        leases = ("namespaces", "kube-node-lease", "leases")
        try:
            self.node_api.request(
                "PATCH",
                path(*leases, self.node_name, group="coordination.k8s.io/v1"),
                body={"spec": body["spec"]},
                content_type=STRATEGIC_MERGE,
            )
        except ApiException as e:
            if e.status != 404:
                raise
            node = self.node_api.get(path("nodes", self.node_name))
            body["metadata"]["ownerReferences"] = [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": self.node_name,
                    "uid": node["metadata"]["uid"],
                }
            ]
            self.node_api.request("POST", path(*leases, group="coordination.k8s.io/v1"), body=body)

    # --- pods ---------------------------------------------------------------------------------
    def _loop(self, api: Api, field_selector: str, handle, what: str) -> None:
        """List, then watch from the list's resourceVersion; relist on any break."""
        while not self.stop.is_set():
            try:
                raw = api.get(path("pods"), field_selector=field_selector)
                for pod in raw.get("items", []):
                    handle(pod)
                for ev in api.watch(
                    path("pods"),
                    raw["metadata"]["resourceVersion"],
                    field_selector=field_selector,
                ):
                    if self.stop.is_set():
                        break
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        handle(ev["object"])
                    elif ev["type"] == "DELETED":
                        uid = ev["object"]["metadata"]["uid"]
                        self._running.discard(uid)
                        timer = self._timers.pop(uid, None)
                        if timer:
                            timer.cancel()
            except Exception as e:
                if not self.stop.is_set():
                    log.warning("%s watch: %s; relisting", what, e)
                    self.stop.wait(1)

    def schedule(self, pod: dict) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        if (
            spec.get("nodeName")
            or meta.get("deletionTimestamp")
            or pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
            or spec.get("schedulerName", "default-scheduler") != "default-scheduler"
        ):
            return
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            self.sched_api.request(
                "POST", path("namespaces", meta["namespace"], "bindings"), body=body
            )
        except ApiException as e:
            if e.status not in (404, 409):
                log.warning("binding %s/%s: %s", meta["namespace"], meta["name"], e.reason)
            return
        self._event(
            pod,
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {self.node_name}",
            "default-scheduler",
            self.sched_api,
        )

    def sync(self, pod: dict) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        if meta.get("deletionTimestamp"):
            self._terminate_later(pod)
            return
        if uid in self._running or pod.get("status", {}).get("phase") == "Running":
            self._running.add(uid)
            return
        try:
            self.node_api.request(
                "PATCH",
                path("namespaces", meta["namespace"], "pods", meta["name"], "status"),
                body=running_status(pod, now()),
                content_type=STRATEGIC_MERGE,
            )
        except ApiException as e:
            if e.status != 404:
                log.warning("status of %s/%s: %s", meta["namespace"], meta["name"], e.reason)
            return
        self._running.add(uid)
        for c in pod["spec"].get("containers", []):
            self._event(
                pod,
                "Started",
                f"Started container {c['name']} (stand-in kubelet: image not run)",
                "kubelet",
                self.node_api,
                field_path=f"spec.containers{{{c['name']}}}",
            )

    def _terminate_later(self, pod: dict) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        if uid in self._timers:
            return
        # Like kubelet: the containers get the grace period from the moment the deletion is seen,
        # and
        # the pod goes as soon as they have exited.
        wait = min(float(meta.get("deletionGracePeriodSeconds") or 0), seconds_to_exit(pod["spec"]))
        timer = threading.Timer(
            wait, self._finish_delete, args=(meta["namespace"], meta["name"], uid)
        )
        timer.daemon = True
        self._timers[uid] = timer
        timer.start()

    def _finish_delete(self, namespace: str, name: str, uid: str) -> None:
        """After the grace period the containers are gone; remove the pod for good, as kubelet
        does."""
        try:
            self.node_api.request(
                "DELETE",
                path("namespaces", namespace, "pods", name),
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
            )
        except ApiException as e:
            if e.status not in (404, 409):
                log.warning("final delete of %s/%s: %s", namespace, name, e.reason)
        self._timers.pop(uid, None)
        self._running.discard(uid)

    def _event(
        self,
        pod: dict,
        reason: str,
        message: str,
        component: str,
        api: Api,
        field_path: str | None = None,
    ) -> None:
        meta = pod["metadata"]
        t = rfc3339(now())
        ref = {
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": "v1",
        }
        if field_path:
            ref["fieldPath"] = field_path
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": "Normal",
            "source": {
                "component": component,
                **({"host": self.node_name} if component == "kubelet" else {}),
            },
            "firstTimestamp": t,
            "lastTimestamp": t,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": self.node_name if component == "kubelet" else "",
        }
        try:
            api.request("POST", path("namespaces", meta["namespace"], "events"), body=body)
        except ApiException as e:
            log.debug("event %s: %s", reason, e.reason)

    def run(self) -> None:
        kubeletapi.serve(self.port, self.pki, kubeletapi.pod_reader(self.node_api), self.stop)
        while not self.stop.is_set():
            try:
                self.register()
                break
            except Exception as e:  # the API server is still starting
                log.debug("register: %s", e)
                self.stop.wait(0.1)
        threads = [
            threading.Thread(target=self.heartbeat, daemon=True),
            threading.Thread(
                target=self._loop,
                daemon=True,
                args=(self.sched_api, "spec.nodeName=", self.schedule, "scheduler"),
            ),
            threading.Thread(
                target=self._loop,
                daemon=True,
                args=(self.node_api, f"spec.nodeName={self.node_name}", self.sync, "kubelet"),
            ),
        ]
        for t in threads:
            t.start()
        self.stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, type=Path)
    args = parser.parse_args()
    logging.basicConfig(
        level=os.environ.get("STAND_IN_KUBELET_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(message)s",
    )
    kubelet = StandInKubelet(args.state)
    signal.signal(signal.SIGTERM, lambda *_: kubelet.stop.set())
    signal.signal(signal.SIGINT, lambda *_: kubelet.stop.set())
    kubelet.run()


if __name__ == "__main__":
    main()
