"""An agent configuration for a running simulated site, built from the site's ``site.json``."""

import json
from pathlib import Path
from typing import Any


def read_site(state_dir: Path) -> dict[str, Any]:
    """The ``site.json`` a running simulator wrote into its state directory."""
    doc: dict[str, Any] = json.loads((state_dir / "site.json").read_text())
    return doc


def agent_config_for(
    site_doc: dict[str, Any],
    *,
    broker_host: str,
    broker_port: int,
    site: str = "demo-site",
    agent: str = "room-101",
    room: str = "Room 101",
    contract: str = "HZ-2026-0042",
    interval: float | None = 5.0,
    recheck_count: int | None = 2,
    recheck_delay: float | None = 1.0,
) -> dict[str, Any]:
    """A config dict for ``hezo-agent`` that watches every simulated device the way a real room would.

    ``interval``, ``recheck_count``, ``recheck_delay``: the ``poll:`` settings; None leaves one at the
    agent's default."""
    devices = []
    switch_checks = _switch_checks(site_doc)
    for device in site_doc["devices"]:
        if device.get("service"):
            continue  # the Sync Cloud API is where devices are seen from, not a device
        if "snmp" in device:
            continue  # the PoE switch is not a watched device; its ports are checks of the devices on them
        entry: dict[str, Any] = {
            "id": device["id"],
            "model": device["model"],
            "serial": device["serial"],
            "name": device.get("name"),
        }
        if "https_url" in device:
            # The simulated admin page has a self-signed certificate like the real one; pin it.
            entry["checks"] = [
                {"driver": "https", "url": device["https_url"], "ca_file": device["cert_file"], "timeout": 3}
            ]
        elif "sync_device_id" in device:
            entry["checks"] = [{"driver": "sync"}]  # matched by the device's serial
        else:
            # The simulated tree sends no uevents: scan it often, so an unplug shows within a second or two.
            entry["checks"] = [
                {
                    "driver": "usb",
                    "sysfs_root": site_doc["sysfs_root"],
                    "serial": device["serial"],
                    "hotplug": "scan",
                    "scan_interval": 0.5,
                    "settle": 1.0,
                }
            ]
        entry["checks"].extend(switch_checks.get(device["id"], []))
        devices.append(entry)
    config: dict[str, Any] = {
        "site": site,
        "agent": agent,
        "room": room,
        "contract": contract,
        "mqtt": {"host": broker_host, "port": broker_port, "keepalive": 10},
    }
    poll = {"interval": interval, "recheck_count": recheck_count, "recheck_delay": recheck_delay}
    poll = {key: value for key, value in poll.items() if value is not None}
    if poll:
        config["poll"] = poll
    if "sync_api" in site_doc:
        config["sync"] = dict(site_doc["sync_api"])
    traps = _trap_receiver(site_doc)
    if traps is not None:
        config["snmp"] = {"traps": traps}
    config["devices"] = devices
    return config


def _trap_receiver(site_doc: dict[str, Any]) -> dict[str, Any] | None:
    """Where the agent listens for the simulated switch's traps (v2c, the switch's community), if anywhere."""
    for switch in site_doc["devices"]:
        snmp = switch.get("snmp")
        if snmp and snmp.get("trap_targets"):
            host, port = snmp["trap_targets"][0]
            return {"listen": host, "port": port, "communities": [snmp["community"]]}
    return None


def _switch_checks(site_doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The ``snmp`` check of each device on a port of a simulated PoE switch, keyed by device id."""
    checks: dict[str, list[dict[str, Any]]] = {}
    for switch in site_doc["devices"]:
        snmp = switch.get("snmp")
        if snmp is None:
            continue
        for port in snmp["ports"]:
            if port.get("device"):
                checks.setdefault(port["device"], []).append(
                    {
                        "driver": "snmp",
                        "host": snmp["host"],
                        "port": snmp["port"],
                        "version": "3",
                        "user": snmp["v3_user"],
                        "auth_protocol": "sha",
                        "auth_key": snmp["v3_auth_key"],
                        "priv_protocol": "aes",
                        "priv_key": snmp["v3_priv_key"],
                        "if_index": port["if_index"],
                        "timeout": 1,
                        "retries": 1,
                    }
                )
    return checks
