"""Building a client assertion (what ``kwg token`` and tests do as a client): a JWT signed with the client's key."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ClientKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
#: The assertion algorithm for each EC curve (SMART asks for ES384 on P-384; ES256 on P-256 is accepted too).
EC_ALGORITHMS = {"secp384r1": "ES384", "secp256r1": "ES256"}


def algorithm_for(key: ClientKey) -> str:
    """The algorithm a client signs its assertions with: RS384 for RSA, ES384/ES256 by the EC key's curve."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS384"
    try:
        return EC_ALGORITHMS[key.curve.name]
    except KeyError:
        raise ValueError(f"EC keys must be on P-384 or P-256, not {key.curve.name}") from None


def jwk_of(public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, kid: str) -> dict[str, Any]:
    """A public key (RSA, or EC on P-384/P-256) as a JWK with ``kid`` and its assertion algorithm."""
    if isinstance(public, rsa.RSAPublicKey):
        return {**RSAAlgorithm.to_jwk(public, as_dict=True), "kid": kid, "alg": "RS384", "use": "sig"}
    alg = EC_ALGORITHMS.get(public.curve.name)
    if alg is None:
        raise ValueError(f"EC keys must be on P-384 or P-256, not {public.curve.name}")
    return {**ECAlgorithm.to_jwk(public, as_dict=True), "kid": kid, "alg": alg, "use": "sig"}


def load_client_key(pem: bytes) -> ClientKey:
    """A client's private key (RSA, or EC on P-384/P-256) from PEM."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("the key is neither an RSA nor an EC private key")
    algorithm_for(key)  # refuses curves the gateway does not accept
    return key


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
