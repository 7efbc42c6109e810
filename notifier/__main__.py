"""``python -m notifier`` is the ``notifier`` command."""

from notifier.cli.main import main

main()
