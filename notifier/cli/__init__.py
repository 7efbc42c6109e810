"""The ``notifier`` command: one module per group of subcommands, shared helpers in ``common``."""
