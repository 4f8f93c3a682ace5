"""A fake Logitech Sync Cloud API that follows its OpenAPI document (``simulator/data/``), over mutual TLS.

``GET /v1/org/{orgId}/place`` with ``projection``, ``limit``, ``continuation``, ``rooms``, ``desks`` and
``unlicensed``, answering as the document says: 200 with ``places`` (and ``continuation`` while more pages
remain), 400 ``BadRequest`` for bad parameters, 403 ``Forbidden`` for another organisation and 429
``Too Many Requests`` past the rate limit (1 request/s sustained, 10 at once by default, configurable so
tests can provoke it). A client without a certificate from the simulator's own CA is refused in the TLS
handshake, as the real API refuses certificates not generated in Sync Portal.

Faults: each device can go ``offline`` (also when powered off), lose a mic pod (``mic-pod-lost``), report
``health-warning`` or a new firmware (``firmware-changed``); the API itself can be ``unstable`` (every other
request answers 503, the others after a delay) or powered off (connection refused).
"""

import base64
import binascii
import http.server
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from simulator.errors import SimulatorError
from simulator.net import PowerSwitch, TlsLoopbackServer, loopback_family, url_host
from simulator.pki import CertificateAuthority

log = logging.getLogger(__name__)

OPENAPI_RESOURCE = "logitech-sync-cloud-api.openapi.yaml"
ORG_ID = "hezoSimOrg7Qw2Lk9ZxT4Vb8Nm3Rp6Sd1F"
PROJECTIONS = frozenset(
    {
        "place.info",
        "place.occupancy",
        "place.contract",
        "place.device",
        "place.device.info",
        "place.device.status",
        "place.device.sensors",
        "place.device.warranty",
    }
)
DEFAULT_PROJECTION = "place.info,place.occupancy,place.device,place.device.info,place.device.status"
SYNC_FAULTS = ("offline", "mic-pod-lost", "health-warning", "firmware-changed")
UNSTABLE_DEFAULT_SECONDS = 2.0
CLIENT_TIMEOUT = 30.0
CREATED_AT = 1717200000000


def openapi_text() -> str:
    """The OpenAPI document this fake follows (package data, with its attribution header)."""
    return resources.files("simulator").joinpath("data", OPENAPI_RESOURCE).read_text(encoding="utf-8")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class FakeDevice:
    """One device in the fake organisation. ``sim_id`` links it to a device of the simulated site."""

    id: str
    type: str
    name: str
    version: str
    serial: str | None = None
    status: str = "Online"
    health: str = "NoIssues"
    peripherals: dict[str, int] = field(default_factory=dict)  # name -> expected count
    network: dict[str, Any] | None = None
    warranty: dict[str, Any] | None = None
    new_version: str | None = None
    sim_id: str | None = None
    powered: bool = True
    faults: frozenset[str] = frozenset()  # replaced, never changed in place: API threads read it meanwhile
    last_seen: int = CREATED_AT

    def set_powered(self, on: bool) -> None:
        if self.powered and not on:
            self.last_seen = _now_ms()  # Sync's lastSeen is the time of the last disconnection
        self.powered = on

    def fault(self, name: str) -> None:
        if name == "offline" and "offline" not in self.faults:
            self.last_seen = _now_ms()
        self.faults = self.faults | {name}

    def restore(self) -> None:
        self.faults = frozenset()

    @property
    def offline(self) -> bool:
        return not self.powered or "offline" in self.faults

    def to_json(self, projection: frozenset[str]) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id}
        if "place.device.info" in projection:
            doc["type"] = self.type
            doc["name"] = self.name
            doc["version"] = self.new_version if "firmware-changed" in self.faults else self.version
            if self.serial is not None:
                doc["serial"] = self.serial
            if self.peripherals:
                doc["peripherals"] = {
                    name: {"count": {"expected": expected, "actual": self._actual(name, expected)}}
                    for name, expected in self.peripherals.items()
                }
            if self.network is not None:
                doc["network"] = self.network
            doc["createdAt"] = CREATED_AT
        if "place.device.status" in projection:
            doc["status"] = "Offline" if self.offline else self.status
            doc["healthStatus"] = self._health()
            doc["lastSeen"] = self.last_seen
        if "place.device.warranty" in projection and self.warranty is not None:
            doc["warranty"] = self.warranty
        return doc

    def _actual(self, name: str, expected: int) -> int:
        if name == "micPod" and "mic-pod-lost" in self.faults:
            return max(0, expected - 1)
        return expected

    def _health(self) -> str:
        if self.offline:
            return "Error"
        if self.faults & {"health-warning", "mic-pod-lost"}:
            return "Warning"
        return self.health


