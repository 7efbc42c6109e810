"""A local FCM server that firebase-admin talks to as if it were Google: a mail catcher for push.

See docs/emulator.md. The public entry points are re-exported here.
"""

from notifier.emulator.app import create_emulator_app
from notifier.emulator.launcher import start_emulator_process, stop_emulator_process
from notifier.emulator.server import run_emulator
from notifier.emulator.service_account import ensure_service_account, write_service_account

__all__ = [
    "create_emulator_app",
    "ensure_service_account",
    "run_emulator",
    "start_emulator_process",
    "stop_emulator_process",
    "write_service_account",
]
