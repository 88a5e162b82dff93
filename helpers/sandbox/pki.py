"""The sandbox's certificates and keys, made once per state directory with `cryptography`.

Two CAs as on a real control plane: the cluster CA (API server serving cert, every client
cert, the CA a pod finds in ca.crt) and a separate etcd CA, so that no cluster client cert
can talk to etcd directly. Every key file is 0600 in a 0700 directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import paths
from .common import WEBHOOK_CLIENT

# The kubernetes.default Service is the first address of the EKS default service range.
SERVICE_CIDR = "10.100.0.0/16"
KUBERNETES_SERVICE_IP = "10.100.0.1"
API_SANS_DNS = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
)

_TEN_YEARS = dt.timedelta(days=3650)
_ONE_YEAR = dt.timedelta(days=365)


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _leaf_key() -> ec.EllipticCurvePrivateKey:
    # Leaf certificates use P-256: a tenth of RSA's generation time, and nothing in the lab
    # looks at their key type. The cluster CA (a pod's ca.crt) and the ServiceAccount key
    # (RS256 tokens, as EKS signs them) stay RSA.
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_pair(d: Path, stem: str, cert: x509.Certificate, key) -> Pair:
    pair = Pair(d / f"{stem}.crt", d / f"{stem}.key")
    paths.write_private(pair.key, _pem_key(key))
    paths.write_private(pair.cert, cert.public_bytes(serialization.Encoding.PEM))
    return pair


def _load(pair: Pair):
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    return cert, serialization.load_pem_private_key(pair.key.read_bytes(), password=None)


class _Signers:
    """Each CA's certificate and key, read once per `ensure`: reading an RSA key checks it
    (~50 ms), and issuing the 13 leaves read the cluster CA's each time (0.6 of 0.8 s)."""

    def __init__(self):
        self._loaded: dict[Path, tuple] = {}

    def __call__(self, ca: Pair):
        if ca.key not in self._loaded:
            self._loaded[ca.key] = _load(ca)
        return self._loaded[ca.key]


def make_ca(d: Path, stem: str, cn: str, rsa_key: bool = True) -> Pair:
    key = _key() if rsa_key else _leaf_key()
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _TEN_YEARS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                key_cert_sign=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write_pair(d, stem, cert, key)


def issue(
    d: Path,
    stem: str,
    ca: Pair,
    cn: str,
    signers: _Signers | None = None,
    *,
    orgs: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
) -> Pair:
    ca_cert, ca_key = (signers or _Signers())(ca)
    key = _leaf_key()
    now = dt.datetime.now(dt.timezone.utc)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _ONE_YEAR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                key_cert_sign=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if dns or ips:
        names = [x509.DNSName(n) for n in dns] + [
            x509.IPAddress(ipaddress.ip_address(i)) for i in ips
        ]
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _write_pair(d, stem, b.sign(ca_key, hashes.SHA256()), key)


@dataclass(frozen=True)
class ClusterPKI:
    dir: Path
    ca: Pair
    etcd_ca: Pair
    etcd_server: Pair
    apiserver_etcd_client: Pair
    apiserver: Pair
    admin: Pair
    controller_manager: Pair
    controller_manager_server: Pair
    scheduler: Pair
    node: Pair
    aws: Pair
    authenticator: Pair
    pod_identity_webhook: Pair
    kubelet_server: Pair
    apiserver_kubelet_client: Pair
    apiserver_webhook_client: Pair
    sa_key: Path
    sa_pub: Path


def _layout(d: Path) -> ClusterPKI:
    p = lambda stem: Pair(d / f"{stem}.crt", d / f"{stem}.key")  # noqa: E731
    return ClusterPKI(
        dir=d,
        ca=p("ca"),
        etcd_ca=p("etcd-ca"),
        etcd_server=p("etcd-server"),
        apiserver_etcd_client=p("apiserver-etcd-client"),
        apiserver=p("apiserver"),
        admin=p("admin"),
        controller_manager=p("controller-manager"),
        controller_manager_server=p("controller-manager-server"),
        scheduler=p("scheduler"),
        node=p("node"),
        aws=p("aws"),
        authenticator=p("authenticator"),
        pod_identity_webhook=p("pod-identity-webhook"),
        kubelet_server=p("kubelet-server"),
        apiserver_kubelet_client=p("apiserver-kubelet-client"),
        apiserver_webhook_client=p("apiserver-webhook-client"),
        sa_key=d / "sa.key",
        sa_pub=d / "sa.pub",
    )


