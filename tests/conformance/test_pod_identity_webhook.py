"""amazon-eks-pod-identity-webhook's own test vectors, re-expressed as data (issue #13).

Source: aws/amazon-eks-pod-identity-webhook at tag v0.6.17:
- pkg/handler/handler_pod_test.go (TestUpdatePodSpec) and its testdata/*.pod.yaml and
  testdata/containercredentials/*.pod.yaml fixtures: each fixture is a pod whose `testing.…`
  annotations say what the ServiceAccount carries and how the webhook runs, and the JSON patch
  expected back. Here each is written as our own data: the ServiceAccount's annotations, the
  handler's region, the container-credentials settings, the pod as Go reads it, the patch.
- pkg/handler/handler_test.go (TestMutatePod, TestMutatePod_MutationNotNeeded,
  TestModifierHandler): the review-level and HTTP-level answers.
- pkg/cache/fake.go and cache.go: how annotations are read (Go booleans and integers).

Upstream's fake cache reads `sts-regional-endpoints` as false unless it parses as true, and the
tests' random source always returns 0 (so a default-length container-credentials token gets the
low end of the jitter, 79200 s): `jitter=low` below. Go writes the zero value of fields it does
not omit (`"resources":{}`, `"mountPath":""`, a gRPC probe's `"service":null`); the API server
has already defaulted a pod it sends, so `normalised` drops them before comparing.
"""
from __future__ import annotations

import json

import pytest

from helpers.sandbox.eks import podidentity
from helpers.sandbox.eks.podidentity import ContainerCredentials

ROLE = "arn:aws:iam::111122223333:role/s3-reader"
ROLE_CN = "arn:aws-cn:iam::111122223333:role/s3-reader"
MOUNT_PATH = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
TOKEN_FILE = MOUNT_PATH + "/token"
WINDOWS_TOKEN_FILE = "C:\\var\\run\\secrets\\eks.amazonaws.com\\serviceaccount\\token"
MOUNT = {"name": "aws-iam-token", "readOnly": True, "mountPath": MOUNT_PATH}
CC = ContainerCredentials("con-creds-uri", "con-creds-aud", "/con-creds-mount-path",
                          "con-creds-volume-name", "con-creds-token-path")
CC_MOUNT = {"name": "con-creds-volume-name", "readOnly": True, "mountPath": "/con-creds-mount-path"}
CC_ENV = [("AWS_CONTAINER_CREDENTIALS_FULL_URI", "con-creds-uri"),
          ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/con-creds-mount-path/con-creds-token-path")]
IRSA_ENV = [("AWS_ROLE_ARN", ROLE), ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE)]
IRSA_ENV_CN = [("AWS_ROLE_ARN", ROLE_CN), ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE)]
STS = [("AWS_STS_REGIONAL_ENDPOINTS", "regional")]
PRESET = [("AWS_REGION", "cn-northwest-1"), ("AWS_STS_REGIONAL_ENDPOINTS", "regional")]


def region(name):
    return [("AWS_DEFAULT_REGION", name), ("AWS_REGION", name)]


def env(pairs):
    return [{"name": n, "value": v} for n, v in pairs]


def container(name="balajilovesoreos", pairs=None, mounts=None, **more):
    c = {"name": name, "image": "amazonlinux", **more}
    if pairs is not None:
        c["env"] = env(pairs)
    if mounts is not None:
        c["volumeMounts"] = mounts
    return c


def volume(audience="sts.amazonaws.com", seconds=86400, name="aws-iam-token", path="token"):
    return {"name": name, "projected": {"sources": [{"serviceAccountToken": {
        "audience": audience, "expirationSeconds": seconds, "path": path}}]}}


def first_volume(v):
    return {"op": "add", "path": "/spec/volumes", "value": [v]}


def containers(*cs):
    return {"op": "add", "path": "/spec/containers", "value": list(cs)}


LABEL = {"op": "add", "path": "/metadata/labels", "value": {"eks.amazonaws.com/pod-identity": "enabled"}}


