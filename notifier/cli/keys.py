"""``notifier keys``: create (shown once), list and revoke API keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from notifier.cli.common import get_settings

if TYPE_CHECKING:
    from notifier.runtime import Runtime


def _runtime() -> Runtime:
    from notifier.runtime import Runtime

    return Runtime.start(get_settings())


@click.group(help="API keys for editors, ops and admins.")
def keys() -> None:
    pass


@keys.command("create", help="Create a key and print it once; only its hash is stored.")
@click.option("--role", type=click.Choice(["editor", "ops", "admin"]), required=True)
@click.option("--name", default=None, help="who or what the key is for")
def create(role: str, name: str | None) -> None:
    from notifier.core.apikeys import create_key
    from notifier.core.db import transaction

    runtime = _runtime()
    with transaction(runtime.sessions) as session:
        key, row = create_key(session, role, name)
        prefix = row.prefix
    click.echo(key)
    click.echo(f"(role {role}, id {prefix}; store it now, it cannot be shown again)", err=True)


@keys.command("list", help="List keys: prefix, role, name, created, last used, revoked.")
def list_() -> None:
    from notifier.core.apikeys import list_keys

    runtime = _runtime()
    with runtime.sessions() as session:
        rows = list_keys(session)
    click.echo(f"{'PREFIX':10} {'ROLE':7} {'NAME':20} {'CREATED':20} {'LAST USED':20} REVOKED")
    for r in rows:
        fmt = "%Y-%m-%d %H:%M:%S"
        click.echo(
            f"{r.prefix:10} {r.role:7} {(r.name or '-')[:20]:20} {r.created_at.strftime(fmt):20} "
            f"{r.last_used_at.strftime(fmt) if r.last_used_at else '-':20} "
            f"{r.revoked_at.strftime(fmt) if r.revoked_at else '-'}"
        )


@keys.command("revoke", help="Revoke a key by its prefix (as shown by `keys list`).")
@click.argument("prefix")
def revoke(prefix: str) -> None:
    from notifier.core.apikeys import revoke_key
    from notifier.core.db import transaction

    runtime = _runtime()
    with transaction(runtime.sessions) as session:
        found = revoke_key(session, prefix)
    if not found:
        raise click.ClickException(f"no key with prefix {prefix}")
    click.echo(f"revoked {prefix}")
