"""``notifier devices ...``: operator commands over the device registry (bulk import).

The work is done by :mod:`notifier.subscriptions.bulk_import`; this module only opens files,
draws the progress bar and prints the summary.
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from typing import IO, TextIO

import click
from tqdm import tqdm

from notifier.cli.common import fail, get_settings
from notifier.subscriptions.bulk_import import (
    DEFAULT_BATCH_SIZE,
    ImportReport,
    Rejection,
    import_devices,
)

SHOWN_REJECTIONS = 10


@click.group(help="Manage the device registry.")
def devices() -> None:
    pass


@devices.command(
    "import",
    help=(
        "Bulk-import devices and their topics from FILE, JSON lines ('-' reads stdin), e.g. "
        '{"token": "...", "platform": "android", "topics": ["israel"], "locale": "he-IL", '
        '"timezone": "Asia/Jerusalem"}. Safe to re-run: known tokens are updated and gain the '
        "topics, never duplicated. For a compressed export: zcat FILE.gz | notifier devices "
        "import -. Exit status: 0 when every line was imported, 1 when some lines were rejected "
        "(the rest is imported), 2 on a usage or configuration error."
    ),
)
@click.argument("file", type=click.File("rb"))
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="devices written per transaction",
)
@click.option(
    "--rejects",
    type=click.File("w", encoding="utf-8", lazy=False),
    default=None,
    help='write every rejected line as {"line", "reason"} JSON lines to this file',
)
def import_command(file: IO[bytes], batch_size: int, rejects: TextIO | None) -> None:
    from notifier.core.settings import SettingsError
    from notifier.runtime import Runtime
    from notifier.subscriptions.topics import CatalogueError

    try:
        runtime = Runtime.start(get_settings())
    except (SettingsError, CatalogueError) as exc:
        fail(str(exc))

    def record(rejection: Rejection) -> None:
        if rejects is not None:
            rejects.write(json.dumps(rejection.as_json()) + "\n")

    # disable=None: tqdm draws only on a terminal, so logs and pipes get just the summary.
    with tqdm(
        total=_size_of(file),
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="importing",
        file=sys.stderr,
        disable=None,
    ) as bar:
        try:
            report = import_devices(
                runtime.engine,
                file,
                batch_size=batch_size,
                on_progress=bar.update,
                on_reject=record,
                apps=runtime.settings.apps.ids,
                default_app=runtime.settings.apps.default.id,
            )
        finally:
            runtime.close()
            if rejects is not None:
                rejects.close()
    _print_summary(report)
    sys.exit(0 if report.complete else 1)


def _size_of(file: IO[bytes]) -> int | None:
    """The file's length for the progress bar, or None for a pipe (the bar then counts up)."""
    try:
        info = os.fstat(file.fileno())
    except (OSError, io.UnsupportedOperation, AttributeError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _print_summary(report: ImportReport) -> None:
    click.echo(
        f"lines: {report.lines} (blank: {report.blank})\n"
        f"imported (new devices): {report.imported}\n"
        f"updated (known devices): {report.updated}\n"
        f"left dead (pruned by FCM, not revived): {report.left_dead}\n"
        f"subscriptions added: {report.subscriptions_added}\n"
        f"rejected lines: {report.rejected}"
    )
    for rejection in report.rejections[:SHOWN_REJECTIONS]:
        click.echo(f"  line {rejection.line}: {rejection.reason}")
    if report.rejected > SHOWN_REJECTIONS:
        click.echo(
            f"  ... and {report.rejected - SHOWN_REJECTIONS} more (--rejects PATH lists all)"
        )