@dataclass
class FakePlace:
    id: str
    type: str
    name: str
    devices: list[FakeDevice] = field(default_factory=list)
    location: str = "/"
    group: str = "/"
    seat_count: int = 0
    occupancy: int = 0
    contract: dict[str, Any] | None = None
    license: str | None = None
    licensed: bool = True

    def to_json(self, projection: frozenset[str]) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id}
        if "place.info" in projection or not self.licensed:
            doc["type"] = self.type
            doc["name"] = self.name
            if self.type == "Room":
                doc["group"] = self.group
            doc["location"] = self.location
            doc["createdAt"] = CREATED_AT
            if self.type == "Room" and self.licensed:
                doc["seatCount"] = self.seat_count
        if not self.licensed:
            return doc  # unlicensed places carry basic information only
        if "place.occupancy" in projection and self.type == "Room":
            doc["occupancy"] = self.occupancy
        if "place.contract" in projection:
            if self.contract is not None:
                doc["contract"] = self.contract
            elif self.license is not None:
                doc["license"] = self.license
        if "place.device" in projection:
            doc["devices"] = [device.to_json(projection) for device in self.devices]
        return doc


def _id(n: int) -> str:
    return f"{ORG_ID}-{n:032d}"


def demo_org(room: str, rally_serial: str, rally_bar_serial: str) -> list[FakePlace]:
    """The fake organisation: the simulated room (a Rally system and the Rally Bar) and five other places."""
    computer_net = {"ip": "10.128.210.244", "mac": "54:05:db:ac:34:82"}
    rally = FakeDevice(
        _id(11),
        "Logitech",
        "Rally",
        "1.2.69",
        rally_serial,
        peripherals={"camera": 1, "micPod": 2, "micPodHub": 1, "speaker": 2, "tableHub": 1, "displayHub": 1},
        warranty={"type": "SelectRoom", "expiresAt": 1759852800000},
        new_version="1.3.12",
        sim_id="rally",
    )
    rally_bar = FakeDevice(
        _id(12),
        "Logitech",
        "Rally Bar",
        "1.12.252",
        rally_bar_serial,
        status="InUse",
        peripherals={"micPod": 1},
        new_version="1.13.40",
        sim_id="rally-bar",
    )
    contract = {
        "service": "SelectRoom",
        "name": "Select Room Contract (#987654)",
        "number": 987654,
        "expiresAt": 1748832000000,
    }
    return [
        FakePlace(
            _id(1),
            "Room",
            room,
            [
                FakeDevice(_id(10), "Computer", "ROOM101-PC", "3.3.176", network=computer_net),
                rally,
                rally_bar,
            ],
            location="/Main Campus/Building A/Floor 1/",
            seat_count=10,
            occupancy=3,
            contract=contract,
        ),
        FakePlace(
            _id(2),
            "Room",
            "Boardroom",
            [
                FakeDevice(_id(20), "Logitech", "Rally Bar", "1.12.252", "2685Y5O4TW98", status="InUse"),
                FakeDevice(_id(21), "Logitech", "Tap IP", "1.12.252", "2685Y5O4TP98", status="InUse"),
                FakeDevice(_id(22), "Logitech", "Sight", "1.12.252", "2685Y5O4TQ98", status="InUse"),
            ],
            occupancy=8,
            license="Select",
        ),
        FakePlace(
            _id(3),
            "Room",
            "Small Room 1",
            [
                FakeDevice(
                    _id(30), "Computer", "DESKTOP-PW8QH", "3.3.176", status="Offline", network=computer_net
                ),
                FakeDevice(_id(31), "Logitech", "Tap", "1.0.10", status="Offline", health="Error"),
            ],
            seat_count=4,
            license="Select",
        ),
        FakePlace(
            _id(4),
            "Desk",
            "Desk 13",
            [
                FakeDevice(_id(40), "Logitech", "Logi Dock Flex", "1.12.252", "2312LZ0ABC12"),
                FakeDevice(_id(41), "Generic", "USB Keyboard", "1.0", status="Offline", health="Error"),
            ],
            location="/Main Campus/Building A/Floor 13/",
            license="Select",
        ),
        FakePlace(
            _id(5),
            "Room",
            "Huddle 2",
            [FakeDevice(_id(50), "Logitech", "Rally Bar Mini", "1.12.252", "2203FDA0B1C2")],
            seat_count=4,
            license="Essential",
        ),
        FakePlace(_id(6), "Room", "Training Room", licensed=False),
    ]


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _flag(params: dict[str, list[str]], name: str, default: bool) -> bool:
    values = params.get(name)
    if not values:
        return default
    if values[0] not in ("true", "false"):
        raise _ApiError(400, "BadRequest")
    return values[0] == "true"


