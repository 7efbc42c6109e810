"""``python -m notifier.emulator --port N``: the emulator without the rest of notifier's CLI."""

from __future__ import annotations

import argparse

from notifier.emulator.server import run_emulator
from notifier.emulator.state import DEFAULT_CAPACITY


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m notifier.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9099)
    parser.add_argument("--project", default=None, help="serve only this project id")
    parser.add_argument(
        "--capacity", type=int, default=DEFAULT_CAPACITY, help="received messages kept"
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a page origin whose browsers may use the web push stand-in (repeatable)",
    )
    parser.add_argument(
        "--quota-per-minute",
        type=_non_negative,
        default=0,
        metavar="N",
        help="answer 429 QUOTA_EXCEEDED over N sends per project in any 60 s (0: no quota)",
    )
    args = parser.parse_args(argv)
    run_emulator(
        args.host,
        args.port,
        args.project,
        args.capacity,
        args.allow_origin,
        quota_per_minute=args.quota_per_minute,
    )


def _non_negative(raw: str) -> int:
    if not raw.isdigit():
        raise argparse.ArgumentTypeError("must be a non-negative integer")
    return int(raw)


if __name__ == "__main__":
    main()
