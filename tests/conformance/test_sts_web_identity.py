"""STS AssumeRoleWithWebIdentity: the errors the sandbox answers (issue #13).

Spec: the STS API model (the `errors` of AssumeRoleWithWebIdentity with their codes and HTTP
statuses, and the input members' constraints), as botocore ships it — the same model AWS
publishes in the API reference ("Errors", "Request Parameters"). Each refusal the sandbox makes
must use a code that operation can answer, with that code's status; AccessDenied (403) and
ValidationError (400) are STS's common errors. The message texts are those AWS returns for
EKS's IRSA tokens (InvalidIdentityToken's "Incorrect token audience", ExpiredTokenException's
"Token expired: … date/time<exp>" without a space, as AWS writes it).
"""
from __future__ import annotations

import datetime as dt
import time

import pytest
from botocore.loaders import create_loader
from cryptography.hazmat.primitives.asymmetric import rsa

from helpers.sandbox.aws import webidentity
from tests import eks_tokens

ROLE = "arn:aws:iam::123456789012:role/eks-my-sa"
PROVIDER = webidentity.Provider(arn="arn:aws:iam::123456789012:oidc-provider/idp.example/id/X",
                                url="idp.example/id/X", client_ids=["sts.amazonaws.com"])
TRUST = {"Statement": [{"Effect": "Allow", "Principal": {"Federated": PROVIDER.arn},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {"StringEquals": {"idp.example/id/X:sub": "system:serviceaccount:default:my-sa",
                                                       "idp.example/id/X:aud": "sts.amazonaws.com"}}}]}
COMMON = {"AccessDenied": 403, "ValidationError": 400}


def _model_errors() -> dict[str, int]:
    model = create_loader().load_service_model("sts", "service-2")
    op = model["operations"]["AssumeRoleWithWebIdentity"]
    return {model["shapes"][e["shape"]]["error"]["code"]: model["shapes"][e["shape"]]["error"]["httpStatusCode"]
            for e in op["errors"]}


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks(key):
    return eks_tokens.jwks_of(key)




def _refusal(token, keys, trust=TRUST, providers=(PROVIDER,)) -> webidentity.STSFault:
    with pytest.raises(webidentity.STSFault) as e:
        webidentity.validate(token, ROLE, list(providers), lambda arn: trust, lambda iss: keys,
                             dt.datetime.now(dt.timezone.utc))
    return e.value


def test_the_model_lists_the_operation_errors():
    assert _model_errors() == {
        "MalformedPolicyDocument": 400, "PackedPolicyTooLarge": 400, "IDPRejectedClaim": 403,
        "IDPCommunicationError": 400, "InvalidIdentityToken": 400, "ExpiredTokenException": 400,
        "RegionDisabledException": 403}


CASES = {
    # name: (token claims / kid override, expected code, expected message (regex))
    "not a JWT": (None, "InvalidIdentityToken", "Couldn't parse the token"),
    "unknown issuer": ({"iss": "https://x"}, "InvalidIdentityToken",
                       "No OpenIDConnect provider found in your account for https://x"),
    "unknown key": ({"_kid": "nope"}, "InvalidIdentityToken",
                    "Couldn't retrieve verification key from your identity provider, please reference "
                    "AssumeRoleWithWebIdentity documentation for requirements"),
    "wrong audience": ({"aud": ["vault"]}, "InvalidIdentityToken", "Incorrect token audience"),
    "expired": ({"exp": int(time.time()) - 5}, "ExpiredTokenException",
                r"Token expired: current date/time \d+ must be before the expiration date/time\d+"),
    # a day ahead: the table is made when the module is imported, which may be long before the test
    "not yet valid": ({"nbf": int(time.time()) + 86400}, "InvalidIdentityToken", "Token is not yet valid"),
    "another subject": ({"sub": "system:serviceaccount:default:default"}, "AccessDenied",
                        "Not authorized to perform sts:AssumeRoleWithWebIdentity"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_refusal_is_an_error_the_operation_answers(name, key, jwks):
    keys, kid = jwks
    claims, code, message = CASES[name]
    if claims is None:
        token = "not-a-jwt"
    else:
        claims = dict(claims)
        token = eks_tokens.web_identity_token(key, claims.pop("_kid", kid), **claims)
    fault = _refusal(token, keys)
    assert fault.code == code and fault.status == {**_model_errors(), **COMMON}[code]
    import re
    assert re.fullmatch(message, fault.message), fault.message


def test_a_signature_by_another_key_is_refused(jwks):
    keys, kid = jwks
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fault = _refusal(eks_tokens.web_identity_token(other, kid), keys)
    assert (fault.code, fault.status) == ("InvalidIdentityToken", 400)
    assert fault.message.startswith("The web identity token that was passed could not be validated by AWS.")


def test_no_such_role_is_access_denied(key, jwks):
    keys, kid = jwks
    fault = _refusal(eks_tokens.web_identity_token(key, kid), keys, trust=None)
    assert (fault.code, fault.status) == ("AccessDenied", 403)


# --- input validation, from the model's constraints ---------------------------------------------
GOOD = {"RoleArn": ROLE, "RoleSessionName": "botocore-session-1", "WebIdentityToken": "x" * 900}


@pytest.mark.parametrize("change, message", [
    ({"RoleSessionName": None},
     "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: "
     "Member must not be null"),
    ({"RoleSessionName": "a"},
     "1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: "
     "Member must have length greater than or equal to 2"),
    ({"RoleSessionName": "a b"},
     "1 validation error detected: Value 'a b' at 'roleSessionName' failed to satisfy constraint: "
     "Member must satisfy regular expression pattern: [\\w+=,.@-]*"),
    ({"RoleSessionName": "s" * 65},
     f"1 validation error detected: Value '{'s' * 65}' at 'roleSessionName' failed to satisfy constraint: "
     "Member must have length less than or equal to 64"),
    ({"DurationSeconds": "899"},
     "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: "
     "Member must have value greater than or equal to 900"),
    ({"DurationSeconds": "43201"},
     "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy constraint: "
     "Member must have value less than or equal to 43200"),
    ({"WebIdentityToken": "abc"},   # the token is sensitive: its value is not repeated
     "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: "
     "Member must have length greater than or equal to 4"),
    ({"RoleArn": "arn:short", "RoleSessionName": None},
     "2 validation errors detected: Value 'arn:short' at 'roleArn' failed to satisfy constraint: "
     "Member must have length greater than or equal to 20; Value null at 'roleSessionName' failed to "
     "satisfy constraint: Member must not be null"),
])
def test_parameters_are_validated_as_the_model_says(change, message):
    params = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(webidentity.STSFault) as e:
        webidentity.check_parameters(params)
    assert (e.value.code, e.value.status, e.value.message) == ("ValidationError", 400, message)


def test_good_parameters_pass_and_duration_is_held_to_the_role():
    webidentity.check_parameters({**GOOD, "DurationSeconds": "3600"})
    webidentity.check_duration(3600, 3600)
    with pytest.raises(webidentity.STSFault, match="The requested DurationSeconds exceeds the MaxSessionDuration "
                                                   "set for this role."):
        webidentity.check_duration(7200, 3600)
