"""`notifier devices import FILE`: a newsroom's device export, loaded idempotently in batches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, update

from notifier.cli.main import main
from notifier.core.models import Device, Subscription, Topic
from notifier.runtime import Runtime
from notifier.subscriptions.bulk_import import MAX_KEPT_REJECTIONS, ImportReport, import_devices
from notifier.subscriptions.service import subscribe
from tests.factories import token

Line = dict[str, Any] | str


def device_line(**overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"token": token("imp"), "platform": "android", "topics": ["israel"]}
    line.update(overrides)
    return line


def write_file(path: Path, lines: list[Line]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def run_cli(db_url: str, tmp_path: Path, *args: str, stdin: bytes | None = None) -> Result:
    env = {"NOTIFIER_DATABASE_URL": db_url, "NOTIFIER_DATA_DIR": str(tmp_path / "var")}
    return CliRunner().invoke(main, ["devices", "import", *args], env=env, input=stdin)


def import_file(runtime: Runtime, path: Path, **kwargs: Any) -> ImportReport:
    with path.open("rb") as lines:
        return import_devices(runtime.engine, lines, **kwargs)


def topics_of(runtime: Runtime, tok: str) -> list[str]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(Topic.slug)
                .join(Subscription, Subscription.topic_id == Topic.id)
                .join(Device, Device.id == Subscription.device_id)
                .where(Device.token == tok)
                .order_by(Topic.slug)
            )
        )


def device(runtime: Runtime, tok: str) -> Device | None:
    with runtime.sessions() as session:
        return session.scalar(select(Device).where(Device.token == tok))


def count(runtime: Runtime, model: type[Device] | type[Subscription]) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_import_creates_devices_with_their_topics_and_preferences(
    db_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    first = device_line(topics=["israel", "world"], locale="he-IL", timezone="Asia/Jerusalem")
    second = device_line(platform="ios", topics=["breaking"])
    path = write_file(tmp_path / "devices.jsonl", [first, second])

    result = run_cli(db_url, tmp_path, str(path))

    assert result.exit_code == 0, result.output
    assert "imported (new devices): 2" in result.stdout
    assert "subscriptions added: 3" in result.stdout
    assert "rejected lines: 0" in result.stdout
    assert topics_of(runtime, first["token"]) == ["israel", "world"]
    stored = device(runtime, first["token"])
    assert stored is not None
    assert (stored.platform, stored.locale, stored.timezone, stored.state) == (
        "android",
        "he-IL",
        "Asia/Jerusalem",
        "active",
    )
    assert topics_of(runtime, second["token"]) == ["breaking"]


def test_importing_the_same_file_twice_changes_nothing_the_second_time(
    db_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    lines: list[Line] = [device_line(topics=["israel", "world"]) for _ in range(30)]
    path = write_file(tmp_path / "devices.jsonl", lines)
    run_cli(db_url, tmp_path, str(path), "--batch-size", "7")

    again = run_cli(db_url, tmp_path, str(path), "--batch-size", "7")

    assert again.exit_code == 0, again.output
    assert "imported (new devices): 0" in again.stdout
    assert "updated (known devices): 30" in again.stdout
    assert "subscriptions added: 0" in again.stdout
    assert count(runtime, Device) == 30
    assert count(runtime, Subscription) == 60


def test_rejected_lines_are_listed_by_number_and_reason_without_tokens(
    db_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    good = device_line()
    secret_bad_platform = token("secret")
    secret_extra_field = token("secret")
    secret_keyed = token("secret")
    lines: list[Line] = [
        good,
        "",
        '{"token": "broken',
        device_line(token=secret_bad_platform, platform="blackberry"),
        device_line(token=secret_extra_field, tags={"vip": True}),
        json.dumps({secret_keyed: {"platform": "android"}}),
        device_line(token="short"),
        "[1, 2]",
    ]
    path = write_file(tmp_path / "devices.jsonl", lines)

    result = run_cli(db_url, tmp_path, str(path))

    assert result.exit_code == 1
    assert "lines: 8 (blank: 1)" in result.stdout
    assert "imported (new devices): 1" in result.stdout
    assert "rejected lines: 6" in result.stdout
    assert "line 3: Invalid JSON" in result.stdout
    assert "line 4: platform: Input should be 'android', 'ios' or 'web'" in result.stdout
    assert "line 5: unknown field 'tags'" in result.stdout
    assert "line 6: token: Field required; platform: Field required; " in result.stdout
    assert "topics: Field required; unknown field\n" in result.stdout
    assert "line 7: token: String should have at least 8 characters" in result.stdout
    assert "line 8: Input should be an object" in result.stdout
    for secret in (secret_bad_platform, secret_extra_field, secret_keyed, "short"):
        assert secret not in result.output
    assert count(runtime, Device) == 1


def test_a_line_with_an_unknown_topic_is_rejected_whole_naming_the_slugs(
    db_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    line = device_line(topics=["israel", "cricket", "astrology"])
    path = write_file(tmp_path / "devices.jsonl", [line])

    result = run_cli(db_url, tmp_path, str(path))

    assert result.exit_code == 1
    assert "line 1: unknown topic(s): astrology, cricket" in result.stdout
    assert device(runtime, line["token"]) is None


def test_a_token_repeated_in_the_file_is_one_device_with_merged_topics(
    db_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    tok = token("dup")
    lines: list[Line] = [
        device_line(token=tok, topics=["israel"], locale="he-IL"),
        device_line(token=tok, platform="ios", topics=["world", "israel"]),
    ]
    path = write_file(tmp_path / "devices.jsonl", lines)

    report = import_file(runtime, path)

    assert (report.imported, report.updated, report.subscriptions_added) == (1, 0, 2)
    assert topics_of(runtime, tok) == ["israel", "world"]
    stored = device(runtime, tok)
    assert stored is not None
    assert (stored.platform, stored.locale) == ("ios", "he-IL")  # last wins, omitted keeps


def test_a_known_device_gains_topics_and_keeps_what_the_file_does_not_say(
    db_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    tok = token("known")
    with runtime.sessions.begin() as session:
        subscribe(session, token=tok, platform="android", topics=["sport"], locale="en-GB")
    path = write_file(tmp_path / "devices.jsonl", [device_line(token=tok, topics=["israel"])])

    report = import_file(runtime, path)

    assert (report.imported, report.updated, report.subscriptions_added) == (0, 1, 1)
    assert topics_of(runtime, tok) == ["israel", "sport"]
    stored = device(runtime, tok)
    assert stored is not None and stored.locale == "en-GB"


def test_a_device_pruned_by_fcm_stays_dead_when_reimported(
    db_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    tok = token("dead")
    with runtime.sessions.begin() as session:
        subscribe(session, token=tok, platform="android", topics=["sport"])
        session.execute(
            update(Device).where(Device.token == tok).values(state="dead", dead_reason="UNREG")
        )
    path = write_file(tmp_path / "devices.jsonl", [device_line(token=tok, topics=["israel"])])

    report = import_file(runtime, path)

    assert (report.imported, report.updated, report.left_dead) == (0, 0, 1)
    assert report.complete
    stored = device(runtime, tok)
    assert stored is not None and stored.state == "dead"
    assert topics_of(runtime, tok) == ["sport"]


def test_rejects_file_lists_every_rejected_line_as_json(
    db_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    lines: list[Line] = [device_line(topics=["no-such-topic"]) for _ in range(15)]
    path = write_file(tmp_path / "devices.jsonl", [device_line(), *lines])
    rejects = tmp_path / "rejects.jsonl"

    result = run_cli(db_url, tmp_path, str(path), "--rejects", str(rejects))

    assert result.exit_code == 1
    assert "... and 5 more" in result.stdout
    written = [json.loads(row) for row in rejects.read_text().splitlines()]
    assert [row["line"] for row in written] == list(range(2, 17))
    assert written[0]["reason"] == "unknown topic(s): no-such-topic"
    assert "imp-" not in rejects.read_text()  # no token


def test_dash_reads_the_devices_from_stdin(db_url: str, tmp_path: Path, runtime: Runtime) -> None:
    lines = [device_line(), device_line()]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()

    result = run_cli(db_url, tmp_path, "-", stdin=data)

    assert result.exit_code == 0, result.output
    assert "imported (new devices): 2" in result.stdout
    assert count(runtime, Device) == 2


def test_a_large_file_is_written_in_batches_with_progress_by_bytes(
    db_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    topics = ["israel", "world", "politics", "business"]
    lines: list[Line] = [device_line(topics=topics[: 1 + i % 4]) for i in range(20_000)]
    path = write_file(tmp_path / "devices.jsonl", lines)
    progress: list[int] = []

    report = import_file(runtime, path, batch_size=3000, on_progress=progress.append)

    assert (report.lines, report.imported, report.rejected) == (20_000, 20_000, 0)
    assert report.subscriptions_added == 50_000
    assert len(progress) == 7
    assert sum(progress) == path.stat().st_size
    assert count(runtime, Device) == 20_000
    assert count(runtime, Subscription) == 50_000


def test_an_interrupted_import_keeps_finished_batches_and_a_rerun_completes_it(
    db_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    path = write_file(tmp_path / "devices.jsonl", [device_line() for _ in range(10)])

    def crash(_bytes: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(runtime, path, batch_size=4, on_progress=crash)
    assert count(runtime, Device) == 4

    report = import_file(runtime, path, batch_size=4)
    assert (report.imported, report.updated) == (6, 4)
    assert count(runtime, Device) == 10


def test_the_report_keeps_the_first_rejections_but_counts_them_all(
    db_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    path = write_file(tmp_path / "devices.jsonl", ["not json"] * (MAX_KEPT_REJECTIONS + 50))
    seen: list[int] = []
    progress: list[int] = []

    report = import_file(
        runtime,
        path,
        batch_size=500,
        on_progress=progress.append,
        on_reject=lambda r: seen.append(r.line),
    )

    assert report.rejected == MAX_KEPT_REJECTIONS + 50
    assert len(report.rejections) == MAX_KEPT_REJECTIONS
    assert seen == list(range(1, MAX_KEPT_REJECTIONS + 51))
    assert len(progress) == 3  # the bar moves even when no line is accepted


def test_a_missing_file_is_a_usage_error(db_url: str, tmp_path: Path) -> None:
    result = run_cli(db_url, tmp_path, str(tmp_path / "nope.jsonl"))

    assert result.exit_code == 2
