"""Administrative commands on the Flask CLI:

    flask --app shopstack_users.main:create_app create-admin --email admin@example.com
    shopstack-users create-admin --email admin@example.com        (the same command)

``create-admin`` makes the first admin; ``create-client``, ``list-clients`` and
``delete-client`` manage the service clients of the client_credentials grant.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from shopstack_common.problems import ProblemError
from shopstack_users.accounts import service as accounts
from shopstack_users.audit.service import Actor
from shopstack_users.passwords import policy_violation
from shopstack_users.resources import resources
from shopstack_users.tokens import service as tokens


@click.command("create-admin")
@click.option("--email", required=True, help="The admin's email (an existing user is promoted).")
@click.option(
    "--password",
    envvar="SHOPSTACK_ADMIN_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for when not given (or taken from SHOPSTACK_ADMIN_PASSWORD).",
)
@click.option("--full-name", default="Administrator", show_default=True)
@with_appcontext
def create_admin(email: str, password: str, full_name: str) -> None:
    """Create an admin, or give an existing user the admin role (idempotent)."""
    problem = policy_violation(password, email=email)
    if problem:
        raise click.BadParameter(f"password {problem}", param_hint="--password")
    found = resources()
    user, created = accounts.ensure_admin(
        sessions=found.sessions,
        passwords=found.passwords,
        email=email,
        password=password,
        full_name=full_name,
    )
    accounts.invalidate(redis_cache=found.redis, user_id=user.id)
    what = "created admin" if created else "admin role ensured for existing user"
    click.echo(f"{what} {user.email} ({user.id})")


@click.command("create-client")
@click.option("--client-id", required=True, help="Lower-case letters, digits, '.', '_', '-'.")
@click.option("--scope", "scopes", multiple=True, help="An allowed scope (repeat for more).")
@click.option("--description", default="")
@with_appcontext
def create_client(client_id: str, scopes: tuple[str, ...], description: str) -> None:
    """Register a service client for the client_credentials grant; prints its secret once."""
    found = resources()
    try:
        client, secret = tokens.create_client(
            sessions=found.sessions,
            passwords=found.passwords,
            actor=Actor.command_line(),
            client_id=client_id,
            scopes=scopes,
            description=description,
        )
    except ProblemError as error:
        raise click.ClickException(_reason(error)) from None
    click.echo(f"client_id:     {client.client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo(f"scopes:        {' '.join(client.scopes) or '(none)'}")
    click.echo("The secret is stored hashed and cannot be shown again.")


@click.command("list-clients")
@with_appcontext
def list_clients() -> None:
    """List the service clients and their allowed scopes."""
    for client in tokens.list_clients(sessions=resources().sessions):
        scopes = " ".join(client.scopes) or "-"
        click.echo(f"{client.client_id}\t{scopes}\t{client.description}")


@click.command("delete-client")
@click.option("--client-id", required=True)
@with_appcontext
def delete_client(client_id: str) -> None:
    """Delete a service client; tokens it already holds expire by themselves."""
    try:
        tokens.delete_client(
            sessions=resources().sessions, actor=Actor.command_line(), client_id=client_id
        )
    except ProblemError as error:
        raise click.ClickException(_reason(error)) from None
    click.echo(f"deleted client {client_id}")


def _reason(error: ProblemError) -> str:
    reasons = [f"{e.get('field')}: {e.get('message')}" for e in error.errors or ()]
    return "; ".join(reasons) or str(error)


COMMANDS = (create_admin, create_client, list_clients, delete_client)


def register(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
