"""The shapes of a locale and a topic slug, written once for every place that checks them.

Python imports these. The copies that cannot import Python (``notifier/openapi.yaml`` for API
clients and fuzzers, ``notifier/static/widget/widget.js`` in readers' browsers) are compared with
them by ``tests/test_patterns.py``, so a change here that forgets them fails the tests. The
patterns use only syntax that Python's ``re``, ECMAScript and JSON Schema read the same way.
"""

from __future__ import annotations

import re
from typing import Final

# A BCP 47-like language tag as browsers and apps report it: "he", "en-GB", "pt_BR", "zh-Hant-TW".
# Lenient on purpose (the device's own report is what it wants), strict enough to keep junk out.
LOCALE_PATTERN: Final = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$"
# BCP 47 recommends tags of at most 35 characters.
LOCALE_MAX_LENGTH: Final = 35

# A topic slug from the catalogue: lowercase, digits and hyphens, 64 characters at most.
TOPIC_SLUG_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,63}$"

TOPIC_SLUG: Final = re.compile(TOPIC_SLUG_PATTERN)
