"""The accepted devices' ids and message names reach PostgreSQL as array literals intact."""

from __future__ import annotations

from sqlalchemy import text

from notifier.core.db import make_engine
from notifier.pipeline.record import _int_array, _text_array


def test_names_and_ids_round_trip_through_the_array_literals(pg_url: str) -> None:
    # FCM's names are plain, but nothing here relies on it: quotes, backslashes, commas,
    # braces, spaces, "NULL" and the empty string come back as they went.
    names = [
        "projects/p/messages/0:1700000000000000%abc",
        'a "quoted" name',
        "back\\slash\\",
        "comma, {brace}",
        "NULL",
        "",
        "héllo שלום",
    ]
    ids = [1, 9_007_199_254_740_993, 42]
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            got_names, got_ids = conn.execute(
                text("SELECT CAST(:names AS text[]), CAST(:ids AS bigint[])"),
                {"names": _text_array(names), "ids": _int_array(ids)},
            ).one()
    finally:
        engine.dispose()
    assert got_names == names
    assert got_ids == ids
