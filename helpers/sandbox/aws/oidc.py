"""The cluster's OIDC issuer, as EKS publishes it: a discovery document and the JWKS that verifies
the cluster's ServiceAccount tokens, at https://127.0.0.1:<port>/id/<ID> (on EKS,
https://oidc.eks.<region>.amazonaws.com/id/<ID>). STS fetches them to check web-identity tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def key_id(pub_pem: bytes) -> str:
    """The kid kube-apiserver puts in its tokens: SHA-256 of the DER public key, base64url."""
    key = serialization.load_pem_public_key(pub_pem)
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _b64(hashlib.sha256(der).digest())


def jwks(pub_pem: bytes) -> dict:
    key = serialization.load_pem_public_key(pub_pem)
    numbers = key.public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return {
        "keys": [
            {
                "use": "sig",
                "kty": "RSA",
                "kid": key_id(pub_pem),
                "alg": "RS256",
                "n": _b64(n),
                "e": _b64(e),
            }
        ]
    }


def discovery(issuer: str) -> dict:
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/keys",
        "authorization_endpoint": "urn:kubernetes:programmatic_authorization",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "claims_supported": ["sub", "iss"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


def documents(issuer: str, sa_pub: Path) -> dict[str, bytes]:
    """Path (under the issuer's host) → JSON body."""
    path = "/" + issuer.split("://", 1)[1].split("/", 1)[1]
    return {
        f"{path}/.well-known/openid-configuration": json.dumps(discovery(issuer)).encode(),
        f"{path}/keys": json.dumps(jwks(sa_pub.read_bytes())).encode(),
    }


def app(docs: dict[str, bytes]):
    """A WSGI app serving DOCS (path → JSON body), 404 elsewhere, as the issuer's host does."""

    def app(environ, start_response):
        body = docs.get(environ.get("PATH_INFO", ""))
        if body is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app
