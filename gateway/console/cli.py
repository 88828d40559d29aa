"""``kwg console add-operator`` and ``kwg console list-operators``: the operators who may sign in to ``/console``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from gateway.settings import load_settings

console_app = typer.Typer(help="Operators of the web console at /console.", no_args_is_help=True)


@console_app.command("add-operator")
def add_operator_command(
    name: Annotated[str, typer.Argument(help="The operator's sign-in name (lower case, e.g. jo.bloggs)")],
    organisation: Annotated[str, typer.Option(help="ODS code of the organisation the operator works for")] = "QX9",
    org_type: Annotated[
        str, typer.Option(help="icb, nhs-provider, local-authority, school, childrens-home, youth-justice")
    ] = "icb",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input (one line)")] = False,
) -> None:
    """Add an operator (or give an existing one a new password); the password is stored only as an Argon2 hash."""
    from gateway.console.operators import add_operator, operators_path
    from gateway.errors import InvalidRequest

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = load_settings()
    try:
        add_operator(operators_path(settings), name, organisation, org_type, password)
    except InvalidRequest as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"operator {name} ({organisation.upper()}, {org_type}) may sign in at /console")


@console_app.command("list-operators")
def list_operators() -> None:
    """The operators, with their organisations (never their password hashes)."""
    from gateway.console.operators import load, operators_path

    for operator in load(operators_path(load_settings())).values():
        typer.echo(f"{operator.name}\t{operator.organisation}\t{operator.organisation_type}")
