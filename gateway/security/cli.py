"""``kwg clients add|list|disable`` and ``kwg token``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import httpx
import typer

from gateway.settings import load_settings

clients_app = typer.Typer(help="API clients that may get access tokens.", no_args_is_help=True)


@clients_app.command("add")
def add(
    client_id: Annotated[str, typer.Argument(help="The client's id (e.g. trust-ehr)")],
    name: Annotated[str, typer.Option(help="What the client is")],
    organisation: Annotated[str, typer.Option(help="ODS code, LA code or school URN it acts for")],
    org_type: Annotated[
        str, typer.Option(help="nhs-provider, local-authority, school, childrens-home, youth-justice, icb")
    ],
    scopes: Annotated[str, typer.Option(help='Scopes it may be granted, e.g. "system/*.rs system/Encounter.cruds"')],
    generate_key: Annotated[
        Path | None, typer.Option(help="Make an RSA key pair; write the private key (PEM) here for the client")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="The client's public key (PEM: RSA, or EC on P-384/P-256)", exists=True)
    ] = None,
    jwks: Annotated[
        Path | None, typer.Option(help="The client's JSON Web Key Set (public keys only, each with a kid)", exists=True)
    ] = None,
) -> None:
    """Register a client with its public key (given as PEM or a JWKS, or made now with --generate-key)."""
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from gateway.security.assertion import jwk_of, new_private_key, private_pem
    from gateway.security.clients import ApiClient, ClientError, add_client
    from gateway.store.db import create_engine

    if sum(given is not None for given in (generate_key, public_key, jwks)) != 1:
        raise typer.BadParameter("give exactly one of --generate-key, --public-key and --jwks")
    kid = f"{client_id}-1"
    if jwks is not None:
        try:
            key_set = json.loads(jwks.read_text())
        except ValueError:
            raise typer.BadParameter("the file is not JSON", param_hint="--jwks") from None
    elif generate_key is not None:
        key = new_private_key()
        fd = os.open(generate_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(private_pem(key))
        key_set = {"keys": [jwk_of(key.public_key(), kid)]}
    else:
        assert public_key is not None
        loaded = serialization.load_pem_public_key(public_key.read_bytes())
        if not isinstance(loaded, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise typer.BadParameter("the public key is neither RSA nor EC", param_hint="--public-key")
        try:
            key_set = {"keys": [jwk_of(loaded, kid)]}
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--public-key") from None
    client = ApiClient(client_id, name, organisation.upper(), org_type, scopes, key_set, False)
    settings = load_settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await add_client(engine, client)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except ClientError as exc:
        if generate_key is not None:
            generate_key.unlink(missing_ok=True)  # a key for no client would only mislead
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    kids = ", ".join(str(k.get("kid")) for k in key_set["keys"])
    typer.echo(f"client {client_id} registered (key id {kids})")
    typer.echo(f"get a token with: kwg token --client-id {client_id} --key <private key PEM>")


@clients_app.command("list")
def list_clients() -> None:
    from gateway.security.clients import list_clients as listed
    from gateway.store.db import create_engine

    settings = load_settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            for c in await listed(engine):
                state = "disabled" if c.disabled else "active"
                typer.echo(f"{c.client_id:24} {c.organisation:10} {c.organisation_type:16} {state:8} {c.scopes}")
        finally:
            await engine.dispose()

    asyncio.run(run())


@clients_app.command("disable")
def disable(client_id: Annotated[str, typer.Argument()]) -> None:
    from gateway.security.clients import disable_client
    from gateway.store.db import create_engine

    settings = load_settings()

    async def run() -> bool:
        engine = create_engine(settings)
        try:
            return await disable_client(engine, client_id)
        finally:
            await engine.dispose()

    if not asyncio.run(run()):
        typer.echo(f"there is no client {client_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"client {client_id} disabled: it gets no new tokens")


def token(
    client_id: Annotated[str, typer.Option(help="The client's id")],
    key: Annotated[Path, typer.Option(help="The client's private key (PEM)", exists=True)],
    url: Annotated[str, typer.Option(envvar="KWG_URL", help="The gateway")] = "http://127.0.0.1:8080",
    scope: Annotated[str, typer.Option(help="Scopes to ask for (default: all the client may have)")] = "",
    purpose: Annotated[str, typer.Option(help="Purpose of use")] = "DIRECT_CARE",
    kid: Annotated[str | None, typer.Option(help="The key id in the client's JWKS (default: <client-id>-1)")] = None,
) -> None:
    """Get an access token as a client (prints it: use it as ``Authorization: Bearer <token>``)."""
    from gateway.security.assertion import algorithm_for, client_assertion, load_client_key

    token_url = url.rstrip("/").removesuffix("/fhir") + "/oauth2/token"
    try:
        signing = load_client_key(key.read_bytes())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--key") from None
    assertion = client_assertion(
        signing,
        client_id=client_id,
        token_url=token_url,
        kid=kid or f"{client_id}-1",
        algorithm=algorithm_for(signing),
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "purpose_of_use": purpose,
    }
    if scope:
        form["scope"] = scope
    try:
        response = httpx.post(token_url, data=form, timeout=30)
    except httpx.HTTPError as exc:
        typer.echo(f"could not reach {token_url}: {exc}", err=True)
        raise typer.Exit(1) from None
    if response.status_code != 200:
        typer.echo(f"refused ({response.status_code}): {response.text}", err=True)
        raise typer.Exit(1)
    typer.echo(response.json()["access_token"])
