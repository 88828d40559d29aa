"""The gateway's own token-signing key (RS256): ``KWG_TOKEN_SIGNING_KEY`` (a PEM file), or in development a key
made on first use under ``KWG_HOME``. Production refuses to start without one."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.settings import Environment, Settings


class SigningKeyError(Exception):
    pass


def signing_key_path(settings: Settings) -> Path:
    return settings.token_signing_key or settings.home / "token-signing-key.pem"


def load_signing_key(settings: Settings) -> rsa.RSAPrivateKey:
    path = signing_key_path(settings)
    if not path.exists():
        if settings.env is Environment.PRODUCTION or settings.token_signing_key is not None:
            raise SigningKeyError(f"KWG_TOKEN_SIGNING_KEY: {path} does not exist (production needs its own key)")
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey) or loaded.key_size < 2048:
        raise SigningKeyError(f"KWG_TOKEN_SIGNING_KEY: {path} is not an RSA private key of at least 2048 bits")
    return loaded
