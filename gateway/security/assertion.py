"""Building a client assertion (what ``kwg token`` and tests do as a client): a JWT signed with the client's key."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """The public half of an RSA key as a JWK with ``kid`` (for a client's JWKS)."""
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "RS384", "use": "sig"}


def client_assertion(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    client_id: str,
    token_url: str,
    kid: str,
    algorithm: str = "RS384",
    lifetime: int = 240,
    extra: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + lifetime, "jti": str(uuid.uuid4())}
    return jwt.encode({**claims, **(extra or {})}, key, algorithm=algorithm, headers={"kid": kid})


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the key is not an RSA private key")
    return key


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
