"""A sync check gets the one client of the agent's Sync account, and cannot be built without the account."""

from pathlib import Path

import pytest

from agent.catalog import model
from agent.drivers import ProbeContext, SharedResources, build_probe
from agent.drivers.sync import SyncAccountConfig, SyncOptions, SyncProbe
from agent.errors import AgentConfigError
from simulator.pki import CertificateAuthority


@pytest.fixture
def account(tmp_path: Path) -> SyncAccountConfig:
    ca = CertificateAuthority(tmp_path / "ca.pem", "test CA")
    ca.issue(tmp_path / "c.pem", tmp_path / "k.pem", common_name="client", server=False)
    return SyncAccountConfig(org_id="org1", cert_file=tmp_path / "c.pem", key_file=tmp_path / "k.pem")


def sync_probe(context: ProbeContext) -> SyncProbe:
    probe = build_probe(SyncOptions(driver="sync"), model("rally"), context)
    assert isinstance(probe, SyncProbe)
    return probe


def test_every_sync_check_of_the_agent_shares_one_client(account: SyncAccountConfig) -> None:
    shared = SharedResources()
    sections = {"sync": account}
    rally = sync_probe(ProbeContext("rally", "S1", shared, sections, poll_interval=60.0))
    bar = sync_probe(ProbeContext("bar", "S2", shared, sections, poll_interval=60.0))
    assert rally.client is bar.client
    assert rally.client.account is account
    assert rally.client.poll_interval == 60.0
    shared.close()


def test_a_sync_check_without_the_agents_sync_section_is_a_config_error() -> None:
    with pytest.raises(AgentConfigError, match="a sync check needs the agent's sync: section"):
        sync_probe(ProbeContext("rally", "S1"))