# name: (ServiceAccount annotations, handler region, container credentials, pod, expected patch)
# SA annotation keys are written without their `eks.amazonaws.com/` prefix.
VECTORS = {
    "betaWindowsPodWithoutVolumes": (
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "", None,
        {"spec": {"containers": [container()],
                  "nodeSelector": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "windows"}}},
        [first_volume(volume()),
         containers(container(pairs=[("AWS_ROLE_ARN", ROLE), ("AWS_WEB_IDENTITY_TOKEN_FILE", WINDOWS_TOKEN_FILE)],
                              mounts=[MOUNT]))]),
    "windowsPodWithoutVolumes": (
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "", None,
        {"spec": {"containers": [container()],
                  "nodeSelector": {"kubernetes.io/arch": "amd64", "kubernetes.io/os": "windows"}}},
        [first_volume(volume()),
         containers(container(pairs=[("AWS_ROLE_ARN", ROLE), ("AWS_WEB_IDENTITY_TOKEN_FILE", WINDOWS_TOKEN_FILE)],
                              mounts=[MOUNT]))]),
    "initPodNeedsRegion": (
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "seattle", None,
        {"spec": {"initContainers": [container()], "containers": [container()]}},
        [first_volume(volume()),
         containers(container(pairs=region("seattle") + IRSA_ENV, mounts=[MOUNT])),
         {"op": "add", "path": "/spec/initContainers",
          "value": [container(pairs=region("seattle") + IRSA_ENV, mounts=[MOUNT])]}]),
    "rawPodHasAll": (  # every variable present: the container is left alone, even its mounts
        {"role-arn": ROLE_CN, "audience": "sts.amazonaws.com", "sts-regional-endpoints": "true",
         "token-expiration": "3600"}, "cn-north-1", None,
        {"spec": {"containers": [container(pairs=PRESET + [("AWS_ROLE_ARN", ROLE_CN)])]}},
        [first_volume(volume(seconds=3600)),
         containers(container(pairs=PRESET + [("AWS_ROLE_ARN", ROLE_CN)]))]),
    "rawPodHasSTS": (
        {"role-arn": ROLE_CN, "audience": "sts.amazonaws.com", "sts-regional-endpoints": "true"},
        "cn-north-1", None,
        {"spec": {"containers": [container(pairs=PRESET)]}},
        [first_volume(volume()), containers(container(pairs=PRESET + IRSA_ENV_CN, mounts=[MOUNT]))]),
    "rawPodHasTokenExpiration": (  # the pod's annotation overrides the SA's lifetime
        {"role-arn": ROLE_CN, "audience": "sts.amazonaws.com", "sts-regional-endpoints": "true"},
        "cn-north-1", None,
        {"metadata": {"annotations": {"eks.amazonaws.com/token-expiration": "3600"}},
         "spec": {"containers": [container(pairs=PRESET)]}},
        [first_volume(volume(seconds=3600)),
         containers(container(pairs=PRESET + IRSA_ENV_CN, mounts=[MOUNT]))]),
    "rawPodMinTokenExpiration": (  # below the API server's 600 s: raised to it
        {"role-arn": ROLE_CN, "audience": "sts.amazonaws.com", "sts-regional-endpoints": "true"},
        "cn-north-1", None,
        {"metadata": {"annotations": {"eks.amazonaws.com/token-expiration": "0"}},
         "spec": {"containers": [container(pairs=PRESET)]}},
        [first_volume(volume(seconds=600)),
         containers(container(pairs=PRESET + IRSA_ENV_CN, mounts=[MOUNT]))]),
    "rawPodHasVolumeMount": (  # the fixture's mount has `path:`, a field Go drops: name only
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "", None,
        {"spec": {"containers": [container(mounts=[{"name": "aws-iam-token"}])],
                  "volumes": [{"name": "aws-iam-token", "hostPath": {"path": "/path/to/token"}}]}},
        [containers(container(pairs=IRSA_ENV, mounts=[{"name": "aws-iam-token"}]))]),
    "rawPodNeedsRegion": (
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "seattle", None,
        {"spec": {"containers": [container()]}},
        [first_volume(volume()), containers(container(pairs=region("seattle") + IRSA_ENV, mounts=[MOUNT]))]),
    "rawPodNeedsSTS": (
        {"role-arn": ROLE_CN, "audience": "sts.amazonaws.com", "sts-regional-endpoints": "true"},
        "cn-north-1", None,
        {"spec": {"containers": [container()]}},
        [first_volume(volume()),
         containers(container(pairs=STS + region("cn-north-1") + IRSA_ENV_CN, mounts=[MOUNT]))]),
    "rawPodNoSTSAnnotationOverride": (  # the SA's `false` wins over the handler's default
        {"role-arn": ROLE, "audience": "sts.amazonaws.com", "sts-regional-endpoints": "false"},
        "us-east-1", None,
        {"spec": {"containers": [container()]}},
        [first_volume(volume()), containers(container(pairs=region("us-east-1") + IRSA_ENV, mounts=[MOUNT]))]),
    "rawPodRegionPresent": (
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "", None,
        {"spec": {"containers": [container(pairs=[("AWS_REGION", "paris")])]}},
        [first_volume(volume()),
         containers(container(pairs=[("AWS_REGION", "paris")] + IRSA_ENV, mounts=[MOUNT]))]),
    "rawPodSkip": (
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "us-west-2", None,
        {"metadata": {"annotations": {"eks.amazonaws.com/skip-containers": "sidecar"}},
         "spec": {"containers": [container("sidecar"),
                                 container(pairs=[("AWS_ROLE_ARN", "already-defined")])]}},
        [first_volume(volume()),
         containers(container("sidecar"),
                    container(pairs=[("AWS_ROLE_ARN", "already-defined")] + region("us-west-2"),
                              mounts=[MOUNT]))]),
    "rawPodWithGRPC": (
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "seattle", None,
        {"spec": {"containers": [container(readinessProbe={"grpc": {"port": 5000}})]}},
        [first_volume(volume()),
         containers(container(pairs=region("seattle") + IRSA_ENV, mounts=[MOUNT],
                              readinessProbe={"grpc": {"port": 5000}}))]),
    "rawPodWithInitContainer": (  # a restartable init container (a sidecar) too
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "seattle", None,
        {"spec": {"initContainers": [container("initcontainer"), container("sidecar", restartPolicy="Always")],
                  "containers": [container()]}},
        [first_volume(volume()),
         containers(container(pairs=region("seattle") + IRSA_ENV, mounts=[MOUNT])),
         {"op": "add", "path": "/spec/initContainers", "value": [
             container("initcontainer", pairs=region("seattle") + IRSA_ENV, mounts=[MOUNT]),
             container("sidecar", pairs=region("seattle") + IRSA_ENV, mounts=[MOUNT], restartPolicy="Always")]}]),
    "rawPodWithVolumes": (  # the token volume goes first, before the pod's own
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "", None,
        {"spec": {"containers": [container()], "volumes": [{"name": "my-volume"}]}},
        [{"op": "add", "path": "/spec/volumes/0", "value": volume()},
         containers(container(pairs=IRSA_ENV, mounts=[MOUNT]))]),
    "rawPodWithoutVolumes": (
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "", None,
        {"spec": {"containers": [container()]}},
        [first_volume(volume()), containers(container(pairs=IRSA_ENV, mounts=[MOUNT]))]),
    "rawPodWithsecCompProfile": (
        {"role-arn": ROLE, "audience": "sts.amazonaws.com"}, "seattle", None,
        {"spec": {"containers": [container(securityContext={"seccompProfile": {"type": "RuntimeDefault"}})]}},
        [first_volume(volume()),
         containers(container(pairs=region("seattle") + IRSA_ENV, mounts=[MOUNT],
                              securityContext={"seccompProfile": {"type": "RuntimeDefault"}}))]),
    # testdata/containercredentials/: an association wins over a role, labels the pod, and its
    # token lives under the association's own mount path and volume name
    "containercredentials/rawPodNeedsAll": (
        {"sts-regional-endpoints": "true", "token-expiration": "10000"}, "cn-north-1", CC,
        {"spec": {"containers": [container()]}},
        [LABEL, first_volume(volume("con-creds-aud", 10000, "con-creds-volume-name", "con-creds-token-path")),
         containers(container(pairs=STS + region("cn-north-1") + CC_ENV, mounts=[CC_MOUNT]))]),
    "containercredentials/rawPodSkip": (
        {}, "", CC,
        {"metadata": {"annotations": {"eks.amazonaws.com/skip-containers": "sidecar"}},
         "spec": {"containers": [container("sidecar"), container()]}},
        [LABEL, first_volume(volume("con-creds-aud", 79200, "con-creds-volume-name", "con-creds-token-path")),
         containers(container("sidecar"), container(pairs=CC_ENV, mounts=[CC_MOUNT]))]),
    "containercredentials/rawPodWithConflictingVolumeMount": (
        {}, "", CC,
        {"spec": {"containers": [container(mounts=[{"mountPath": "/some/other/path",
                                                     "name": "con-creds-volume-name", "readOnly": True}])],
                  "volumes": [{"name": "con-creds-volume-name", "hostPath": {"path": "token"}}]}},
        [LABEL, containers(container(pairs=CC_ENV, mounts=[
            {"name": "con-creds-volume-name", "readOnly": True, "mountPath": "/some/other/path"}]))]),
    "containercredentials/rawPodWithRoleArn": (
        {"sts-regional-endpoints": "true", "token-expiration": "10000", "role-arn": ROLE_CN}, "", CC,
        {"spec": {"containers": [container()]}},
        [LABEL, first_volume(volume("con-creds-aud", 10000, "con-creds-volume-name", "con-creds-token-path")),
         containers(container(pairs=STS + CC_ENV, mounts=[CC_MOUNT]))]),
    "containercredentials/rawPodWithVolume": (
        {}, "", CC,
        {"spec": {"containers": [container()], "volumes": [{"name": "tokenPath"}]}},
        [LABEL, {"op": "add", "path": "/spec/volumes/0",
                 "value": volume("con-creds-aud", 79200, "con-creds-volume-name", "con-creds-token-path")},
         containers(container(pairs=CC_ENV, mounts=[CC_MOUNT]))]),
    "containercredentials/rawPodWithoutVolumes": (
        {}, "", CC,
        {"spec": {"containers": [container()]}},
        [LABEL, first_volume(volume("con-creds-aud", 79200, "con-creds-volume-name", "con-creds-token-path")),
         containers(container(pairs=CC_ENV, mounts=[CC_MOUNT]))]),
}


