"""Sender throughput against the emulator: notifier's FcmSender vs firebase-admin's stock path.

Starts the emulator in a child process, then sends the same alert to N devices three ways, each
in the same run and against the same emulator:

1. stock firebase-admin ``messaging.send_each_for_multicast`` (500 tokens per call, its thread
   pool, a connection pool mounted for the emulator's base URL);
2. notifier's ``FcmSender.send_batch`` (500 targets per call), alternating with 1 for
   ``--rounds`` rounds (the best round of each counts);
3. a bare aiohttp client posting prebuilt bodies, 100 at a time (the ceiling for any Python
   client here).

Usage: ``.venv/bin/python bench/sender.py [--messages 5000] [--batch 500]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import aiohttp

from notifier.emulator import start_emulator_process, stop_emulator_process, write_service_account
from notifier.fcm.sdk import encode_message, messaging
from notifier.fcm.sender import FcmSender, build_message, initialize_stock_app
from notifier.fcm.types import PLATFORMS, PushAlert, Target

PROJECT = "bench-project"


def _alert() -> PushAlert:
    return PushAlert(
        alert_id="bench-alert-1",
        headline="Parliament passes the budget after an all-night session",
        body="The vote ended a week of talks; what changes for households, in five points.",
        url="https://news.example/politics/budget-passed",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        ttl_seconds=3600,
        image_url="https://news.example/img/budget.jpg",
        topics=("politics",),
    )


def _progress(label: str, done: int, total: int, started: float) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    print(f"\r  {label}: {done:>7}/{total} sent, {rate:8.0f}/s", end="", flush=True)


class Rate(NamedTuple):
    """Messages per wall-clock second, and this process's CPU (all threads) per message."""

    per_second: float
    cpu_us_per_message: float


def _timed(label: str, total: int, batch: int, send: Callable[[int, int], int]) -> Rate:
    """Run ``send(offset, count)`` over ``total`` messages in batches; return the rate."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    done = accepted = 0
    while done < total:
        count = min(batch, total - done)
        accepted += send(done, count)
        done += count
        _progress(label, done, total, started)
    elapsed = time.perf_counter() - started
    cpu = (time.process_time() - cpu_started) / total * 1e6
    print(f"\r  {label}: {total} in {elapsed:.2f}s = {total / elapsed:,.0f}/s, "
          f"{cpu:,.0f} us CPU/message ({accepted} accepted)          ")  # fmt: skip
    if accepted != total:
        raise SystemExit(f"{label}: only {accepted} of {total} were accepted")
    return Rate(total / elapsed, cpu)


Send = Callable[[int, int], int]


def stock_path(sa: Path, base: str, batch: int) -> Send:
    """Stock firebase-admin: ``send_each_for_multicast`` with a pool mounted for the emulator."""
    app = initialize_stock_app(
        credentials_path=sa, project_id=PROJECT, endpoint=base, name="bench-stock", pool_size=batch
    )
    template = build_message(_alert(), Target(0, "x", "android"))
    # The stock path as an app would write it today, registration tokens and all.
    warnings.filterwarnings("ignore", "MulticastMessage.tokens is deprecated", DeprecationWarning)

    def send(offset: int, count: int) -> int:
        multicast = messaging.MulticastMessage(
            tokens=[f"stock-{offset + i}" for i in range(count)],
            data=template.data,
            notification=template.notification,
            android=template.android,
            fcm_options=template.fcm_options,
        )
        response = messaging.send_each_for_multicast(multicast, app=app)
        return int(response.success_count)

    send(0, batch)  # warm-up: token fetch and the pool's connections
    return send


def notifier_path(sender: FcmSender, batch: int) -> Send:
    """notifier's sender, the alert going to a mix of Android, iOS and web devices."""
    alert = _alert()

    def send(offset: int, count: int) -> int:
        targets = [
            Target(offset + i, f"notifier-{offset + i}", PLATFORMS[(offset + i) % 3])
            for i in range(count)
        ]
        return Counter(o.kind for o in sender.send_batch(alert, targets))["accepted"]

    send(0, batch)  # warm-up: token fetch, loop thread, the pool's connections
    return send


