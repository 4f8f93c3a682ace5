"""The web page's login: the form, the session cookie, CSRF, logout, and what ends a session."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import Engine

from collector import audit
from collector.api.app import create_app
from collector.config import WebConfig
from collector.people import users
from tests.support.collector import T0, AppClient, Clock

PASSWORD = "correct horse battery"


@pytest.fixture
def app(engine: Engine) -> object:
    with engine.begin() as conn:
        users.add(conn, "ann", "engineer", password=PASSWORD, now=T0, by="test")
    return create_app(engine, now=Clock())


@pytest.fixture
def anonymous(app: object) -> AppClient:
    return AppClient(app, role=None)


def cookies(answer: httpx.Response) -> dict[str, str]:
    """The cookies an answer sets, each with its attributes as written."""
    found = {}
    for header in answer.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        found[name] = rest
    return found


def form_token(anonymous: AppClient, path: str = "/login") -> tuple[str, str]:
    """The login form's CSRF token and the cookie that goes with it."""
    page = anonymous.get(path)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return token, cookies(page)["hezo_login"].split(";")[0]


def log_in(anonymous: AppClient, password: str = PASSWORD, next_page: str = "/") -> httpx.Response:
    token, cookie = form_token(anonymous)
    return anonymous.request(
        "POST",
        "/login",
        content=f"username=ann&password={password.replace(' ', '+')}&csrf_token={token}&next={next_page}",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"hezo_login={cookie}"},
    )


def session_of(answer: httpx.Response) -> str:
    return cookies(answer)["hezo_session"].split(";")[0]


def test_a_page_without_a_session_goes_to_the_login_form_and_back(anonymous: AppClient) -> None:
    answer = anonymous.get("/?x=1")
    assert (answer.status_code, answer.headers["Location"]) == (303, "/login?next=/%3Fx%3D1")


def test_logging_in_sets_an_httponly_strict_session_cookie_and_goes_back(anonymous: AppClient) -> None:
    answer = log_in(anonymous, next_page="/diagnostics")
    assert (answer.status_code, answer.headers["Location"]) == (303, "/diagnostics")
    attributes = cookies(answer)["hezo_session"].lower()
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "secure" not in attributes  # plain HTTP on loopback
    page = anonymous.get("/", headers={"Cookie": f"hezo_session={session_of(answer)}"})
    assert page.status_code == 200
    assert "ann (engineer)" in page.text


def test_behind_https_the_cookie_is_secure(engine: Engine) -> None:
    with engine.begin() as conn:
        users.add(conn, "ann", "engineer", password=PASSWORD, now=T0, by="test")
    anonymous = AppClient(create_app(engine, web=WebConfig(https=True)), role=None)
    assert "secure" in cookies(log_in(anonymous))["hezo_session"].lower()


def test_a_wrong_password_is_401_and_audited(anonymous: AppClient, engine: Engine) -> None:
    answer = log_in(anonymous, password="not the password")
    assert answer.status_code == 401
    assert "Wrong user name or password." in answer.text
    assert "hezo_session" not in cookies(answer)
    with engine.connect() as conn:
        [line] = [a for a in audit.list_audit(conn) if a["event"] == "login-failed"]
    assert line["detail"] == "'ann': wrong password"


def test_a_login_form_posted_without_its_token_is_403(anonymous: AppClient) -> None:
    answer = anonymous.request(
        "POST",
        "/login",
        content=f"username=ann&password={PASSWORD}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 403


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_after_login_the_browser_never_leaves_the_site(anonymous: AppClient, target: str) -> None:
    assert log_in(anonymous, next_page=target).headers["Location"] == "/"


def test_a_change_from_a_session_needs_the_csrf_header(anonymous: AppClient) -> None:
    cookie = f"hezo_session={session_of(log_in(anonymous))}"
    page = anonymous.get("/", headers={"Cookie": cookie}).text
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    body = {"name": "w", "site": "hq", "days": ["mon"], "start": "22:00", "end": "23:00"}
    refused = anonymous.request("POST", "/api/maintenance", json=body, headers={"Cookie": cookie})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    wrong = anonymous.request(
        "POST", "/api/maintenance", json=body, headers={"Cookie": cookie, "X-CSRF-Token": "guess"}
    )
    assert wrong.status_code == 403
    done = anonymous.request(
        "POST", "/api/maintenance", json=body, headers={"Cookie": cookie, "X-CSRF-Token": csrf}
    )
    assert done.status_code == 201, done.text


def test_logging_out_ends_the_session(anonymous: AppClient) -> None:
    cookie = f"hezo_session={session_of(log_in(anonymous))}"
    page = anonymous.get("/", headers={"Cookie": cookie}).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    refused = anonymous.request("POST", "/logout", content="csrf_token=guess", headers=form)
    assert refused.status_code == 403
    assert anonymous.get("/api/me", headers={"Cookie": cookie}).status_code == 200
    out = anonymous.request("POST", "/logout", content=f"csrf_token={csrf}", headers=form)
    assert (out.status_code, out.headers["Location"]) == (303, "/login")
    assert anonymous.get("/api/me", headers={"Cookie": cookie}).status_code == 401


def test_a_new_password_or_disabling_ends_sessions_and_tokens(anonymous: AppClient, engine: Engine) -> None:
    cookie = f"hezo_session={session_of(log_in(anonymous))}"
    with engine.begin() as conn:
        users.set_password(conn, "ann", "another password", now=T0, by="test")
    assert anonymous.get("/api/me", headers={"Cookie": cookie}).status_code == 401
    token = AppClient(anonymous._app, name="ann").token
    assert anonymous.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with engine.begin() as conn:
        users.set_disabled(conn, "ann", True, now=T0, by="test")
    assert anonymous.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_forged_session_cookie_is_401(anonymous: AppClient) -> None:
    secret = session_of(log_in(anonymous)).partition(".")[0]
    forged = f"hezo_session={secret}.{'0' * 64}"
    assert anonymous.get("/api/me", headers={"Cookie": forged}).status_code == 401


def test_ten_failed_logins_from_one_address_make_it_wait(anonymous: AppClient) -> None:
    for _ in range(10):
        assert log_in(anonymous, password="wrong password").status_code == 401
    assert log_in(anonymous).status_code == 429
