"""docker-compose.yml: valid Compose, scalable workers, and every command it runs really exists.

No Docker is needed: the file is checked against the Compose specification's JSON schema (vendored
in tests/data/compose-spec, see its NOTICE.md), each ``notifier ...`` command is parsed by the real
CLI (so a renamed subcommand or option fails here, not at ``docker compose up``), and the
environment given to the notifier services is loaded by the real settings, which reject unknown
``NOTIFIER_*`` names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml

from notifier.cli.main import main as notifier_cli
from notifier.core.settings import load_settings
from notifier.pipeline.routing import QUEUES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "data" / "compose-spec" / "compose_spec.json"
DOCKERFILE = ROOT / "Dockerfile"

# The separate processes of docs/scaling.md, each a service of its own.
ROLES = {"api": "api", "worker": "worker", "beat": "beat", "migrate": "db"}
# Services run more than once with `docker compose up --scale NAME=N`.
SCALABLE = ("worker", "beat")
# What each third-party image's commands may call: the programs those official images ship.
IMAGE_PROGRAMS = {
    "postgres": {"pg_isready", "postgres"},
    "redis": {"redis-server", "redis-cli"},
    "rabbitmq": {"rabbitmq-server", "rabbitmq-diagnostics", "rabbitmqctl"},
}
# `${NAME:?message}` (required) and `${NAME:-default}`: what Compose takes from the shell.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([?-])([^}]*))?\}")
# What an operator exports for the required ones.
EXPORTED = {"NOTIFIER_WEBHOOK_SECRETS": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


def interpolate(value: str) -> str:
    """``value`` as Compose would pass it: defaults where given, else what the operator set."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        return rest if kind == "-" else EXPORTED[name]

    return INTERPOLATION.sub(one, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def built_here(service: dict[str, Any]) -> bool:
    return "build" in service


def test_the_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    # The schema names draft 2019-09 in a spelling jsonschema does not look up; say it outright.
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_rejects_what_compose_would_reject(compose: dict[str, Any]) -> None:
    """The check above can fail: a misspelt key in a service is an error."""
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))
    broken = {**compose, "services": {**compose["services"], "worker": {"comand": ["x"]}}}
    assert any("comand" in e.message for e in validator.iter_errors(broken))


def test_api_workers_and_beat_are_separate_services(services: dict[str, dict[str, Any]]) -> None:
    for name, subcommand in ROLES.items():
        command = services[name]["command"]
        assert command[:2] == ["notifier", subcommand], name


def test_scalable_services_have_no_fixed_name_or_host_port(
    services: dict[str, dict[str, Any]],
) -> None:
    # Compose refuses to scale a service with a container_name, and a second copy cannot bind
    # the same host port.
    for name in SCALABLE:
        assert "container_name" not in services[name], name
        assert "ports" not in services[name], name


def test_the_workers_listen_to_every_queue_tasks_are_routed_to(
    services: dict[str, dict[str, Any]],
) -> None:
    command = services["worker"]["command"]
    queues = command[command.index("--queues") + 1].split(",")
    assert set(queues) == {str(q) for q in QUEUES}


def resolve(command: click.Command, args: list[str]) -> click.Command:
    """The CLI command ``args`` names, its options parsed as click would at run time."""
    if isinstance(command, click.Group):
        assert args, f"{command.name} needs a subcommand"
        sub = command.get_command(click.Context(command), args[0])
        assert sub is not None, f"no command {args[0]!r} under {command.name!r}"
        return resolve(sub, args[1:])
    command.make_context(command.name, list(args))  # raises on unknown options or bad values
    return command


def test_every_notifier_command_is_known_to_the_cli(services: dict[str, dict[str, Any]]) -> None:
    ran = 0
    for name, service in services.items():
        if not built_here(service):
            continue
        command = service.get("command", [])
        assert command and command[0] == "notifier", name
        resolve(notifier_cli, command[1:])
        ran += 1
    assert ran >= len(ROLES)


def test_the_image_installs_the_notifier_command_and_lets_compose_choose_it() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^notifier = "notifier\.cli\.main:main"$', pyproject, re.MULTILINE)
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^RUN pip install \.", dockerfile, re.MULTILINE)  # installs the script
    assert re.search(r"^FROM python:", dockerfile, re.MULTILINE)  # `python -c` health checks
    assert "ENTRYPOINT" not in dockerfile  # each service's command runs as written


def test_third_party_services_call_only_their_images_programs(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if built_here(service):
            continue
        image = service["image"].split(":")[0]
        programs = IMAGE_PROGRAMS[image]
        commands = [service.get("command"), service.get("healthcheck", {}).get("test")]
        for command in filter(None, commands):
            if command[0] == "CMD-SHELL":
                program = command[1].split()[0]
            else:
                program = command[1] if command[0] == "CMD" else command[0]
            assert program in programs, f"{name}: {program}"


def test_the_notifier_services_environment_is_valid_settings(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if not built_here(service):
            continue
        environment = {
            key: interpolate(str(value)) for key, value in service.get("environment", {}).items()
        }
        load_settings(environment)  # unknown or malformed NOTIFIER_* raise SettingsError
        assert all(key.startswith("NOTIFIER_") for key in environment), name
