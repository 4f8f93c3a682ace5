"""The agent's ``sync:`` section: one Logitech Sync organisation, its client certificate, and the limits.

Every ``sync`` check of the agent uses this one account, through the one client the checks share.
"""

import ssl
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, FilePath, field_validator, model_validator

DEFAULT_BASE_URL = "https://api.sync.logitech.com/v1"


class SyncAccountConfig(BaseModel):
    """The agent's ``sync:`` section: one Logitech Sync organisation and the client certificate for it."""

    model_config = ConfigDict(extra="forbid")

    org_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")
    base_url: str = Field(DEFAULT_BASE_URL, description="the API root, up to and including /v1")
    cert_file: FilePath | None = Field(None, description="client certificate generated in Sync Portal (PEM)")
    key_file: FilePath | None = Field(None, description="its private key (PEM)")
    ca_file: FilePath | None = Field(None, description="CA bundle for the API; default: the system's")
    page_size: int = Field(1000, ge=1, le=1000, description="places per page (the API's limit)")
    timeout: float = Field(10.0, gt=0, le=120, description="seconds to wait for one page")
    rate: float = Field(1.0, gt=0, le=1.0, description="requests per second, sustained")
    burst: int = Field(1, ge=1, le=10, description="requests at once before the rate applies")
    daily_budget: int = Field(14_400, ge=1, le=14_400, description="requests per UTC day")
    max_retries: int = Field(4, ge=0, le=10, description="retries of a page answered 429 or 5xx")
    backoff: float = Field(1.0, gt=0, le=60, description="first retry delay; doubles each retry")

    @field_validator("base_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("expected an https:// URL, e.g. https://api.sync.logitech.com/v1")
        try:
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return value

    @model_validator(mode="after")
    def _loadable(self) -> "SyncAccountConfig":
        if self.cert_file is None or self.key_file is None:
            raise ValueError(
                "cert_file and key_file are required: the Sync Cloud API authenticates by client certificate"
            )
        context = ssl.create_default_context()
        try:
            if self.ca_file is not None:
                context.load_verify_locations(cafile=str(self.ca_file))
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (ssl.SSLError, ValueError) as exc:
            raise ValueError(f"cannot load the TLS files: {exc}") from None
        return self