def low(lo, hi):
    return lo


def fake_cache_entry(short: dict[str, str]) -> podidentity.SAConfig:
    """pkg/cache/fake.go's reading of the test ServiceAccount (regional STS off unless `true`)."""
    return podidentity.sa_config({f"eks.amazonaws.com/{k}": v for k, v in short.items()},
                                 regional_default=False)


def normalised(value):
    """Without the zero values Go writes for fields it does not omit (see the module's doc)."""
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()
                if not (v is None or (k == "resources" and v == {}) or (k == "mountPath" and v == ""))}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    return value


def test_every_upstream_fixture_is_here():
    assert len(VECTORS) == 24  # 18 in testdata/, 6 in testdata/containercredentials/


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_pkg_handler_update_pod_spec(name):
    sa, region_name, creds, pod, expected = VECTORS[name]
    pod = json.loads(json.dumps(pod))
    pod.setdefault("metadata", {}).update(name="balajilovesoreos", namespace="default")
    pod["spec"]["serviceAccountName"] = "default"
    patch, changed = podidentity.patch_for(pod, fake_cache_entry(sa), region_name, creds=creds, jitter=low)
    assert normalised(patch) == expected
    assert changed  # each adds at least the volume or a variable


def test_pkg_handler_mutate_pod_review_and_not_needed():
    """TestMutatePod (a valid review) and TestMutatePod_MutationNotNeeded (no role: no patch)."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "balajilovesoreos", "uid": "be8695c4-4ad0-4038-8786-c508853aa255"},
           "spec": {"containers": [{"image": "amazonlinux", "name": "balajilovesoreos"}],
                    "serviceAccountName": "default"}}
    review = {"request": {"uid": "918ef1dc-928f-4525-99ef-988389f263c3", "namespace": "default",
                          "operation": "CREATE", "object": pod}}
    sa = {"eks.amazonaws.com/role-arn": ROLE, "eks.amazonaws.com/token-expiration": "3600"}
    response, entry = podidentity.respond(review, lambda ns, name: sa, "", jitter=low,
                                          read=lambda a: podidentity.sa_config(a, regional_default=False))
    assert response["allowed"] and response["patchType"] == "JSONPatch"
    assert response["uid"] == "918ef1dc-928f-4525-99ef-988389f263c3"
    import base64
    assert normalised(json.loads(base64.b64decode(response["patch"]))) == [
        first_volume(volume(seconds=3600)), containers(container(pairs=IRSA_ENV, mounts=[MOUNT]))]
    assert entry["decision"] == "mutated"
    response, entry = podidentity.respond(review, lambda ns, name: None, "")
    assert response == {"uid": "918ef1dc-928f-4525-99ef-988389f263c3", "allowed": True}
    assert "patch" not in response and entry["decision"].startswith("not mutated")


@pytest.mark.parametrize("review, message", [
    (None, "bad content"),                                   # nilBody
    ({"request": None}, "bad content"),                      # NoRequest
    ({"request": {"object": '"metadata":{"name":"fake"'}},   # InvalidPodBytes
     "json: cannot unmarshal string into Go value of type v1.Pod"),
])
def test_pkg_handler_refusals(review, message):
    response, _ = podidentity.respond(review, lambda ns, name: {}, "")
    assert response == {"uid": "", "allowed": False, "status": {"metadata": {}, "message": message}}


def test_pkg_handler_invalid_json_message():
    """TestModifierHandler's InvalidJSON: a body cut short."""
    body = '{"request": {"object": "\\"metadata\\":{\\"name\\":\\"fake\\""}'
    with pytest.raises(json.JSONDecodeError) as e:
        json.loads(body)
    assert podidentity.decode_error(e.value) == (
        "couldn't get version/kind; json parse error: unexpected end of JSON input")


