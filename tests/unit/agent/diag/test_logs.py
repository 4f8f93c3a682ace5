"""A log bundle fetches the admin page of each https check, of every device or of the one asked for."""

from agent.config import AgentConfig
from agent.diag.logs import device_pages
from diagnostics.logs import DevicePage

CONFIG = AgentConfig.model_validate(
    {
        "site": "acme",
        "agent": "room-1",
        "devices": [
            {
                "id": "bar",
                "model": "rally-bar",
                "checks": [
                    {"driver": "icmp", "host": "192.0.2.10"},
                    {"driver": "https", "url": "https://192.0.2.10/", "timeout": 2},
                ],
            },
            {"id": "tap", "model": "tap-ip", "checks": [{"driver": "https", "url": "https://192.0.2.11/"}]},
        ],
    }
)


def test_every_https_check_of_every_device_is_a_page_named_by_its_place_in_the_checks() -> None:
    assert device_pages(CONFIG) == [
        DevicePage("bar", "https-1", "https://192.0.2.10/", timeout=2.0),
        DevicePage("tap", "https-0", "https://192.0.2.11/"),
    ]


def test_a_bundle_for_one_device_fetches_only_its_pages() -> None:
    assert [page.device for page in device_pages(CONFIG, "tap")] == ["tap"]
