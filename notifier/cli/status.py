"""``notifier status``: queues, workers and alerts in flight at a glance, in the terminal."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from notifier.cli.common import get_settings


def _bar(fraction: float, width: int = 24) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "·" * (width - filled)


def format_status(snap: dict[str, Any]) -> str:
    """The snapshot of ``GET /v1/ops/queues`` as a few aligned blocks of text."""
    lines = [f"notifier status at {snap['generated_at']}", ""]
    broker = snap["broker"]
    error = f"  (unreachable: {broker['error']})" if broker.get("error") else ""
    lines.append(f"QUEUES ({broker['transport']}){error}")
    for q in snap["queues"]:
        depth = "?" if q["depth"] is None else q["depth"]
        # A broker that cannot tell a head message's age (RabbitMQ without its management
        # plugin) says so, rather than showing a dash that reads as "nothing waiting".
        age = "unknown" if q["oldest_age_seconds"] is None else f"{q['oldest_age_seconds']:.1f}s"
        lines.append(f"  {q['name']:10} depth {depth!s:>7}   oldest {age:>8}")
    if broker.get("unacked") is not None:
        lines.append(f"  in flight (unacked) {broker['unacked']}")
    lines.append("")
    lines.append(f"WORKERS ({len(snap['workers'])})")
    for worker in snap["workers"]:
        running = ", ".join(f"{t['task']}{t['args']}" for t in worker["active"]) or "idle"
        lines.append(f"  {worker['name']:32} {running}")
    if not snap["workers"]:
        lines.append("  none answered (or the embedded broker, which cannot be asked)")
    lines.append("")
    lines.append(f"ALERTS IN FLIGHT ({len(snap['alerts_in_flight'])})")
    for a in snap["alerts_in_flight"]:
        lines.append(
            f"  {a['id'][:8]} {_bar(a['progress'])} {a['progress'] * 100:5.1f}%  "
            f"{a['sent']}/{a['audience']} sent, {a['failed']} failed, {a['pruned']} pruned, "
            f"{a['rate_per_second']}/s  {a['headline'][:40]}"
        )
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(snap["alerts_by_status"].items()))
    lines.append(f"  all alerts: {by_status or 'none yet'}")
    lines.append("")
    sweeper = snap["sweeper"]
    last = "never" if sweeper["age_seconds"] is None else f"{sweeper['age_seconds']}s ago"
    lines.append(
        f"SWEEPER last run {last}; oldest pending work {snap['oldest_pending_age_seconds']}s"
    )
    return "\n".join(lines)


@click.command(help="Queues, workers and alerts in flight, at a glance.")
@click.option("--watch", "-w", is_flag=True, help="refresh every 2 seconds until Ctrl-C")
@click.option("--json", "as_json", is_flag=True, help="print the raw snapshot as JSON")
def status(watch: bool, as_json: bool) -> None:
    from notifier.observability import ops_view as ops
    from notifier.runtime import Runtime
    from workers.celery_app import make_celery
    from workers.inspect import workers_seen

    runtime = Runtime.start(get_settings(), prepare_database=False)
    celery = None if runtime.settings.embedded_broker else make_celery(runtime.settings)

    def workers() -> list[dict[str, Any]]:
        return workers_seen(celery) if celery is not None else []

    while True:
        with runtime.sessions() as session:
            snap = ops.snapshot(session, runtime.settings, workers)
        if as_json:
            click.echo(json.dumps(snap, indent=2))
        else:
            if watch:
                click.clear()
            click.echo(format_status(snap))
        if not watch:
            return
        try:
            time.sleep(2)
        except KeyboardInterrupt:
            return
