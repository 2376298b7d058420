"""Signing keys and JSON Web Tokens for the JWT and CDS Hooks specifications.

Key generation is the slow part (an RSA key takes tens of milliseconds), so each key below is
made once per test run and shared by every module that signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_384_KEY = ec.generate_private_key(ec.SECP384R1())
OTHER_EC_384_KEY = ec.generate_private_key(ec.SECP384R1())
STRANGER_EC_384_KEY = ec.generate_private_key(ec.SECP384R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def public_jwk(key: SigningKey, kid: str | None, **extra: Any) -> dict[str, Any]:
    """The public half of ``key`` as a JWK, with ``kid`` (unless None) and ``extra`` members."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    if kid is not None:
        jwk["kid"] = kid
    return {**jwk, **extra}


def sign(
    payload: dict[str, Any], key: SigningKey, alg: str, headers: dict[str, Any] | None = None
) -> str:
    """A compact JWS of ``payload`` signed with ``key``."""
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    """Base64url without padding, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


def compact(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand (any header, any signature): what a forger sends."""
    return f"{b64json(header)}.{b64json(payload)}.{b64(signature)}"


def hs256_with_public_key(key: SigningKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """The classic algorithm-confusion attack: HMAC-SHA256 keyed with the PEM of ``key``'s
    public half, which a verifier that trusts the token's ``alg`` would accept."""
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64json({'alg': 'HS256', **header})}.{b64json(payload)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"
