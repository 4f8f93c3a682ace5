"""The OpenAPI document says what each operation answers, and names the values that are fixed."""

from __future__ import annotations

from typing import Any

import pytest

from collector.api.app import create_app
from collector.config import CollectorConfig
from collector.remote.commander import Commander
from collector.store.database import make_engine
from protocol.commands import ACTIONS


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    engine = make_engine("sqlite://")
    found: dict[str, Any] = create_app(engine, diagnostics=Commander(engine, CollectorConfig())).openapi()
    return found


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_every_operation_but_healthz_answers_401_and_400_with_the_error_body(
    document: dict[str, Any],
) -> None:
    for method, path, op in operations(document):
        if path == "/healthz":
            continue
        assert {"400", "401"} <= set(op["responses"]), (method, path)
        if method != "head":
            schema = op["responses"]["401"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)


def test_every_operation_with_parameters_documents_its_422_as_the_error_body(
    document: dict[str, Any],
) -> None:
    for method, path, op in operations(document):
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in op["responses"], (method, path)
            if method != "head":
                assert "ErrorBody" in str(op["responses"]["422"]), (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_fixed_values_are_enums(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert set(schemas["CommandRequest"]["properties"]["action"]["enum"]) == set(ACTIONS)
    assert set(schemas["OpenBody"]["properties"]["priority"]["enum"]) == {"critical", "high", "low"}
    days = schemas["WindowBody"]["properties"]["days"]["anyOf"][0]["items"]["enum"]
    assert days == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    [status] = [p for p in document["paths"]["/api/outbox"]["get"]["parameters"] if p["name"] == "status"]
    assert set(status["schema"]["anyOf"][0]["enum"]) == {"pending", "sent", "dead"}
    steps = {
        path.rsplit("/", 1)[1] for path in document["paths"] if path.startswith("/api/tickets/{number}/")
    }
    assert steps >= {"respond", "confirm", "ship", "deliver", "return", "resolve", "close"}


def test_by_and_requested_by_are_marked_deprecated(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["StepBody"]["properties"]["by"]["deprecated"] is True
    assert schemas["CommandRequest"]["properties"]["requested_by"]["deprecated"] is True
