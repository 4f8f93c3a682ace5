"""The fake Sync Cloud API answers as its OpenAPI document says, page by page, projection by projection."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from openapi_schema_validator import OAS31Validator

from agent.drivers.sync.client import PROJECTION
from simulator.syncapi import DEFAULT_PROJECTION, SyncCloudApi, demo_org, openapi_text

pytestmark = pytest.mark.integration

DOCUMENT = yaml.safe_load(openapi_text())
OPERATION = DOCUMENT["paths"]["/org/{orgId}/place"]["get"]


def response_schema(status: int) -> dict[str, Any]:
    """The document's schema for ``status``, with the components its ``$ref``s point to."""
    schema = dict(OPERATION["responses"][str(status)]["content"]["application/json"]["schema"])
    schema["components"] = DOCUMENT["components"]
    return schema


def check(body: Any, status: int) -> None:
    OAS31Validator(response_schema(status)).validate(body)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SyncCloudApi]:
    fake = SyncCloudApi(tmp_path, demo_org("Room 101", "2210FDZ2AB78", "2034FH1002R2"), rate=1000, burst=1000)
    fake.power_on()
    try:
        yield fake
    finally:
        fake.power_off()


def get(api: SyncCloudApi, org: str | None = None, **params: Any) -> requests.Response:
    return requests.get(
        f"{api.base_url}/org/{org or api.org_id}/place",
        params=params,
        cert=(str(api.client_cert_file), str(api.client_key_file)),
        verify=str(api.ca_file),
        timeout=10,
    )


def all_pages(api: SyncCloudApi, **params: Any) -> list[dict[str, Any]]:
    pages = []
    continuation = None
    while True:
        answer = get(api, **params, **({"continuation": continuation} if continuation else {}))
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        continuation = pages[-1].get("continuation")
        if not continuation:
            return pages


@pytest.mark.parametrize(
    "projection", [PROJECTION, DEFAULT_PROJECTION, f"{DEFAULT_PROJECTION},place.contract"]
)
@pytest.mark.parametrize("limit", [1, 2, 1000])
def test_every_page_matches_the_documented_schema(api: SyncCloudApi, projection: str, limit: int) -> None:
    pages = all_pages(api, projection=projection, limit=limit)
    for page in pages:
        check(page, 200)
    assert len(pages) == -(-5 // limit)  # five licensed places
    assert all("continuation" in page for page in pages[:-1])
    assert "continuation" not in pages[-1]


def test_the_default_projection_matches_the_documented_schema(api: SyncCloudApi) -> None:
    for page in all_pages(api):
        check(page, 200)


def test_unlicensed_places_carry_basic_information_only(api: SyncCloudApi) -> None:
    places = [place for page in all_pages(api, unlicensed="true") for place in page["places"]]
    for page in all_pages(api, unlicensed="true"):
        check(page, 200)
    training = next(place for place in places if place["name"] == "Training Room")
    assert set(training) <= {"id", "type", "name", "group", "location", "license", "contract", "createdAt"}


def test_faulty_devices_still_match_the_schema(api: SyncCloudApi) -> None:
    rally = api.device(sim_id="rally")
    assert rally is not None
    for fault in ("offline", "mic-pod-lost", "health-warning", "firmware-changed"):
        rally.fault(fault)
    for page in all_pages(api, projection=PROJECTION, limit=2):
        check(page, 200)


def test_the_throttled_answer_is_the_documented_429(tmp_path: Path) -> None:
    fake = SyncCloudApi(tmp_path, demo_org("Room 101", "A", "B"), rate=0.001, burst=1)
    fake.power_on()
    try:
        first, second = get(fake), get(fake)
    finally:
        fake.power_off()
    assert first.status_code == 200
    assert second.status_code == 429
    assert second.json() == {"statusCode": 429, "message": "Too Many Requests"}
    check(second.json(), 429)


def test_an_unknown_projection_is_the_documented_400(api: SyncCloudApi) -> None:
    answer = get(api, projection="place.device,place.nonsense")
    assert answer.status_code == 400
    check(answer.json(), 400)


def test_a_limit_out_of_range_is_a_400(api: SyncCloudApi) -> None:
    assert get(api, limit=0).status_code == 400
    assert get(api, limit=1001).status_code == 400


def test_another_organisation_is_the_documented_403(api: SyncCloudApi) -> None:
    answer = get(api, org="someoneElsesOrg")
    assert answer.status_code == 403
    check(answer.json(), 403)


def test_the_schema_check_can_fail() -> None:
    with pytest.raises(Exception, match="places"):
        check({"continuation": "x"}, 200)


def test_the_schema_check_follows_the_component_references(api: SyncCloudApi) -> None:
    page = get(api, projection=PROJECTION).json()
    page["places"][0]["devices"][1]["status"] = "Sleeping"  # not one of Offline, Online, InUse
    with pytest.raises(Exception, match="Sleeping"):
        check(page, 200)