def encode_continuation(offset: int) -> str:
    raw = json.dumps({"orgId": ORG_ID, "offset": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continuation(token: str) -> int:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = doc["offset"]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise _ApiError(400, "BadRequest") from None
    if not isinstance(offset, int) or offset < 0:
        raise _ApiError(400, "BadRequest")
    return offset


class _ApiHandler(http.server.BaseHTTPRequestHandler):
    server: "_ApiServer"
    server_version = "sync-api-sim"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = CLIENT_TIMEOUT

    def do_GET(self) -> None:
        api = self.server.api
        try:
            headers: dict[str, str] = {}
            status, body = 200, self._answer(api)
        except _ApiError as exc:
            status, body = exc.status, {"statusCode": exc.status, "message": exc.message}
            if exc.status == 429 and api.retry_after is not None:
                headers["Retry-After"] = str(api.retry_after)
        api.record(status)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, api: "SyncCloudApi") -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        parts = [p for p in path.split("/") if p]
        if len(parts) != 4 or parts[0] != "v1" or parts[1] != "org" or parts[3] != "place":
            raise _ApiError(404, "NotFound")
        if not api.admit():
            raise _ApiError(429, "Too Many Requests")
        api.unstable_turn()
        if parts[2] != api.org_id:
            raise _ApiError(403, "Forbidden")
        params = parse_qs(query, keep_blank_values=True)
        raw = params.get("projection", [DEFAULT_PROJECTION])[0]
        projection = frozenset(p.strip() for p in raw.split(",") if p.strip())
        if not projection <= PROJECTIONS:
            raise _ApiError(400, "BadRequest")
        try:
            limit = int(params.get("limit", ["1000"])[0])
        except ValueError:
            raise _ApiError(400, "BadRequest") from None
        if not 1 <= limit <= 1000:
            raise _ApiError(400, "BadRequest")
        token = params.get("continuation", [""])[0]
        offset = decode_continuation(token) if token else 0
        rooms, desks = _flag(params, "rooms", True), _flag(params, "desks", True)
        unlicensed = _flag(params, "unlicensed", False)
        return api.page(projection, offset, limit, rooms=rooms, desks=desks, unlicensed=unlicensed)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server signature
        log.debug("sync api: %s", format % args)


class _ApiServer(TlsLoopbackServer):
    label = "sync api"
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: "SyncCloudApi") -> None:
        self.api = api
        super().__init__(address, _ApiHandler, lambda: api.tls_context)
        self.client_timeout = CLIENT_TIMEOUT

    def handshake_failed(self, client_address: Any, error: Exception) -> None:
        # No client certificate, or one the CA did not issue: refused in the handshake.
        log.debug("sync api: TLS refused for %s: %s", client_address, error)
        self.api.record(0)


