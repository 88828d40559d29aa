"""The operator's and the client's commands against a real ``kwg serve`` with authentication on: ``kwg clients add
--generate-key`` registers a client, ``kwg token`` gets it a token that works with curl-like requests, ``kwg
clients list`` shows it and ``kwg clients disable`` stops its next token."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.security.assertion import jwk_of
from tests.processes import KWG, running_gateway

pytestmark = pytest.mark.integration


def kwg(home: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")}
    env["KWG_HOME"] = home
    return subprocess.run([KWG, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_a_registered_client_gets_a_token_and_uses_it(tmp_path: Path) -> None:
    key = tmp_path / "trust-ehr.pem"
    with running_gateway(env={"KWG_AUTH": "on"}) as gateway:
        home, base = str(gateway.log.parent), gateway.url.removesuffix("/fhir")
        added = kwg(home, "clients", "add", "trust-ehr", "--name", "Trust EHR", "--organisation", "rx4",
                    "--org-type", "nhs-provider", "--scopes", "system/Patient.rs system/Encounter.read",
                    "--generate-key", str(key))  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert key.stat().st_mode & 0o077 == 0  # the private key is the client's alone
        listed = kwg(home, "clients", "list")
        assert "trust-ehr" in listed.stdout and "RX4" in listed.stdout and "active" in listed.stdout

        got = kwg(home, "token", "--client-id", "trust-ehr", "--key", str(key), "--url", base,
                  "--scope", "system/Patient.rs")  # fmt: skip
        assert got.returncode == 0, got.stderr
        bearer = {"Authorization": f"Bearer {got.stdout.strip()}"}
        assert httpx.get(f"{gateway.url}/Patient", headers=bearer, timeout=30).status_code == 200
        assert httpx.get(f"{gateway.url}/Encounter", headers=bearer, timeout=30).status_code == 403  # not asked for
        refused = httpx.get(f"{gateway.url}/Patient", timeout=30)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        configuration = httpx.get(f"{base}/.well-known/smart-configuration", timeout=30).json()
        assert configuration["token_endpoint"] == f"{base}/oauth2/token"

        assert kwg(home, "clients", "disable", "trust-ehr").returncode == 0
        again = kwg(home, "token", "--client-id", "trust-ehr", "--key", str(key), "--url", base)
        assert again.returncode == 1 and "invalid_client" in again.stderr
        assert kwg(home, "clients", "disable", "nobody").returncode == 1


def test_a_client_registered_with_an_ec_jwks(tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    key = tmp_path / "school.pem"
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    jwks = tmp_path / "school.jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk_of(private.public_key(), "school-2025")]}))
    with running_gateway(env={"KWG_AUTH": "on"}) as gateway:
        home = str(gateway.log.parent)
        added = kwg(home, "clients", "add", "school-mis", "--name", "School MIS", "--organisation", "100001",
                    "--org-type", "school", "--scopes", "system/Encounter.rs", "--jwks", str(jwks))  # fmt: skip
        assert added.returncode == 0, added.stderr
        duplicate = kwg(home, "clients", "add", "school-mis", "--name", "Again", "--organisation", "100001",
                        "--org-type", "school", "--scopes", "system/Encounter.rs", "--jwks", str(jwks))  # fmt: skip
        assert duplicate.returncode == 2 and "already a client" in duplicate.stderr
        got = kwg(
            home, "token", "--client-id", "school-mis", "--key", str(key), "--kid", "school-2025", "--url", gateway.url
        )  # fmt: skip  (the FHIR base is accepted too)
        assert got.returncode == 0, got.stderr
        bearer = {"Authorization": f"Bearer {got.stdout.strip()}"}
        assert httpx.get(f"{gateway.url}/Encounter", headers=bearer, timeout=30).status_code == 200
        assert httpx.get(f"{gateway.url}/Patient", headers=bearer, timeout=30).status_code == 403
