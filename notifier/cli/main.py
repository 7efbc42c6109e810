"""The ``notifier`` command: serve, work, migrate, import, and run everything locally.

Each subcommand reads the same validated settings; a configuration error prints the variable's
name and exits 2 instead of a traceback.
"""

from __future__ import annotations

import click

from notifier.cli.common import get_settings
from notifier.cli.devices import devices
from notifier.cli.events import send_test_event
from notifier.cli.keys import keys
from notifier.cli.status import status
from notifier.pipeline.routing import WORKER_QUEUES


@click.group(help="Breaking-news push notifications over Firebase Cloud Messaging.")
def main() -> None:
    pass


@main.command(help="Serve the HTTP API under gunicorn on NOTIFIER_PORT.")
@click.option("--workers", "-w", type=click.IntRange(1, 64), default=None, help="processes")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True)
def api(workers: int | None, threads: int) -> None:
    from notifier.http.server import serve_api

    serve_api(get_settings(), workers=workers, threads=threads)


@main.command(help="Run a Celery worker (breaking sends first).")
@click.option("--queues", "-Q", default=WORKER_QUEUES, show_default=True)
@click.option("--concurrency", "-c", type=click.IntRange(1, 512), default=None)
@click.option("--pool", type=click.Choice(["prefork", "threads", "solo"]), default="prefork")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--hostname", "-n", default=None, help="node name, e.g. worker1@%h")
def worker(
    queues: str, concurrency: int | None, pool: str, loglevel: str, hostname: str | None
) -> None:
    settings = get_settings()
    from workers.celery_app import app as celery

    if settings.fcm_credentials is None:
        # No real credentials: the sender signs in to the FCM emulator with an account the
        # emulator's module writes. Handed over here, so the workers never import the emulator.
        from notifier.emulator.service_account import ensure_service_account
        from workers.tasks import use_emulator_account

        use_emulator_account(ensure_service_account)

    # No -E: task events are off (workers/celery_app.py says why and how to turn them on).
    argv = ["worker", "-Q", queues, "--pool", pool, "--loglevel", loglevel]
    if hostname:
        argv += ["--hostname", hostname]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    celery.worker_main(argv)


@main.command(help="Run the periodic sweeper (Celery beat).")
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    settings = get_settings()
    from workers.celery_app import app as celery

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = settings.data_dir.resolve() / "celerybeat-schedule"
    celery.start(["beat", "--loglevel", loglevel, "--schedule", str(schedule)])


@main.command("fcm-emulator", help="Run the FCM emulator (firebase-admin talks to it).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="default 9099")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--quota-per-minute",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Answer 429 QUOTA_EXCEEDED over N sends per project in any 60 s, as FCM does "
    "(0: no quota).",
)
def fcm_emulator(port: int | None, host: str, quota_per_minute: int) -> None:
    settings = get_settings()
    from notifier.emulator.server import run_emulator
    from notifier.http.widget import stand_in_origins

    run_emulator(
        host=host,
        port=port or settings.emulator_port,
        project_id=settings.fcm_project_id,
        # The widget's web push stand-in may be used from this API's pages (and CORS sites').
        allowed_origins=stand_in_origins(settings),
        quota_per_minute=quota_per_minute,
    )


@main.group(help="Database schema migrations.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply migrations up to REVISION (default: the latest).")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    from notifier.core import migrate
    from notifier.core.db import make_engine

    engine = make_engine(get_settings().effective_database_url)
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    click.echo(f"database at {migrate.current_revision(engine)} (was {before or 'empty'})")
    engine.dispose()


@db.command("downgrade", help="Revert migrations down to REVISION ('base' removes everything).")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    from notifier.core import migrate
    from notifier.core.db import make_engine

    engine = make_engine(get_settings().effective_database_url)
    migrate.downgrade(engine, revision)
    click.echo(f"database at {migrate.current_revision(engine) or 'base'}")
    engine.dispose()


@db.command("current", help="Print the schema revision the database is at.")
def db_current() -> None:
    from notifier.core import migrate
    from notifier.core.db import make_engine

    engine = make_engine(get_settings().effective_database_url)
    current, head = migrate.current_revision(engine), migrate.head_revision(engine)
    click.echo(f"{current or 'empty'} (latest {head})")
    engine.dispose()


@main.command(help="Run everything locally on embedded defaults (what `make run` starts).")
def dev() -> None:
    from notifier.cli.dev import run_dev

    run_dev(get_settings())


# Command groups that live in their own modules, to keep this one readable.
main.add_command(devices)
main.add_command(keys)
main.add_command(status)
main.add_command(send_test_event)

if __name__ == "__main__":
    main()