class SyncCloudApi:
    """The fake API of one organisation, on a loopback ``host``; port 0 picks a free port at first power on.

    ``rate`` and ``burst`` are the server's throttle (a token bucket); past it the answer is 429, with a
    ``Retry-After`` header when ``retry_after`` is set. ``served`` lists ``(monotonic time, status)`` of each
    request (status 0: refused in the TLS handshake).
    """

    def __init__(
        self,
        state_dir: Path,
        places: list[FakePlace],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        org_id: str = ORG_ID,
        rate: float = 1.0,
        burst: int = 10,
        retry_after: int | None = None,
    ) -> None:
        loopback_family(host)
        self.state_dir = state_dir
        self.places = places
        self.host = host
        self.port = port
        self.org_id = org_id
        self.rate = rate
        self.burst = burst
        self.retry_after = retry_after
        self.ca_file = state_dir / "sync-ca.pem"
        self.server_cert_file = state_dir / "sync-server-cert.pem"
        self.server_key_file = state_dir / "sync-server-key.pem"
        self.client_cert_file = state_dir / "sync-client-cert.pem"
        self.client_key_file = state_dir / "sync-client-key.pem"
        self.unstable_seconds: float | None = None
        self.served: list[tuple[float, int]] = []
        self._unstable_count = 0
        self._tokens = float(burst)
        self._refilled = time.monotonic()
        self._lock = threading.Lock()
        self._power = PowerSwitch("sync-api")
        self._context: ssl.SSLContext | None = None

    # --- what the simulated site and the tests see ---------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"https://{url_host(self.host)}:{self.port}/v1"

    @property
    def powered(self) -> bool:
        return self._power.on

    @property
    def tls_context(self) -> ssl.SSLContext:
        if self._context is None:
            raise SimulatorError("the Sync API has no certificate yet: power it on first")
        return self._context

    def devices(self) -> list[FakeDevice]:
        return [device for place in self.places for device in place.devices]

    def device(self, *, sim_id: str | None = None, serial: str | None = None) -> FakeDevice | None:
        for device in self.devices():
            if (sim_id is not None and device.sim_id == sim_id) or (
                serial is not None and device.serial == serial
            ):
                return device
        return None

    def statuses(self) -> list[int]:
        with self._lock:
            return [status for _, status in self.served]

    def account(self) -> dict[str, Any]:
        """The agent's ``sync:`` section for this fake."""
        return {
            "org_id": self.org_id,
            "base_url": self.base_url,
            "ca_file": str(self.ca_file.resolve()),
            "cert_file": str(self.client_cert_file.resolve()),
            "key_file": str(self.client_key_file.resolve()),
        }

    # --- serving -------------------------------------------------------------------------------------

    def record(self, status: int) -> None:
        with self._lock:
            self.served.append((time.monotonic(), status))

    def admit(self) -> bool:
        """Take a token from the throttle's bucket; False means 429."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True

    def unstable_turn(self) -> None:
        """While ``unstable``: every other request answers 503, the others after ``unstable_seconds``."""
        seconds = self.unstable_seconds
        if seconds is None:
            return
        with self._lock:
            self._unstable_count += 1
            fail = self._unstable_count % 2 == 1
        if fail:
            raise _ApiError(503, "Service Unavailable")
        self._power.wait_off(seconds)

    def page(
        self,
        projection: frozenset[str],
        offset: int,
        limit: int,
        *,
        rooms: bool = True,
        desks: bool = True,
        unlicensed: bool = False,
    ) -> dict[str, Any]:
        with self._lock:
            places = [
                place
                for place in self.places
                if (place.licensed or unlicensed)
                and ((place.type == "Room" and rooms) or (place.type == "Desk" and desks))
            ]
            body: dict[str, Any] = {
                "places": [place.to_json(projection) for place in places[offset : offset + limit]]
            }
        if offset + limit < len(places):
            body["continuation"] = encode_continuation(offset + limit)
        return body

    # --- power ---------------------------------------------------------------------------------------

    def _ensure_certificates(self) -> None:
        if self._context is not None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority(self.ca_file, "hezo simulator Sync CA")
        ips = ["127.0.0.1"] if self.host in ("127.0.0.1", "localhost") else ["127.0.0.1", self.host]
        ca.issue(
            self.server_cert_file,
            self.server_key_file,
            common_name="api.sync.logitech.com (simulated)",
            server=True,
            ip_addresses=ips,
            dns_names=["localhost"],
        )
        ca.issue(
            self.client_cert_file,
            self.client_key_file,
            common_name=f"sync-client {self.org_id}",
            server=False,
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert_file, self.server_key_file)
        context.load_verify_locations(cafile=str(self.ca_file))
        context.verify_mode = ssl.CERT_REQUIRED
        self._context = context

    def power_on(self) -> None:
        def listen() -> _ApiServer:
            self._ensure_certificates()
            try:
                server = _ApiServer((self.host, self.port), self)
            except OSError as exc:
                raise SimulatorError(
                    f"cannot listen on {self.host} port {self.port} for the Sync API: {exc.strerror}"
                ) from exc
            self.port = int(server.server_address[1])
            return server

        if self._power.power_on(listen):
            log.info("sync api listening on %s", self.base_url)

    def power_off(self) -> None:
        if self._power.power_off():
            log.info("sync api powered off")
