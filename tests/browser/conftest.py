"""A whole system for the console's browser tests: simulator, agent, Mosquitto and collector as processes,
with remote diagnostics on, three people (an engineer, a viewer, a customer's user), and Debian's Chromium
driven by Playwright (no browser download: ``/usr/bin/chromium``, headless)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.collector import add_user
from tests.support.diagnostics import key_pair
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.room import CONTRACT, Room
from tests.support.waiting import eventually

PASSWORD = "console-password-1"
CUSTOMER = "Acme Rooms"
#: Where screenshots go: docs/screenshots/ when HEZO_SCREENSHOTS=docs (to refresh the ones the docs show),
#: else a folder of the test run's, so running the suite leaves the checkout as it was.
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _post(room: Room, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{room.web_port}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {room.token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


@dataclass
class Console:
    room: Room
    #: Each site's question (a Low ticket opened by hand): site -> ticket number.
    questions: dict[str, str]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.room.web_port}{path}"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The room up, its devices up; the test site's contract is the customer's, and each site has a question
    (a Low ticket) open."""
    workdir = tmp_path_factory.mktemp("console")
    broker = Mosquitto("127.0.0.1", free_port(), workdir / "broker")
    (workdir / "broker").mkdir()
    broker.start()
    private, public = key_pair(workdir / "keys")
    agent_extra = {
        "commands": {
            "public_key": str(public),
            "state_dir": str(workdir / "agent-state"),
            "logs": {"agent_log": [str(workdir / "room" / "agent.log")], "journal": False},
        }
    }
    (workdir / "room").mkdir()
    room = Room(broker, workdir / "room", agent_extra=agent_extra)
    room.collector_extra["diagnostics"] = {
        "key_file": str(private),
        "bundle_dir": str(workdir / "bundles"),
        "public_url": f"http://127.0.0.1:{room.web_port}",
    }
    room.collector_extra["contracts"] = [
        {"number": CONTRACT, "start": "2026-01-15", "years": 3, "customer": CUSTOMER}
    ]
    try:
        room.start()
        eventually("agent online", room.agent_online, timeout=30)
        room.wait_device_state("rally-bar", "up", timeout=30)
        store = f"sqlite:///{room.workdir / 'collector.db'}"
        add_user(store, "eng", "engineer", PASSWORD)
        add_user(store, "vic", "viewer", PASSWORD)
        add_user(store, "acme", "viewer", PASSWORD, customer=CUSTOMER)
        questions = {
            site: _post(room, "/api/tickets", {"site": site, "summary": f"How do we book a room at {site}?"})
            for site in ("test-site", "other-site")
        }
        yield Console(room, {site: ticket["number"] for site, ticket in questions.items()})
    finally:
        room.stop()
        broker.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    binary = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) at 1280 px."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def log_in(page: Any, console: Console, name: str, path: str) -> None:
    """Open ``path``, which sends the browser to the login form, and log in as ``name``; back at ``path``."""
    page.goto(console.url(path))
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button")
    page.wait_for_url(f"**{path}")


def screenshot(page: Any, name: str) -> Path:
    """Save what the page shows as ``<name>.png``: in docs/screenshots/ with ``HEZO_SCREENSHOTS=docs``, else
    in the system's temporary folder (the checkout is left as it was)."""
    if os.environ.get("HEZO_SCREENSHOTS") == "docs":
        folder = DOCS_SCREENSHOTS
    else:
        folder = Path(tempfile.gettempdir()) / "hezo-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
