"""``/live`` tells an open page that something changed, within a bound of open streams; every asset a page
loads, Swagger UI's included, comes from the collector itself."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from collector import tickets
from collector.api import live
from collector.api.app import create_app
from collector.errors import UnavailableError
from tests.support.collector import T0, AppClient, Clock


class _Request:
    """What ``/live``'s stream asks of its request: whether the browser went away."""

    def __init__(self) -> None:
        self.gone = False

    async def is_disconnected(self) -> bool:
        return self.gone


def _open_ticket(engine: Engine, device: str) -> str:
    context = create_app(engine).state.wiring.sla
    with engine.begin() as conn:
        return tickets.open_by_hand(conn, site="hq", summary=f"{device}?", by="t", now=T0, context=context)


def test_a_ticket_step_moves_the_version_the_streams_watch(engine: Engine) -> None:
    number = _open_ticket(engine, "bar")
    before = live.version(engine)
    context = create_app(engine).state.wiring.sla
    with engine.begin() as conn:
        tickets.step(conn, number, "respond", by="ann", now=T0 + timedelta(minutes=1), context=context)
    after = live.version(engine)
    assert after["entries"] > before["entries"]
    assert after["tickets"] == before["tickets"]


def test_the_stream_says_hello_then_change_when_a_ticket_opens(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "INTERVAL", 0.01)
    streams = live.Streams(1)
    streams.take()
    request = _Request()

    async def follow() -> list[str]:
        stream = live._changes(request, engine, streams)  # type: ignore[arg-type]
        said = [await anext(stream)]
        await asyncio.to_thread(_open_ticket, engine, "cam")
        said.append(await anext(stream))
        request.gone = True
        said.extend([event async for event in stream])
        return said

    said = asyncio.run(follow())
    assert said[0].startswith("retry: 3000\nevent: hello\n")
    assert said[1] == 'event: change\ndata: {"changes": 1}\n\n'
    assert streams.open == 0  # the stream gave its place back when the browser went away


def test_streams_beyond_the_bound_are_refused_until_one_ends() -> None:
    streams = live.Streams(2)
    streams.take()
    streams.take()
    with pytest.raises(UnavailableError, match="2 live pages are open already"):
        streams.take()
    streams.give_back()
    streams.take()
    assert streams.open == 2


def test_live_answers_503_when_every_stream_is_taken(engine: Engine) -> None:
    app = create_app(engine, now=Clock())
    app.state.live_streams = live.Streams(0)
    answer = AppClient(app, role="viewer").get("/live")
    assert answer.status_code == 503
    assert "live pages are open already" in answer.json()["detail"]


def test_live_needs_a_login(engine: Engine) -> None:
    answer = AppClient(create_app(engine), role=None).get("/live")
    assert answer.status_code in (303, 307)
    assert answer.headers["location"].startswith("/login")


def test_the_api_docs_load_swagger_ui_from_the_collector(engine: Engine) -> None:
    client = AppClient(create_app(engine), role=None)
    page = client.get("/docs").text
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url: '([^']+)'", page)
    assert loaded, page
    assert all(url.startswith("/") for url in loaded), loaded
    script = client.get("/static/swagger/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.text


def test_the_console_assets_are_served(engine: Engine) -> None:
    client = AppClient(create_app(engine), role=None)
    for path in ("/static/console.js", "/static/console.css"):
        assert client.get(path).status_code == 200, path
