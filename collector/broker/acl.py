"""Who may do what at the broker, made from the wire contract (``protocol.Topics``), never written by hand.

Every login is bound to what it is:

- agent ``SITE/AGENT`` (client id ``hezo-agent/SITE/AGENT`` only) publishes on the topics it owns
  (``Topics.agent_publishes``: status, device states, telemetry, events, replies) and subscribes to, and
  receives, its own ``cmd`` topic, nothing else;
- the collector subscribes to, and receives, what agents publish (``Topics.collector_filters``) and publishes
  commands on any agent's ``cmd`` topic; it never reads one;
- the collector's login also holds the plugin's control topic (role ``hezo-broker-admin``), so that
  ``hezo-collector agents enrol|rotate|revoke`` and ``broker sync`` can change the rules at runtime;
- everything else is refused: the plugin's default access is closed for publishing, subscribing and receiving.

Ids never contain ``/``, so ``SITE/AGENT`` names exactly one agent (``a-b``/``c`` is not ``a``/``b-c``).
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from protocol import Topics, validate_id

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
COLLECTOR_ROLE = "hezo-collector"
ADMIN_ROLE = "hezo-broker-admin"
AGENT_ROLE_PREFIX = "hezo-agent/"
#: Closed by default: a login may do only what its roles allow (unsubscribing from nothing harms no one).
DEFAULT_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
#: PBKDF2-SHA512 rounds of the collector's password in the plugin's first file (the plugin makes agents' own
#: with its default; theirs are 256 random bits, which no number of rounds makes stronger).
PASSWORD_ROUNDS = 100_000

Acl = dict[str, Any]


def agent_username(site: str, agent: str) -> str:
    return f"{validate_id('site', site)}/{validate_id('agent', agent)}"


def agent_client_id(site: str, agent: str) -> str:
    """The one client id the agent's login may use, so it cannot take over another client's session."""
    return f"hezo-agent/{agent_username(site, agent)}"


def agent_role(site: str, agent: str) -> str:
    return f"{AGENT_ROLE_PREFIX}{agent_username(site, agent)}"


def agent_of_name(name: str, prefix: str = "") -> tuple[str, str] | None:
    """``(site, agent)`` of a user name (with ``prefix``, a role name) hezo made for an agent; else None."""
    if not name.startswith(prefix):
        return None
    site, slash, agent = name[len(prefix) :].partition("/")
    if not slash:
        return None
    try:
        return validate_id("site", site), validate_id("agent", agent)
    except ValueError:
        return None


def _acl(kind: str, topic: str) -> Acl:
    return {"acltype": kind, "topic": topic, "allow": True}


def agent_acls(topics: Topics, site: str, agent: str) -> list[Acl]:
    cmd = topics.cmd(site, agent)
    own = [_acl("publishClientSend", topic) for topic in topics.agent_publishes(site, agent)]
    return [*own, _acl("subscribeLiteral", cmd), _acl("publishClientReceive", cmd)]


def collector_acls(topics: Topics) -> list[Acl]:
    filters = topics.collector_filters()
    return [
        *(_acl("subscribeLiteral", topic) for topic in filters),
        *(_acl("publishClientReceive", topic) for topic in filters),
        _acl("publishClientSend", f"{topics.prefix}/+/+/cmd"),
    ]


def admin_acls() -> list[Acl]:
    return [
        _acl("publishClientSend", CONTROL_TOPIC),
        _acl("subscribeLiteral", RESPONSE_TOPIC),
        _acl("publishClientReceive", RESPONSE_TOPIC),
    ]


def acl_key(acl: Acl) -> tuple[str, str, bool]:
    """What makes two rules the same (the plugin adds a priority of 0 to each)."""
    return str(acl["acltype"]), str(acl["topic"]), bool(acl.get("allow", False))


def hash_password(password: str, salt: bytes, rounds: int) -> str:
    """The plugin's password hash: PBKDF2-HMAC-SHA512 of 64 bytes, in base64."""
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, rounds, 64)
    return base64.b64encode(digest).decode()


def plugin_config(
    topics: Topics, username: str, password: str, rounds: int = PASSWORD_ROUNDS
) -> dict[str, Any]:
    """The dynamic-security plugin's first file: access closed by default, the collector's login, its roles.

    Agents are added later, at runtime, by ``hezo-collector agents enrol``. The file holds only the salted
    hash of the collector's password.
    """
    salt = os.urandom(12)  # the plugin's salt length
    return {
        "defaultACLAccess": dict(DEFAULT_ACCESS),
        "clients": [
            {
                "username": username,
                "textName": "hezo collector",
                "password": hash_password(password, salt, rounds),
                "salt": base64.b64encode(salt).decode(),
                "iterations": rounds,
                "roles": [{"rolename": COLLECTOR_ROLE}, {"rolename": ADMIN_ROLE}],
            }
        ],
        "roles": [
            {"rolename": COLLECTOR_ROLE, "acls": collector_acls(topics)},
            {"rolename": ADMIN_ROLE, "acls": admin_acls()},
        ],
        "groups": [],
    }
