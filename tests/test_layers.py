"""The import-linter contracts in pyproject.toml hold, and each catches the regression it is for.

``make lint`` runs ``lint-imports``; these tests also run with ``make test``, and prove the
contracts have teeth: every import the layout was cleaned of (issue 9) is added back to a copy
of the real import graph, and the contract named for it must then fail.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import grimp
import pytest
from importlinter import api
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.independence import IndependenceContract
from importlinter.contracts.layers import LayersContract
from importlinter.contracts.protected import ProtectedContract

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
CONTRACT_TYPES: dict[str, Any] = {
    "layers": LayersContract,
    "forbidden": ForbiddenContract,
    "independence": IndependenceContract,
    "protected": ProtectedContract,
    "acyclic_siblings": AcyclicSiblingsContract,
}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return api.read_configuration(str(PYPROJECT))


@pytest.fixture(scope="module")
def graph(config: dict[str, Any]) -> grimp.ImportGraph:
    options = config["session_options"]
    return grimp.build_graph(
        *options["root_packages"],
        include_external_packages=options.get("include_external_packages") in (True, "True"),
    )


def contract_kept(config: dict[str, Any], graph: grimp.ImportGraph, contract_id: str) -> bool:
    (options,) = [c for c in config["contracts_options"] if c.get("id") == contract_id]
    contract = CONTRACT_TYPES[options["type"]](
        name=options["name"],
        session_options=config["session_options"],
        contract_options=options,
    )
    return bool(contract.check(copy.deepcopy(graph), verbose=False).kept)


def contract_ids(config: dict[str, Any]) -> list[str]:
    return [c["id"] for c in config["contracts_options"]]


def test_every_contract_has_an_id_and_a_known_type(config: dict[str, Any]) -> None:
    assert all(c.get("id") and c["type"] in CONTRACT_TYPES for c in config["contracts_options"])
    assert len(set(contract_ids(config))) == len(config["contracts_options"])


def test_the_code_keeps_every_contract(config: dict[str, Any], graph: grimp.ImportGraph) -> None:
    broken = [cid for cid in contract_ids(config) if not contract_kept(config, graph, cid)]
    assert broken == [], f"run `lint-imports` for details on {broken}"


@pytest.mark.parametrize(
    ("contract_id", "importer", "imported"),
    [
        # The four regressions issue 9 names.
        ("cli", "notifier.cli.devices", "notifier.cli.main"),
        ("layers", "notifier.runtime", "workers.publish"),
        ("emulator-users", "notifier.fcm.sender", "notifier.emulator.service_account"),
        ("layers", "notifier.subscriptions.bulk_import", "notifier.http.requests"),
        # Layers reaching up, and siblings that must not meet.
        ("layers", "notifier.observability.health", "notifier.runtime"),
        ("layers", "notifier.pipeline.planner", "notifier.intake.events"),
        ("layers", "workers.tasks", "notifier.http.app"),
        ("layers", "notifier.core.outbox", "notifier.pipeline.sweeper"),
        # Cycles between modules of one package.
        ("no-cycles", "notifier.core.models", "notifier.core.outbox"),
        # Frameworks and SDKs kept at the edges.
        ("domain-frameworks", "notifier.pipeline.send", "flask"),
        ("domain-frameworks", "notifier.alerts.service", "celery"),
        ("firebase", "notifier.pipeline.send", "firebase_admin"),
        ("fcm-sender", "notifier.pipeline.send", "notifier.fcm.sender"),
        ("emulator-alone", "notifier.emulator.app", "notifier.fcm.types"),
        ("api-task-code", "notifier.http.ops", "workers.tasks"),
    ],
)
def test_a_contract_breaks_when_its_regression_comes_back(
    config: dict[str, Any],
    graph: grimp.ImportGraph,
    contract_id: str,
    importer: str,
    imported: str,
) -> None:
    regressed = copy.deepcopy(graph)
    regressed.add_import(importer=importer, imported=imported)
    assert contract_kept(config, graph, contract_id)
    assert not contract_kept(config, regressed, contract_id)