def bench_bare(sa: Path, base: str, total: int, concurrency: int = 100) -> float:
    """A bare aiohttp client with a prebuilt body: no SDK, no validation, no outcome mapping."""
    sender = FcmSender(project_id=PROJECT, endpoint=base, credentials_path=sa)
    authorization = sender._authorization()  # reuse the real OAuth flow for the bearer token
    sender.close()
    message = encode_message(build_message(_alert(), Target(0, "bare", "android")))
    body = json.dumps({"message": message}).encode()
    url = f"{base}/v1/projects/{PROJECT}/messages:send"
    headers = {"Authorization": authorization, "Content-Type": "application/json"}

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            remaining = total
            done = 0
            started = time.perf_counter()

            async def worker() -> None:
                nonlocal remaining, done
                while remaining > 0:
                    remaining -= 1
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        if resp.status != 200:
                            raise RuntimeError(f"bare client got HTTP {resp.status}")
                    done += 1
                    if done % 1000 == 0:
                        _progress("bare aiohttp client", done, total, started)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            print(f"\r  bare aiohttp client: {total} in {elapsed:.2f}s = "
                  f"{total / elapsed:,.0f}/s          ")  # fmt: skip
            return total / elapsed

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages per path")
    parser.add_argument("--batch", type=int, default=500, help="devices per batch (max 500)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; best counts")
    parser.add_argument("--skip-bare", action="store_true", help="skip the bare client reference")
    args = parser.parse_args(argv)

    print(
        f"Starting the FCM emulator; {args.messages} messages per path and round, "
        f"batches of {args.batch}, {args.rounds} rounds"
    )
    # Taken before the run: the stock path's 500 threads raise the load average themselves.
    load = os.getloadavg()[0]
    proc, base = start_emulator_process(project_id=PROJECT, capacity=10_000)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sa = write_service_account(
                Path(tmp) / "sa.json", project_id=PROJECT, token_uri=f"{base}/token"
            )
            stock_send = stock_path(sa, base, args.batch)
            sender = FcmSender(
                project_id=PROJECT, endpoint=base, credentials_path=sa, pool_size=args.batch
            )
            ours_send = notifier_path(sender, args.batch)
            # Alternate the paths and keep each one's best round, so that a burst of load from
            # elsewhere on the machine penalises neither path alone.
            stock_rounds, our_rounds = [], []
            for round_ in range(1, args.rounds + 1):
                print(f"round {round_}/{args.rounds}")
                stock_rounds.append(
                    _timed("stock send_each_for_multicast", args.messages, args.batch, stock_send)
                )
                our_rounds.append(
                    _timed("notifier FcmSender.send_batch", args.messages, args.batch, ours_send)
                )
            sender.close()
            stock = max(stock_rounds)
            ours = max(our_rounds)
            bare = None if args.skip_bare else bench_bare(sa, base, args.messages)
    finally:
        stop_emulator_process(proc)

    print("\nbest round of each path:")
    print(
        f"stock send_each_for_multicast : {stock.per_second:8,.0f} messages/s, "
        f"{stock.cpu_us_per_message:6,.0f} us client CPU/message"
    )
    print(
        f"notifier FcmSender.send_batch : {ours.per_second:8,.0f} messages/s, "
        f"{ours.cpu_us_per_message:6,.0f} us client CPU/message"
    )
    if bare is not None:
        print(f"bare aiohttp client (ref.)    : {bare:8,.0f} messages/s")
    ratio = ours.per_second / stock.per_second
    cpu_ratio = stock.cpu_us_per_message / ours.cpu_us_per_message
    print(
        f"ratio notifier / stock        : {ratio:8.1f}x messages/s (target >= 4x), "
        f"{cpu_ratio:.1f}x less CPU per message"
    )
    cores = os.cpu_count() or 1
    if load > cores:
        # The stock path runs 500 threads and the scheduler shares CPU per thread, so on a busy
        # machine it takes CPU from everything else and the wall-clock ratio understates ours.
        print(
            f"note: load average {load:.1f} on {cores} cores before the run; rerun on a quiet "
            "machine for the wall-clock ratio (the CPU-per-message ratio holds either way)"
        )
    return 0 if ratio >= 4 else 1


if __name__ == "__main__":
    sys.exit(main())
