"""``make demo``: a simulated room, an agent, a broker and the collector with its web page, on one machine.

Uses Mosquitto when it is installed, else the embedded amqtt broker (MQTT 3.1.1 only, fine for a demo).
Everything listens on loopback only and keeps its files under ``demo-data/``. Ctrl-C stops it all.
"""

import argparse
import getpass
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from simulator.agentconfig import agent_config_for, read_site
from simulator.net import free_port, listening

#: The service contract of the demo room, registered with the collector so its devices are covered.
CONTRACT = "HZ-2026-0042"
CUSTOMER = "Demo customer"
#: The demo's users: name, role, customer (a customer's user sees only its own devices and tickets).
USERS = (("admin", "admin", None), ("viewer", "viewer", None), ("customer", "viewer", CUSTOMER))

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def wait_until(
    what: str, ready: Any, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}; see {log}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout:g} s; see {log}")


class Demo:
    def __init__(
        self, data: Path, broker: str = "auto", web_port: int = 8080, confirm_window: float = 10
    ) -> None:
        self.data = data
        self.broker = broker
        self.web_port = web_port
        self.confirm_window = confirm_window
        self.logs = data / "logs"
        self.signing_key = data / "collector-signing.key"
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.token = ""

    def spawn(self, name: str, argv: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.data)
        self.processes.append((name, process))
        return process, log

    def start_broker(self) -> tuple[str, int]:
        port = free_port(HOST, 18830 if self.web_port else 0)
        broker_dir = self.data / "broker"
        broker_dir.mkdir(exist_ok=True)
        mosquitto = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if self.broker == "mosquitto" and not mosquitto:
            raise RuntimeError("--broker mosquitto: no mosquitto binary found (Debian package 'mosquitto')")
        if mosquitto and self.broker != "amqtt":
            conf = (
                (ROOT / "config" / "mosquitto.conf")
                .read_text()
                .replace("listener 1883 127.0.0.1", f"listener {port} {HOST}")
            )
            conf += f"\npersistence_location {broker_dir}/\n"
            # Started as root, Mosquitto would switch to its own user and could not write broker_dir.
            conf += f"user {getpass.getuser()}\n"
            (broker_dir / "mosquitto.conf").write_text(conf)
            process, log = self.spawn("broker", [mosquitto, "-c", str(broker_dir / "mosquitto.conf")])
            kind = "Mosquitto"
        else:
            conf_doc = {
                "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{port}"}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
            }
            (broker_dir / "amqtt.yaml").write_text(yaml.safe_dump(conf_doc))
            process, log = self.spawn(
                "broker",
                [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(broker_dir / "amqtt.yaml")],
            )
            kind = "amqtt (embedded)"
        wait_until("the broker", lambda: listening(HOST, port), process, log)
        print(f"  broker     {kind} on mqtt://{HOST}:{port}")
        return kind, port

    def start_collector(self, broker_port: int) -> tuple[Path, int]:
        web_port = free_port(HOST, self.web_port)
        if not self.signing_key.exists():  # the key that signs commands to the agent (remote diagnostics)
            subprocess.run(
                [sys.executable, "-m", "collector", "keygen", "--out", str(self.signing_key)],
                check=True,
                capture_output=True,
            )
        started = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
        config = {
            "mqtt": {"host": HOST, "port": broker_port, "client_id": "hezo-demo-collector"},
            "store": {"url": f"sqlite:///{self.data / 'collector.db'}"},
            "incidents": {"confirm_window": self.confirm_window},
            "web": {"host": HOST, "port": web_port},
            "contracts": [{"number": CONTRACT, "start": started, "years": 3, "customer": CUSTOMER}],
            "diagnostics": {
                "key_file": str(self.signing_key),
                "bundle_dir": str(self.data / "bundles"),
                "public_url": f"http://{HOST}:{web_port}",
            },
        }
        path = self.data / "collector.yaml"
        path.write_text(yaml.safe_dump(config))
        self.add_users(path)
        process, log = self.spawn(
            "collector", [sys.executable, "-m", "collector", "--config", str(path), "serve"]
        )
        wait_until("the collector", lambda: listening(HOST, web_port), process, log)
        print(f"  collector  web page at http://{HOST}:{web_port}/  (store {self.data / 'collector.db'})")
        return path, web_port

    def _users(self, config: Path, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "collector", "--config", str(config), "users", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            cwd=self.data,
        )
        if done.returncode != 0:
            raise RuntimeError(f"users {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def add_users(self, config: Path) -> None:
        """An admin, a viewer and a customer's user with fresh passwords, and an admin's API token."""
        logins = []
        for name, role, customer in USERS:
            password = secrets.token_urlsafe(12)
            scoped = ["--customer", customer] if customer else []
            self._users(
                config, "add", name, "--role", role, *scoped, "--password-stdin", stdin=password + "\n"
            )
            logins.append((name, password, f"{role}, {customer} only" if customer else role))
        self.token = self._users(config, "token", "admin", "--label", "demo").strip()
        for index, (name, password, what) in enumerate(logins):
            label = "logins" if index == 0 else ""
            print(f"  {label:<10} {name} / {password}  ({what})")
        print(f"  api token  HEZO_TOKEN={self.token}  (admin's: for curl and the CLI's logs pull, diag run)")

    def start_site(self) -> Path:
        state_dir = self.data / "site"
        process, log = self.spawn(
            "simulator", [sys.executable, "-m", "simulator", "run", "--state-dir", str(state_dir)]
        )
        wait_until("the simulator", (state_dir / "site.json").exists, process, log)
        site = read_site(state_dir)
        names = ", ".join(
            f"{d['name']} ({d['model']}, serial {d['serial']})"
            for d in site["devices"]
            if not d.get("service")
        )
        print(f"  simulator  {names}")
        if not any("snmp" in d for d in site["devices"]):
            print("  simulator  no PoE switch: snmpd is not installed (Debian: apt-get install snmpd)")
        return state_dir

    def start_agent(self, state_dir: Path, broker_port: int) -> None:
        config = agent_config_for(
            read_site(state_dir), broker_host=HOST, broker_port=broker_port, contract=CONTRACT
        )
        config["commands"] = {
            "public_key": str(self.signing_key.with_name(self.signing_key.name + ".pub")),
            "state_dir": str(self.data / "agent-state"),
            "logs": {"agent_log": [str(self.logs / "agent.log")], "journal": False},
        }
        path = self.data / "agent.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        process, log = self.spawn("agent", [sys.executable, "-m", "agent", "--config", str(path)])
        time.sleep(1.0)
        if process.poll() is not None:
            raise RuntimeError(f"the agent exited with status {process.returncode}; see {log}")
        print(
            f"  agent      site {config['site']}, agent {config['agent']}, contract {config['contract']}, "
            f"polling every {config['poll']['interval']:g} s  (config {path})"
        )

    def stop(self) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    print(f"  {name} did not stop in 10 s; killing it")
                    process.kill()
                    process.wait()


def watch_tickets(web_port: int, demo: Demo) -> None:
    """Print each ticket as it opens or recovers, until Ctrl-C or a component dies."""
    seen: dict[str, str] = {}
    request = urllib.request.Request(
        f"http://{HOST}:{web_port}/api/tickets", headers={"Authorization": f"Bearer {demo.token}"}
    )
    while True:
        for name, process in demo.processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with status {process.returncode}; see {demo.logs / (name + '.log')}"
                )
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:  # noqa: S310 (our own collector)
                tickets = json.load(answer)
        except OSError:
            tickets = []
        for ticket in tickets:
            key = ticket.get("number", "?")
            status = ticket.get("status", "?")
            if seen.get(key) != status:
                seen[key] = status
                priority = str(ticket.get("priority", "?")).upper()
                print(
                    f"  ticket {key}: {priority} {status}: device {ticket.get('device')}, "
                    f"serial {ticket.get('serial')}, contract {ticket.get('contract')}, "
                    f"response due {ticket.get('response_due')}"
                )
        time.sleep(1.0)