def test_pkg_handler_bad_content_type_text():
    """TestModifierHandler's BadContentType (the webhook answers 415 with this text)."""
    assert podidentity.UNSUPPORTED_MEDIA == b"Invalid Content-Type, expected `application/json`\n"


# --- pkg/cache/cache.go addSA: annotations read as Go reads them --------------------------------
@pytest.mark.parametrize("text, regional", [
    ("true", True), ("True", True), ("TRUE", True), ("t", True), ("T", True), ("1", True),
    ("false", False), ("False", False), ("FALSE", False), ("f", False), ("F", False), ("0", False),
    ("yes", None), ("tRUE", None), (" true", None), ("", None), ("on", None),
])
def test_pkg_cache_sts_regional_endpoints_is_a_go_boolean(text, regional):
    for default in (True, False):
        cfg = podidentity.sa_config({"eks.amazonaws.com/role-arn": ROLE,
                                     "eks.amazonaws.com/sts-regional-endpoints": text}, regional_default=default)
        assert cfg.regional_sts is (default if regional is None else regional)


@pytest.mark.parametrize("text, seconds", [
    ("3600", 3600), ("+3600", 3600), ("0600", 600), ("100", 600), ("-5", 600),
    ("3600 ", 86400), ("36_00", 86400), ("1e4", 86400), ("", 86400), ("9223372036854775808", 86400),
])
def test_pkg_cache_token_expiration_is_a_go_integer(text, seconds):
    cfg = podidentity.sa_config({"eks.amazonaws.com/role-arn": ROLE, "eks.amazonaws.com/token-expiration": text})
    assert cfg.token_expiration == seconds


def test_pkg_cache_present_audience_wins_even_empty():
    assert podidentity.sa_config({"eks.amazonaws.com/audience": ""}).audience == ""
    assert podidentity.sa_config({}).audience == "sts.amazonaws.com"
