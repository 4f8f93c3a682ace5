"""The tables of the people who use the web page and the API (``collector/people/``; migration 0009_people):
users with roles, API tokens, web sessions, and the keys sessions are signed with. They belong to the same
``metadata`` as the rest of the schema (``collector/store/schema.py``)."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, LargeBinary, String, Table, Text

from collector.store.schema import UTCDateTime, metadata

#: Who may use the web page and the API: a role (viewer, engineer, admin) and, for a customer's own users,
#: the customer (a contract's ``customer``) whose sites, devices and tickets alone they see.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("customer", String(255)),
    #: argon2id, as argon2-cffi encodes it (parameters and salt included); none: the user has tokens only.
    Column("password_hash", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("password_changed_at", UTCDateTime),
    Column("last_login_at", UTCDateTime),
    Column("disabled_at", UTCDateTime),
)

#: API tokens: ``hezo_<id>_<secret>``; only the secret's sha256 is kept (it is random, 256 bits).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("label", String(64), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
)

#: Web page logins: the session cookie's secret is kept as its sha256, with the session's CSRF token.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

#: Keys the collector signs with (the session cookies' HMAC key), made at first use and kept here so that
#: a restart or a second web server accepts the same cookies.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
