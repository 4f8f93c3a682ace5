"""The web page's login in a real headless Chromium: the session cookie is out of the page's reach, a form
posted without the CSRF token is refused (from the page itself, and from another site), and the page's own
fetch() calls carry the token and go through."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine, select

from collector.api.app import create_app
from collector.people import users
from collector.store.schema import ticket_entries
from collector.tickets import open_by_hand
from tests.support.browser import Browser, log_in
from tests.support.collector import T0, migrated_engine
from tests.support.mosquitto import free_port, wait_port
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PASSWORD = "engineer-password-1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = migrated_engine(tmp_path)
    app = create_app(engine)
    with engine.begin() as conn:
        users.add(conn, "eng", "engineer", password=PASSWORD, now=T0, by="test")
        open_by_hand(conn, site="hq", summary="?", by="t", now=T0, context=app.state.wiring.sla)
    yield engine
    engine.dispose()


@pytest.fixture
def site(store: Engine) -> Iterator[str]:
    """The collector's web app served on a free loopback port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port("127.0.0.1", port, timeout=30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def browser() -> Iterator[Browser]:
    found = Browser()
    try:
        yield found
    finally:
        found.close()


def notes(store: Engine) -> list[str]:
    with store.connect() as conn:
        return [
            row.text for row in conn.execute(select(ticket_entries).where(ticket_entries.c.kind == "note"))
        ]


def post_form(browser: Browser, action: str, fields: dict[str, str]) -> None:
    """Submit a form the page did not have, as a forged one would be (navigates to the answer)."""
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    browser.evaluate(
        "const f = document.createElement('form'); f.method = 'post';"
        f"f.action = '{action}'; f.innerHTML = '{inputs}'; document.body.append(f); f.submit();"
    )


def logged_in(browser: Browser, site: str) -> None:
    browser.open(f"{site}/")
    log_in(browser, "eng", PASSWORD)
    eventually("the overview", lambda: browser.evaluate("document.title") == "hezo collector")


def test_the_session_cookie_is_httponly_and_logout_ends_it(browser: Browser, site: str) -> None:
    logged_in(browser, site)
    assert "hezo_session" not in browser.evaluate("document.cookie")
    assert "eng (engineer)" in browser.evaluate("document.querySelector('.who').textContent")
    browser.evaluate("document.querySelector('.who button').click()")
    eventually("back at the login form", lambda: browser.evaluate("location.pathname") == "/login")
    browser.open(f"{site}/")
    eventually("a page asks for the login again", lambda: browser.evaluate("location.pathname") == "/login")


def test_a_form_posted_without_the_csrf_token_is_refused(browser: Browser, site: str, store: Engine) -> None:
    logged_in(browser, site)
    post_form(browser, "/api/tickets/HZ-000001/notes", {"text": "forged"})
    eventually("the refusal", lambda: "forbidden" in (browser.evaluate("document.body.innerText") or ""))
    assert "CSRF" in browser.evaluate("document.body.innerText")
    post_form(browser, "/logout", {"csrf_token": "guess"})
    eventually("the logout refused", lambda: browser.evaluate("location.pathname") == "/logout")
    assert "forbidden" in browser.evaluate("document.body.innerText")
    browser.open(f"{site}/")  # still logged in: the forged logout did nothing
    eventually("the overview", lambda: browser.evaluate("document.title") == "hezo collector")
    assert notes(store) == []


def test_the_pages_own_fetch_carries_the_token(browser: Browser, site: str, store: Engine) -> None:
    logged_in(browser, site)
    script = """(async () => {
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        const body = JSON.stringify({text: 'from the page'});
        const post = (headers) => fetch('/api/tickets/HZ-000001/notes', {method: 'POST', body,
            headers: {'Content-Type': 'application/json', ...headers}});
        window.statuses = [(await post({})).status, (await post({'X-CSRF-Token': csrf})).status];
    })()"""
    browser.evaluate(script)
    statuses = eventually("both answers", lambda: browser.evaluate("window.statuses"))
    assert statuses == [403, 200]
    assert notes(store) == ["from the page"]


class _Attacker(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        page = (
            f'<form method="post" action="{self.target}/api/tickets/HZ-000001/notes">'
            '<input name="text" value="forged"></form><script>document.forms[0].submit()</script>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *_args: object) -> None:
        pass


def test_another_site_cannot_post_with_the_users_session(browser: Browser, site: str, store: Engine) -> None:
    logged_in(browser, site)
    _Attacker.target = site
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        # localhost is another site than 127.0.0.1: SameSite=Strict keeps the session cookie at home.
        browser.open(f"http://localhost:{attacker.server_address[1]}/")
        eventually(
            "the forged post answered",
            lambda: "unauthorized" in (browser.evaluate("document.body.innerText") or ""),
        )
    finally:
        attacker.shutdown()
        attacker.server_close()
    assert notes(store) == []
