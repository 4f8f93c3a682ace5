"""One client per Logitech Sync account: fetches the organisation's place list, all pages, within the budget.

Every ``sync`` check of an agent shares this client, so a round of polls costs one fetch of the place list
(``pages`` requests), never one request per device. The fetch is blocking and runs in a worker thread;
failures come back as a ``Snapshot`` with an ``error``, never as an exception.

The HTTP session is a seam: by default a ``requests.Session``, made (and ``requests`` imported) on the first
request; tests give an object with the same ``get`` and ``close``.
"""

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.drivers.sync.account import SyncAccountConfig
from agent.drivers.sync.budget import BudgetExhaustedError, RequestBudget
from agent.errors import AgentError

log = logging.getLogger(__name__)

#: Only what the checks read: the place's name, its devices' details (name, version, serial, peripherals)
#: and their status.
PROJECTION = "place.info,place.device,place.device.info,place.device.status"
#: A guard against a server that never stops handing out continuations.
MAX_PAGES = 1000
MAX_BACKOFF_S = 60.0


class HttpResponse(Protocol):
    """What the client reads of an answer (as ``requests.Response`` has it)."""

    status_code: int
    reason: str

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


class HttpSession(Protocol):
    """What the client needs of an HTTP session (as ``requests.Session`` has it)."""

    def get(
        self,
        url: str,
        *,
        params: dict[str, str | int],
        timeout: float,
        verify: bool | str,
        cert: tuple[str, str] | None,
    ) -> HttpResponse: ...

    def close(self) -> None: ...


class FetchError(AgentError):
    """One fetch of the place list failed; the message is the reason shown in the device's state."""


@dataclass(frozen=True)
class SyncDevice:
    """One device as Sync reports it (only the fields the checks use)."""

    id: str
    type: str
    name: str
    version: str | None
    serial: str | None
    status: str | None
    health: str | None
    last_seen: int | None
    place: str | None
    peripherals: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (expected, actual)


