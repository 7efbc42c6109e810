"""Benchmark `notifier devices import` on PostgreSQL against a naive one-device-at-a-time baseline.

Generates N realistic lines (FCM-shaped tokens, 1-4 topics, some locales and time zones, one
line in a thousand with an unknown topic), imports them into a fresh schema of its own in
NOTIFIER_TEST_DATABASE_URL (dropped afterwards), imports them again (the idempotent re-run, every
device known), and times the baseline: a sample replayed through the subscribe service, one
transaction per device, as a script calling the API's code path would do, extrapolated to N.

    .venv/bin/python bench/import_devices.py                # 1,000,000 lines
    .venv/bin/python bench/import_devices.py -n 100000 --batch-size 10000
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import resource
import tempfile
import time
from pathlib import Path

from _common import private_schema

from notifier.core.settings import load_settings
from notifier.runtime import Runtime
from notifier.subscriptions.bulk_import import DEFAULT_BATCH_SIZE, ImportReport, import_devices
from notifier.subscriptions.requests import SubscribeRequest
from notifier.subscriptions.service import subscribe

PLATFORMS = ["android"] * 6 + ["ios"] * 3 + ["web"]
LOCALES = [None, None, "he-IL", "en-GB", "en-US", "ar", "fr-FR"]
ZONES = [None, None, "Asia/Jerusalem", "Europe/London", "America/New_York"]


def generate(path: Path, lines: int, topics: list[str], *, seed: int, prefix: str) -> None:
    """Write ``lines`` JSON lines shaped like a push provider's export."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for n in range(lines):
            # Real FCM tokens: 22 characters, ":APA91b", then ~134 URL-safe base64 characters.
            body = base64.urlsafe_b64encode(rng.randbytes(100)).decode().rstrip("=")
            line: dict[str, object] = {
                "token": f"{prefix}{n:012d}:APA91b{body}",
                "platform": rng.choice(PLATFORMS),
                "topics": rng.sample(topics, rng.randint(1, 4)),
            }
            if n % 1000 == 999:
                line["topics"] = ["no-such-topic"]
            if locale := rng.choice(LOCALES):
                line["locale"] = locale
            if zone := rng.choice(ZONES):
                line["timezone"] = zone
            out.write(json.dumps(line) + "\n")


def naive_baseline(runtime: Runtime, path: Path) -> float:
    """Seconds to replay ``path`` through ``subscribe``, one transaction per device."""
    started = time.perf_counter()
    with path.open("rb") as lines:
        for raw in lines:
            request = SubscribeRequest.model_validate_json(raw)
            if "no-such-topic" in request.topics:
                continue
            with runtime.sessions.begin() as session:
                subscribe(
                    session,
                    token=request.token,
                    platform=request.platform,
                    topics=request.topics,
                    locale=request.locale,
                    timezone=request.timezone,
                )
    return time.perf_counter() - started


def timed_import(runtime: Runtime, path: Path, batch_size: int) -> tuple[ImportReport, float]:
    started = time.perf_counter()
    with path.open("rb") as lines:
        report = import_devices(runtime.engine, lines, batch_size=batch_size)
    return report, time.perf_counter() - started


def describe(label: str, report: ImportReport, seconds: float) -> None:
    print(
        f"{label}: {report.lines:,} lines in {seconds:.1f} s = {report.lines / seconds:,.0f} "
        f"lines/s (imported {report.imported:,}, updated {report.updated:,}, "
        f"subscriptions added {report.subscriptions_added:,}, rejected {report.rejected:,})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--lines", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--sample", type=int, default=5000, help="lines for the naive baseline")
    parser.add_argument("--no-rerun", action="store_true", help="skip the idempotent re-run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, private_schema(prefix="notifier_bench") as url:
        settings = load_settings({"NOTIFIER_DATABASE_URL": url, "NOTIFIER_DATA_DIR": tmp})
        runtime = Runtime.start(settings)
        topics = [t.slug for t in runtime.catalogue]
        data, sample = Path(tmp) / "devices.jsonl", Path(tmp) / "sample.jsonl"

        started = time.perf_counter()
        generate(data, args.lines, topics, seed=1, prefix="bench")
        generate(sample, args.sample, topics, seed=2, prefix="naive")
        size = data.stat().st_size / 2**20
        print(
            f"generated {args.lines:,} lines ({size:,.0f} MiB) in "
            f"{time.perf_counter() - started:.1f} s; PostgreSQL, batch size {args.batch_size:,}"
        )

        naive = naive_baseline(runtime, sample)
        rate = args.sample / naive
        print(
            f"baseline (subscribe() per line, one transaction each): {args.sample:,} lines in "
            f"{naive:.1f} s = {rate:,.0f} lines/s -> {args.lines:,} lines would take "
            f"{args.lines / rate / 60:,.1f} min"
        )

        report, seconds = timed_import(runtime, data, args.batch_size)
        describe("devices import (new devices)", report, seconds)
        if not args.no_rerun:
            report, rerun = timed_import(runtime, data, args.batch_size)
            describe("devices import again (all known)", report, rerun)
        print(f"speed-up over the baseline: {args.lines / seconds / rate:,.0f}x")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(f"peak memory of this process: {peak:,.0f} MiB")
        runtime.close()


if __name__ == "__main__":
    main()