def _exists(pair: Pair) -> bool:
    return all(f.exists() and f.stat().st_size for f in (pair.cert, pair.key))


def ensure(d: Path, node_name: str) -> ClusterPKI:
    """Create what is missing; reuse the rest, so tokens and kubeconfigs stay valid across
    starts."""
    paths.private_dir(d)
    pki = _layout(d)
    if not _exists(pki.ca):
        make_ca(d, "ca", "kubernetes")
    if not _exists(pki.etcd_ca):
        make_ca(d, "etcd-ca", "etcd-ca", rsa_key=False)
    leaves = {
        "etcd-server": (
            pki.etcd_ca,
            "etcd",
            dict(server=True, client=True, dns=("localhost",), ips=("127.0.0.1",)),
        ),
        "apiserver-etcd-client": (pki.etcd_ca, "kube-apiserver-etcd-client", dict(client=True)),
        "apiserver": (
            pki.ca,
            "kube-apiserver",
            dict(server=True, dns=API_SANS_DNS, ips=("127.0.0.1", KUBERNETES_SERVICE_IP)),
        ),
        "admin": (pki.ca, "kubernetes-admin", dict(orgs=("system:masters",), client=True)),
        "controller-manager": (pki.ca, "system:kube-controller-manager", dict(client=True)),
        # Its /healthz: given a certificate, it does not make an RSA one of its own at every start.
        "controller-manager-server": (
            pki.ca,
            "kube-controller-manager",
            dict(server=True, dns=("localhost",), ips=("127.0.0.1",)),
        ),
        "scheduler": (pki.ca, "system:kube-scheduler", dict(client=True)),
        "node": (pki.ca, f"system:node:{node_name}", dict(orgs=("system:nodes",), client=True)),
        # The sandbox's AWS endpoint and the EKS token webhook, both served on loopback.
        "aws": (pki.ca, "sandbox-aws", dict(server=True, dns=("localhost",), ips=("127.0.0.1",))),
        # Serves the token webhook, and reads aws-auth as EKS's own `eks:authenticator` user.
        "authenticator": (
            pki.ca,
            "eks:authenticator",
            dict(server=True, client=True, dns=("localhost",), ips=("127.0.0.1",)),
        ),
    }
    leaves["pod-identity-webhook"] = (
        pki.ca,
        "eks:pod-identity-mutating-webhook",
        dict(client=True),
    )
    # The stand-in kubelet's API (kubectl logs goes API server -> kubelet), and the API server's
    # client certificate for it, named as kubeadm names it.
    leaves["kubelet-server"] = (
        pki.ca,
        f"system:node:{node_name}",
        dict(orgs=("system:nodes",), server=True, dns=(node_name,), ips=("127.0.0.1",)),
    )
    leaves["apiserver-kubelet-client"] = (
        pki.ca,
        "kube-apiserver-kubelet-client",
        dict(orgs=("kubeadm:cluster-admins",), client=True),
    )
    # What the API server presents to the sandbox's webhooks (token review, authorization,
    # admission): they answer no other caller.
    leaves["apiserver-webhook-client"] = (pki.ca, WEBHOOK_CLIENT, dict(client=True))
    signers = _Signers()
    for stem, (ca, cn, kw) in leaves.items():
        if not _exists(Pair(d / f"{stem}.crt", d / f"{stem}.key")):
            issue(d, stem, ca, cn, signers, **kw)
    if not (pki.sa_key.exists() and pki.sa_pub.exists()):
        sa = _key()
        paths.write_private(pki.sa_key, _pem_key(sa))
        paths.write_private(
            pki.sa_pub,
            sa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
    return pki
