"""One JSON-over-HTTPS client for the service-desk sinks: a call answers with the parsed body, or with the
outcome a delivery gets when the desk is away or refuses (``Retry``, ``Failed``), never with an exception.

Redirects are not followed: a desk that redirects an API call is sending it to a login page, and the
credentials must not travel on to wherever that is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.sinks.base import Failed, Retry, http_outcome


@dataclass(frozen=True)
class Answer:
    """A 2xx answer: its status, its JSON body (None when empty) and its headers."""

    status: int
    body: Any
    headers: Mapping[str, str]


class JsonApi:
    """Calls ``base`` + a path with JSON in and out, the same headers and credentials on every call."""

    def __init__(
        self,
        base: str,
        *,
        headers: Mapping[str, str],
        auth: tuple[str, str] | None = None,
        timeout: float,
        ca_file: Path | None = None,
    ) -> None:
        import requests  # the collector's HTTP client; imported when a desk is configured

        self.base = base.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers.update(
            {"Accept": "application/json", "User-Agent": "hezo-collector", **dict(headers)}
        )
        self._session.auth = auth
        self._session.verify = str(ca_file) if ca_file else True

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Answer | Retry | Failed:
        """``method path``; the answer, or how the call failed as a delivery outcome."""
        import requests

        url = self.base + path
        try:
            response = self._session.request(
                method, url, json=json, params=params, timeout=self.timeout, allow_redirects=False
            )
        except requests.exceptions.SSLError as exc:
            return Retry(f"TLS with {self.base} failed: {_short(exc)}")
        except requests.RequestException as exc:
            return Retry(f"cannot reach {self.base}: {_short(exc)}")
        if not 200 <= response.status_code < 300:
            return http_outcome(response.status_code, response.text, response.headers.get("Retry-After"))
        if not response.content:
            return Answer(response.status_code, None, response.headers)
        try:
            body = response.json()
        except ValueError:
            return Failed(f"{method} {path}: HTTP {response.status_code} with a body that is not JSON")
        return Answer(response.status_code, body, response.headers)

    def close(self) -> None:
        self._session.close()


def read_later(outcome: Retry | Failed) -> Retry:
    """A desk that cannot be read now, for whatever reason (away, or refusing), is read at the next round."""
    return outcome if isinstance(outcome, Retry) else Retry(outcome.reason)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "..."
