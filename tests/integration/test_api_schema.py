"""The API against its own OpenAPI document, with schemathesis: a real app over a temporary store with a
ticket, a device under contract, a maintenance window and an online agent, called as an admin. Every answer
must be documented (status, content type, headers, body schema) and none may be a server error."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import insert

from collector.api.app import create_app
from collector.config import CollectorConfig
from collector.registry import contracts, maintenance
from collector.remote.commander import Commander
from collector.remote.keys import keygen
from collector.store.schema import agents, devices
from collector.tickets import open_by_hand
from tests.support.collector import T0, migrated_engine, user_token
from tests.support.mosquitto import free_port, wait_port

pytestmark = pytest.mark.integration

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "ignored_auth",
    )
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The app on a free loopback port, and an admin's token."""
    engine = migrated_engine(tmp_path)
    keygen(tmp_path / "c.key")
    config = CollectorConfig.model_validate(
        {"diagnostics": {"key_file": str(tmp_path / "c.key"), "bundle_dir": str(tmp_path / "bundles")}}
    )
    commander = Commander(engine, config, publish=lambda _topic, _payload: None)
    app = create_app(engine, diagnostics=commander)
    with engine.begin() as conn:
        conn.execute(insert(agents).values(site="hq", agent="pc", online=True))
        conn.execute(insert(devices).values(site="hq", agent="pc", device="bar", state="up", contract="C-1"))
        contracts.put(conn, contracts.values(number="C-1", start=T0.date(), years=3, customer="Acme"))
        open_by_hand(
            conn,
            site="hq",
            agent="pc",
            device="bar",
            summary="?",
            by="t",
            now=T0,
            context=app.state.wiring.sla,
        )
        maintenance.add(
            conn, maintenance.values(name="night", site="hq", days=["mon"], start="22:00", end="23:00")
        )
    token = user_token(engine, "schema-admin")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port("127.0.0.1", port, timeout=30)
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        engine.dispose()


def test_the_api_answers_as_its_openapi_document_says(served: tuple[str, str], tmp_path: Path) -> None:
    base, token = served
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "50",
            "--workers",
            "2",
            "--seed",
            "1",
            "--generation-deterministic",
            "--no-shrink",
            "--continue-on-failure",
            "--max-failures",
            "20",
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
    )
    assert done.returncode == 0, done.stdout[-12000:] + done.stderr[-3000:]