@dataclass(frozen=True)
class Snapshot:
    """The place list at one moment: every device of the organisation, or why it could not be had."""

    started: float
    devices: tuple[SyncDevice, ...] = ()
    pages: int = 0
    error: str | None = None

    def find(self, *, serial: str | None = None, device_id: str | None = None) -> SyncDevice | None:
        for device in self.devices:
            if device_id is not None and device.id == device_id:
                return device
            if serial is not None and device.serial is not None and device.serial.upper() == serial.upper():
                return device
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_devices(doc: Any) -> Iterator[SyncDevice]:
    """The devices of one page (``{"places": [...]}``); entries without an id are skipped."""
    if not isinstance(doc, dict) or not isinstance(doc.get("places"), list):
        raise FetchError("the answer is not a place list (no 'places' array)")
    for place in doc["places"]:
        if not isinstance(place, dict):
            continue
        devices = place.get("devices")
        for entry in devices if isinstance(devices, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue
            peripherals: dict[str, tuple[int, int]] = {}
            raw = entry.get("peripherals")
            for name, part in raw.items() if isinstance(raw, dict) else []:
                count = part.get("count") if isinstance(part, dict) else None
                if isinstance(count, dict):
                    expected, actual = _int(count.get("expected")), _int(count.get("actual"))
                    if expected is not None and actual is not None:
                        peripherals[str(name)] = (expected, actual)
            yield SyncDevice(
                id=entry["id"],
                type=_str(entry.get("type")) or "?",
                name=_str(entry.get("name")) or "?",
                version=_str(entry.get("version")),
                serial=_str(entry.get("serial")),
                status=_str(entry.get("status")),
                health=_str(entry.get("healthStatus")),
                last_seen=_int(entry.get("lastSeen")),
                place=_str(place.get("name")),
                peripherals=peripherals,
            )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions a requests/urllib3 error wraps, however deep (causes, contexts, arguments)."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend([item.__cause__, item.__context__, *item.args, getattr(item, "reason", None)])


def _ssl_reason(exc: BaseException) -> str | None:
    """The OpenSSL reason buried in a requests/urllib3 exception chain, if any."""
    for item in _chain(exc):
        if isinstance(item, ssl.SSLError):
            return str(item.reason or item)
    return None


def _os_reason(exc: BaseException) -> str:
    """``connection refused``, ``no route to host``...: the system's words for a failed connection."""
    for item in _chain(exc):
        if isinstance(item, OSError) and item.strerror:
            return item.strerror.lower()
    return _short(exc)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare for this API; fall back to the exponential backoff
    return max(0.0, seconds)


class SyncClient:
    """Fetches the place list of one Sync organisation, shared by every ``sync`` check of the agent.

    ``poll_interval`` is how often the devices are polled; the place list is fetched at most that often,
    less often when the budget requires it (logged once per change). ``sleep`` waits in the worker thread
    and returns early after ``close()``. ``session`` sends the requests (default: a ``requests.Session``
    made on the first one); ``close()`` closes it.
    """

    def __init__(
        self,
        account: SyncAccountConfig,
        poll_interval: float,
        *,
        budget: RequestBudget | None = None,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        session: HttpSession | None = None,
    ) -> None:
        self.account = account
        self.poll_interval = poll_interval
        self.budget = budget or RequestBudget(
            rate=account.rate, burst=account.burst, daily=account.daily_budget
        )
        self._closed = threading.Event()
        self._sleep = sleep or (lambda seconds: self._closed.wait(seconds) and None)
        self._monotonic = monotonic
        self._session = session
        self._last: Snapshot | None = None
        self._page_count = 1
        self._announced_interval: float | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self.requests_sent = 0

    @property
    def url(self) -> str:
        return f"{self.account.base_url.rstrip('/')}/org/{self.account.org_id}/place"

    def fetch_interval(self) -> float:
        """How often the place list is fetched: the poll interval, raised to fit the budget."""
        return self.budget.fetch_interval(self.poll_interval, self._page_count)

    async def snapshot(self) -> Snapshot:
        """The current place list: a fresh fetch if the last one is older than the fetch interval."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:  # an asyncio lock serves one event loop
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            last = self._last
            # A little slack: a device polled every interval must not miss the fetch by a hair's breadth.
            slack = min(1.0, 0.2 * self.poll_interval)
            if last is not None and self._monotonic() - last.started < self.fetch_interval() - slack:
                return last
            try:
                snapshot = await asyncio.to_thread(self.fetch)
            except Exception as exc:  # a bug here must be one failed check, not a stopped poll
                log.exception("sync fetch failed unexpectedly")
                snapshot = Snapshot(self._monotonic(), error=f"client error: {exc!r}")
            self._last = snapshot
            return snapshot

    def close(self) -> None:
        """Stop waiting (a fetch in progress ends at its next wait) and release the connections."""
        self._closed.set()
        if self._session is not None:
            self._session.close()

    def fetch(self) -> Snapshot:
        """Fetch every page of the place list (blocking); a failure is a snapshot with an ``error``."""
        started = self._monotonic()
        devices: list[SyncDevice] = []
        params: dict[str, str | int] = {"projection": PROJECTION, "limit": self.account.page_size}
        pages = 0
        try:
            for doc in self._pages(params):
                pages += 1
                devices.extend(parse_devices(doc))
        except FetchError as exc:
            log.debug("sync fetch failed: %s", exc)
            return Snapshot(started, error=str(exc), pages=pages)
        self._note_pages(pages)
        return Snapshot(started, tuple(devices), pages)

    def _pages(self, params: dict[str, str | int]) -> Iterator[dict[str, Any]]:
        """Each page in turn, following ``continuation`` until the last page."""
        for _ in range(MAX_PAGES):
            doc = self._get(params)
            yield doc
            continuation = doc.get("continuation")
            if not isinstance(continuation, str) or not continuation:
                return
            params["continuation"] = continuation
        raise FetchError(f"still more pages after {MAX_PAGES}: giving up on this fetch")

    def _note_pages(self, pages: int) -> None:
        self._page_count = pages
        interval = self.fetch_interval()
        if interval > self.poll_interval and interval != self._announced_interval:
            log.warning(
                "Sync org %s: fetching the place list every %g s instead of every %g s: %d page(s) per fetch "
                "must stay within %d requests/day and %g request(s)/s",
                self.account.org_id,
                interval,
                self.poll_interval,
                pages,
                self.budget.daily,
                self.budget.rate,
            )
        self._announced_interval = interval

    @staticmethod
    def _new_session() -> HttpSession:
        import requests

        session = requests.Session()
        session.headers["User-Agent"] = "hezo-agent"
        session.headers["Accept"] = "application/json"
        return session

    def _get(self, params: dict[str, str | int]) -> dict[str, Any]:
        """One page, with retries and exponential backoff on 429 and 5xx; FetchError says why it failed."""
        attempts = self.account.max_retries + 1
        for attempt in range(attempts):
            try:
                grant = self.budget.reserve()
            except BudgetExhaustedError as exc:
                raise FetchError(str(exc)) from None
            if grant.wait > 0:
                self._sleep(grant.wait)
            if self._closed.is_set():
                raise FetchError("the agent is stopping")
            response = self._send(params)
            status = response.status_code
            if status == 429 or status >= 500:
                what = "throttled (HTTP 429)" if status == 429 else f"HTTP {status}"
                if attempt + 1 >= attempts:
                    raise FetchError(f"{what} after {attempts} attempt(s)")
                wait = _retry_after(response.headers.get("Retry-After"))
                if wait is None:
                    wait = self.account.backoff * 2**attempt
                wait = min(wait, MAX_BACKOFF_S)
                log.info("Sync API %s; retrying in %g s", what, wait)
                self._sleep(wait)
                continue
            return _page(response)
        raise FetchError("no attempt made")  # unreachable: the loop returns or raises

    def _send(self, params: dict[str, str | int]) -> HttpResponse:
        """One request; a transport failure is a FetchError with the reason."""
        import requests

        if self._session is None:
            self._session = self._new_session()
        self.requests_sent += 1
        try:
            # verify and cert per request: a session's own are overridden by REQUESTS_CA_BUNDLE and the like.
            return self._session.get(
                self.url,
                params=params,
                timeout=self.account.timeout,
                verify=str(self.account.ca_file) if self.account.ca_file is not None else True,
                cert=self._cert(),
            )
        except requests.exceptions.SSLError as exc:
            raise FetchError(self._tls_text(exc)) from None
        except requests.exceptions.Timeout:
            raise FetchError(f"no answer within {self.account.timeout:g} s") from None
        except requests.exceptions.ConnectionError as exc:
            if _ssl_reason(exc) is not None:
                raise FetchError(self._tls_text(exc)) from None
            raise FetchError(f"cannot connect to {self.account.base_url}: {_os_reason(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise FetchError(f"request failed: {_short(exc)}") from None

    def _cert(self) -> tuple[str, str] | None:
        if self.account.cert_file is None or self.account.key_file is None:
            return None
        return (str(self.account.cert_file), str(self.account.key_file))

    def _tls_text(self, exc: BaseException) -> str:
        reason = _ssl_reason(exc) or _short(exc)
        lowered = reason.lower().replace("_", " ")
        if "certificate verify failed" in lowered:
            return f"TLS: the API's certificate is not trusted ({reason}): check ca_file"
        if self._cert() is None:
            return f"TLS: the API refused the connection ({reason}): no client certificate is configured"
        if any(
            words in lowered
            for words in ("certificate required", "unknown ca", "bad certificate", "handshake failure")
        ):
            return (
                f"TLS: the API refused the client certificate ({reason}): it is missing, expired or not "
                "one generated in Sync Portal for this organisation"
            )
        if "eof" in lowered:
            # With TLS 1.3 a refused client certificate often shows as the server hanging up mid-handshake.
            return (
                f"TLS: the API refused the connection in the handshake ({reason}): is the client "
                "certificate expired or not one generated in Sync Portal for this organisation?"
            )
        return f"TLS failed: {reason}"


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


def _page(response: HttpResponse) -> dict[str, Any]:
    """The JSON object of a final answer (not 429 or 5xx), or a FetchError saying what the API said."""
    status = response.status_code
    if status == 403:
        raise FetchError(
            "HTTP 403 Forbidden: the client certificate is expired or deactivated, or the "
            "organisation has no Select, Essential or Sync Plus licence"
        )
    if status != 200:
        raise FetchError(f"HTTP {status}: {_body_message(response)}")
    try:
        doc = response.json()
    except ValueError:
        raise FetchError("the answer is not JSON") from None
    if not isinstance(doc, dict):
        raise FetchError("the answer is not a place list (not a JSON object)")
    return doc


def _body_message(response: HttpResponse) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.reason or "unexpected answer"
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return response.reason or "unexpected answer"