class _FirstInterrupt:
    """Turns the first SIGINT or SIGTERM into KeyboardInterrupt and ignores the rest.

    A terminal's Ctrl-C reaches every process of the group, and impatient hands press it twice: the
    components stop on their own signal, and the demo's clean-up must not be cut short by a second one,
    or it would leave them running.
    """

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, _signum: int, _frame: object) -> None:
        if not self.seen:
            self.seen = True
            raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hezo-demo", description=__doc__)
    parser.add_argument(
        "--data", type=Path, default=ROOT / "demo-data", help="where the demo keeps its files"
    )
    parser.add_argument(
        "--broker",
        choices=["auto", "mosquitto", "amqtt"],
        default="auto",
        help="auto: Mosquitto when installed, else the embedded amqtt broker",
    )
    parser.add_argument(
        "--web-port",
        type=int,
        default=8080,
        help="the collector's web page (another free port if taken; 0: any free port)",
    )
    parser.add_argument(
        "--confirm-window",
        type=float,
        default=10.0,
        help="seconds a device must stay down before its ticket opens",
    )
    args = parser.parse_args(argv)
    data: Path = args.data.resolve()
    marker = data / ".hezo-demo"
    if data.exists() and any(data.iterdir()) and not marker.exists():
        print(f"hezo demo: {data} exists and is not a demo folder; choose another --data", file=sys.stderr)
        return 2
    if data.exists():
        shutil.rmtree(data)  # the previous demo's files: a fresh start each time
    (data / "logs").mkdir(parents=True)
    marker.touch()
    demo = Demo(data, broker=args.broker, web_port=args.web_port, confirm_window=args.confirm_window)
    interrupt = _FirstInterrupt()
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    print(f"hezo demo: starting (logs in {data / 'logs'})")
    try:
        _, broker_port = demo.start_broker()
        collector_config, web_port = demo.start_collector(broker_port)
        state_dir = demo.start_site()
        demo.start_agent(state_dir, broker_port)
        sim = f"{sys.executable} -m simulator"
        switch = any("snmp" in d for d in read_site(state_dir)["devices"])
        poe = (
            f"""Turn PoE off on the Rally Bar's switch port (restore with: fault poe-switch restore):
    {sim} fault poe-switch port-off --state-dir {state_dir}
"""
            if switch
            else ""
        )
        print(f"""
Open http://{HOST}:{web_port}/ and log in (above) to see the room; the customer's login sees its own only.

Pull the plug on the Rally Bar (a Critical ticket opens after the {demo.confirm_window:g} s confirm window,
and fetches service tests and a log bundle from the agent by itself: see its timeline and /diagnostics):
    {sim} power rally-bar off --state-dir {state_dir}
Put it back (the ticket records the recovery):
    {sim} power rally-bar on --state-dir {state_dir}
Unplug the MeetUp from USB (seen within seconds through the agent's hot-plug scan):
    {sim} power meetup off --state-dir {state_dir}
Lose a mic pod of the Rally system, as Logitech Sync reports it (degraded; restore with `restore`):
    {sim} fault rally mic-pod-lost --state-dir {state_dir}
Make it re-enumerate, gone for a second as Rally Bars do (the agent waits it out: no state change):
    {sim} fault meetup reenumerate --state-dir {state_dir}
{poe}List tickets from the command line:
    {sys.executable} -m collector --config {collector_config} tickets list
Pull the Rally Bar's logs through the API, as the admin:
    HEZO_TOKEN={demo.token} {sys.executable} -m collector --config {collector_config} logs pull rally-bar

Ctrl-C stops everything.
""")
        watch_tickets(web_port, demo)
    except KeyboardInterrupt:
        print("\nhezo demo: stopping")
    except RuntimeError as exc:
        print(f"hezo demo: {exc}", file=sys.stderr)
        return 1
    finally:
        demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
